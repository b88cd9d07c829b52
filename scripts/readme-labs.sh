#!/usr/bin/env bash
# Keeps the README's lab guide true: runs each block marked `<!-- lab: NAME -->`
# in the lab VM and checks that it prints the README's output for it, line by
# line, where only the numbers that change from run to run may differ
# (NETNS= inodes, IP and ICMP ID= values).
# Usage: scripts/readme-labs.sh NSFILTER-LAB --kernel BZIMAGE --module KO
set -uo pipefail
bin=$1
shift
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readme=$top/README.md
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Split the README into NAME.sh and NAME.want files.
awk -v dir="$work" '
	/^<!-- lab: [a-z0-9_-]+ -->$/ { name = $3; state = "wait-sh"; next }
	state == "wait-sh" && /^```sh$/ { state = "sh"; next }
	state == "sh" && /^```$/ { state = "wait-text"; next }
	state == "sh" { print > (dir "/" name ".sh"); next }
	state == "wait-text" && /^```text$/ { state = "text"; next }
	state == "text" && /^```$/ { state = ""; next }
	state == "text" { print > (dir "/" name ".want"); next }
' "$readme"

fail=0
labs=0
for script in "$work"/*.sh; do
	[ -e "$script" ] || break
	name=$(basename "$script" .sh)
	labs=$((labs + 1))
	if [ ! -s "$work/$name.want" ]; then
		echo "FAILED: README lab '$name' has no output block"
		fail=1
		continue
	fi
	got=$("$bin" exec "$@" --script "$script" 2>&1)
	rc=$?
	mapfile -t want_lines <"$work/$name.want"
	mapfile -t got_lines <<<"$got"
	ok=1
	[ "$rc" -eq 0 ] && [ "${#want_lines[@]}" -eq "${#got_lines[@]}" ] || ok=0
	for i in "${!want_lines[@]}"; do
		((ok)) || break
		# The expected line as a regular expression: escape it, then let the
		# per-run numbers vary.
		re=$(sed -e 's/[][\.*^$+?(){}|/]/\\&/g' \
			-e 's/NETNS=[0-9]\+/NETNS=[0-9]+/g' -e 's/ ID=[0-9]\+/ ID=[0-9]+/g' <<<"${want_lines[$i]}")
		[[ ${got_lines[$i]} =~ ^$re$ ]] || ok=0
	done
	if ((ok)); then
		echo "ok: README lab '$name' prints what the README shows (${#want_lines[@]} lines)"
	else
		printf 'FAILED: README lab %s (exit %d)\n--- README shows:\n%s\n--- it printed:\n%s\n' \
			"$name" "$rc" "$(cat "$work/$name.want")" "$got"
		fail=1
	fi
done
if [ "$labs" -eq 0 ]; then
	echo "FAILED: no '<!-- lab: NAME -->' blocks found in $readme"
	fail=1
fi
exit $fail
