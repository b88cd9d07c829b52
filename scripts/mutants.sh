#!/usr/bin/env bash
# make mutants, host half: mutates the module's safe logic (rust/budget.rs,
# counters.rs, decision.rs, logline.rs, packet.rs, ratelimit.rs, settings.rs:
# the files the host tests compile) with cargo-mutants and runs the host tests against each mutant.
#
# Usage: scripts/mutants.sh [OUT [CARGO-MUTANTS OPTIONS...]]
#   OUT: where the report goes (default mutants.out under the cache); the
#   options go to cargo-mutants (e.g. --re 'ipv6_payload' for some only).
#
# Every mutant must be caught, or listed in scripts/mutants-equivalent.txt
# with the reason it cannot change behaviour; a missed mutant that is not
# listed fails the run. cargo-mutants (pinned in common.sh) is built into the
# cache once. It runs in a scratch copy of the tree, so an interrupted run
# never leaves a mutated file behind: the copy's root is a Cargo workspace
# holding both rust/ and userspace/, since cargo-mutants mutates only files
# inside the workspace it is given.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(dirname "$here")
# shellcheck source=scripts/common.sh
. "$here/common.sh"

out=${1:-$NSFILTER_CACHE/mutants.out}
shift $(($# > 0 ? 1 : 0))
equivalent=$here/mutants-equivalent.txt

if [ ! -x "$CARGO_MUTANTS" ]; then
	say "building cargo-mutants $CARGO_MUTANTS_VERSION (a few minutes, once)"
	root=$(dirname "$(dirname "$CARGO_MUTANTS")")
	rm -rf "$root.tmp"
	cargo install --quiet --locked --root "$root.tmp" cargo-mutants --version "$CARGO_MUTANTS_VERSION"
	rm -rf "$root"
	mv "$root.tmp" "$root"
fi

# Every host test that compiles rust/'s files must judge the mutants: the
# logic crate lists them by path (cargo finds tests only under its own
# folder), so a new test file missing from that list would be skipped.
for t in "$top"/userspace/tests/*.rs; do
	grep -q '"../../rust/' "$t" || continue
	grep -qF "path = \"../tests/$(basename "$t")\"" "$top/userspace/logic/Cargo.toml" ||
		die "userspace/tests/$(basename "$t") compiles rust/ but is not a [[test]] of userspace/logic/Cargo.toml: mutants would not be judged by it"
done

scratch=$(mktemp -d /tmp/nsfilter-mutants.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
# The tree as it is now (tracked and new files, not build products).
(cd "$top" && git ls-files -z --cached --others --exclude-standard -- docs rust userspace |
	xargs -0 cp --parents -t "$scratch")
# userspace/ is a workspace of its own: its table gives way to the copy's.
sed -i '/^\[workspace\]/,/^\[/{/^\[workspace\]/d;/^\[/!d}' "$scratch/userspace/Cargo.toml"
cat >"$scratch/Cargo.toml" <<'EOF'
[workspace]
members = ["userspace", "userspace/nsfilter", "userspace/logic"]
resolver = "2"
EOF
# Share compiled dependencies of the tests between runs.
export CARGO_TARGET_DIR=$NSFILTER_CACHE/mutants-target

say "mutating rust/ and running the host tests against each mutant"
start=$(date +%s)
set +e
(cd "$scratch" && "$CARGO_MUTANTS" mutants --in-place --no-shuffle \
	--package nsfilter-logic \
	--cargo-test-arg=--tests \
	--output "$scratch/report" "$@" >"$scratch/mutants.log" 2>&1)
status=$?
set -e
rm -rf "$out"
mkdir -p "$(dirname "$out")"
cp -r "$scratch/report/mutants.out" "$out"
tail -n 3 "$scratch/mutants.log"
# cargo-mutants exits 0 when all are caught, 2 when some were missed, 3 on
# timeouts; anything else is a failure of the run itself.
case $status in
0 | 2 | 3) ;;
*)
	cat "$scratch/mutants.log" >&2
	die "cargo-mutants failed (exit $status)"
	;;
esac

caught=$(wc -l <"$out/caught.txt")
missed=$(wc -l <"$out/missed.txt")
timeouts=$(wc -l <"$out/timeout.txt")
unviable=$(wc -l <"$out/unviable.txt")
total=$((caught + missed + timeouts))
say "host mutants: $caught caught, $missed missed, $timeouts timeouts, $unviable unviable (do not build), in $(($(date +%s) - start)) s"
if ((total > 0)); then
	say "mutation score: $((100 * (caught + timeouts) / total))% ($((caught + timeouts)) of $total)"
fi

# A missed mutant must be listed, with its reason, as equivalent. Compared
# without its line and column, which move whenever code above it changes.
unexplained=0
unplace() { sed -E 's/^([^:]*):[0-9]+:[0-9]+: /\1: /'; }
listed=$(sed -n 's/^\([^#].*\)  # .*$/\1/p' "$equivalent" | unplace)
while IFS= read -r mutant; do
	[ -n "$mutant" ] || continue
	if ! grep -qxF "$(unplace <<<"$mutant")" <<<"$listed"; then
		echo "missed, not known to be equivalent: $mutant" >&2
		unexplained=$((unexplained + 1))
	fi
done <"$out/missed.txt"
((unexplained == 0)) || die "$unexplained missed mutants are neither killed by a test nor listed in $equivalent"
say "every missed mutant is listed in $(basename "$equivalent") with its reason"
