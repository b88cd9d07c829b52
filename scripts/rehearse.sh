#!/usr/bin/env bash
# make rehearse: the README's first commands, exactly as it writes them, as a
# new user runs them on a fresh Debian 12 (or 13) machine. A throwaway root of
# that release (mmdebstrap, minbase) holds nothing but what the README asks for beforehand
# (Rust from rustup, copied from this machine since rustup's own site may be
# out of reach; make; git) and a fresh clone of the current commit, with an
# empty nsfilter cache. Set-up inside it installs everything else through apt.
#
# To stay fast it may reuse, read-only, the kernels this machine has already
# built (bind-mounted into the root's empty cache: they are found only if the
# root computes the same cache key, i.e. the same source and toolchain).
#
# Usage: scripts/rehearse.sh [--debian 12|13] [--no-reuse] [--user]
#   --debian N  the release of the root (default 12; 13 from Debian's mirror,
#               $DEBIAN13_MIRROR, with its updates and security suites)
#   --no-reuse  build every kernel inside the root too (adds 7 to 12 minutes).
#   --user      the README's path for a normal user: `make run` as a user
#               must stop and print the one apt-get command for root; root
#               runs it; then the user runs the README's commands.
# Environment: REHEARSE_DIR (where the root goes; default /var/tmp).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(dirname "$here")
# shellcheck source=scripts/common.sh
. "$here/common.sh"

reuse=1
release=12
as_user=0
while [ $# -gt 0 ]; do
	case "$1" in
	--no-reuse) reuse=0 ;;
	--user) as_user=1 ;;
	--debian)
		release=${2:-}
		shift
		;;
	--debian=*) release=${1#*=} ;;
	-h | --help)
		sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*) die "unknown option '$1' (try --help)" ;;
	esac
	shift
done
case "$release" in
12) suite=bookworm ;;
13) suite=trixie ;;
*) die "--debian takes 12 or 13, not '$release'" ;;
esac
[ "$(id -u)" -eq 0 ] || die "make rehearse needs root (mmdebstrap, chroot)"
command -v mmdebstrap >/dev/null || die "mmdebstrap not found: run 'scripts/setup.sh --rehearse'"
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
cargo_home=${CARGO_HOME:-$HOME/.cargo}
[ -x "$cargo_home/bin/rustup" ] || die "rustup not found in $cargo_home/bin: the README's prerequisite"

start=$(date +%s)
root=$(mktemp -d "${REHEARSE_DIR:-/var/tmp}/nsfilter-rehearse.XXXXXX")
# Every exit path: the commands run in their own mount and PID namespaces
# (unshare), so their mounts, and every process they started, end with that
# namespace, which ends here first; the root is deleted only once nothing is
# mounted in it.
child=
cleanup() {
	local rc=$?
	if [ -n "$child" ]; then
		kill "$child" 2>/dev/null || true
		wait "$child" 2>/dev/null || true
	fi
	if grep -qF " $root" /proc/self/mountinfo; then
		echo "nsfilter: error: something is still mounted in $root; not deleting it" >&2
	else
		rm -rf "$root" "$root.log"
	fi
	echo "rehearse on Debian $release$( ((as_user)) && echo " as a user"): $(($(date +%s) - start)) s wall ($([ $rc -eq 0 ] && echo passed || echo "FAILED, status $rc"); $( ((reuse)) && echo "kernels reused from this machine" || echo "nothing reused"))"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

commit=$(git -C "$top" rev-parse HEAD)
if [ -n "$(git -C "$top" status --porcelain --untracked-files=no)" ]; then
	say "note: uncommitted changes are not rehearsed (it clones commit ${commit:0:12})"
fi

say "making a fresh Debian $release root in $root"
root_start=$SECONDS
sources=()
if [ "$release" = 13 ]; then
	# What a Debian 13 machine's apt has: the release, its updates, security.
	keyring="[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]"
	sources=("deb $keyring $DEBIAN13_MIRROR trixie main" "deb $keyring $DEBIAN13_MIRROR trixie-updates main"
		"deb $keyring $DEBIAN13_SECURITY_MIRROR trixie-security main")
else
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[ -s "$f" ] && grep -q '^[^#]' "$f" && sources+=("$f")
	done
	((${#sources[@]})) || die "no apt sources on this machine (/etc/apt/sources.list*)"
fi
mmdebstrap --quiet --variant=minbase --include=make,git,ca-certificates \
	"$suite" "$root" "${sources[@]}" >"$root.log" 2>&1 ||
	{ tail -n 20 "$root.log" >&2 && rm -f "$root.log" && die "mmdebstrap failed"; }
rm -f "$root.log"
say "the root made in $((SECONDS - root_start)) s"
# The network as this machine sees it: its resolver and the certificate
# authorities it trusts (a network that inspects TLS has its own).
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"

# The pinned Rust toolchain (rust-toolchain.toml), as rustup installed it
# here; not the default one, which the root's settings.toml names but which is
# left out: the clone must work through its pin alone.
# Who runs the README's commands: root, or (--user) a user of their own.
home=/root
if ((as_user)); then
	home=/home/student
	echo 'student:x:1000:1000::/home/student:/bin/bash' >>"$root/etc/passwd"
	echo 'student:x:1000:' >>"$root/etc/group"
	mkdir -p "$root$home"
fi
say "copying the Rust toolchain from $rustup_home"
mkdir -p "$root$home/.rustup/toolchains" "$root$home/.cargo"
cp -a "$rustup_home/settings.toml" "$root$home/.rustup/"
[ ! -d "$rustup_home/update-hashes" ] || cp -a "$rustup_home/update-hashes" "$root$home/.rustup/"
toolchain=$(RUSTUP_HOME=$rustup_home RUSTUP_TOOLCHAIN=$RUST_VERSION "$cargo_home/bin/rustup" show active-toolchain | awk '{print $1}')
for t in "$rustup_home/toolchains/"*; do
	name=$(basename "$t")
	if [ -L "$t" ] && [ "$(basename "$(readlink "$t")")" = "$toolchain" ]; then
		cp -a "$t" "$root$home/.rustup/toolchains/"
	elif [ "$name" = "$toolchain" ]; then
		cp -a "$t" "$root$home/.rustup/toolchains/"
	fi
done
cp -a "$cargo_home/bin" "$root$home/.cargo/"
cat >"$root$home/.profile" <<'EOF'
export PATH="$HOME/.cargo/bin:$PATH"
EOF

say "cloning commit ${commit:0:12}"
git clone --quiet --no-checkout "$top" "$root$home/nsfilter"
git -C "$root$home/nsfilter" checkout --quiet --detach "$commit"
((as_user == 0)) || chown -R 1000:1000 "$root$home"

# Kernels this machine built, offered read-only in the root's empty cache.
binds=()
if ((reuse)) && [ -d "$NSFILTER_CACHE/kernel" ]; then
	for entry in "$NSFILTER_CACHE/kernel"/*/; do
		entry=${entry%/}
		[ -f "$entry/complete" ] || continue
		case "$(basename "$entry")" in debian-*) continue ;; esac
		binds+=("$entry")
	done
	say "note: offering ${#binds[@]} kernel(s) this machine already built, read-only: the root" \
		"builds no kernel it can find there, so this is not an entirely fresh machine" \
		"('scripts/rehearse.sh --no-reuse' builds them too, 7 to 12 minutes more each)"
else
	say "reusing nothing from this machine: every kernel is built inside the root"
fi

# The README's two commands, word for word, in a login shell: as root, or as
# the user after root has run the apt-get command that their first
# `make run` printed.
commands=$(awk '/^```sh$/ { inblock = 1; next } inblock && /^```$/ { exit } inblock { sub(/ *#.*/, ""); print }' "$top/README.md")
[ "$(printf '%s\n' "$commands" | paste -sd' ')" = "make run make test" ] ||
	die "the README's first commands are no longer 'make run' and 'make test': update scripts/rehearse.sh"
say "running the README's commands in the root: $(printf '%s\n' "$commands" | paste -sd';' | sed 's/;/; /g')"
# Each command echoed, then its wall time: the step times of a first run.
timed=$(printf '%s\n' "$commands" | while IFS= read -r c; do
	printf 'echo "+ %s"; s=$SECONDS; %s; echo "rehearse: %s took $((SECONDS - s)) s"; ' "$c" "$c" "$c"
done)
unshare --mount --pid --fork --kill-child --propagation private -- bash -c '
	set -e
	root=$1 timed=$2 home=$3 as_user=$4
	shift 4
	mount -t proc proc "$root/proc"
	mount --rbind /sys "$root/sys"
	mount --rbind /dev "$root/dev"
	mount -t tmpfs tmpfs "$root/tmp"
	for entry in "$@"; do
		# In the cache of whoever runs the commands, and at its own path too: a build tree names
		# its source by absolute path (its Makefile includes it).
		for target in "$root$home/.cache/nsfilter/kernel/$(basename "$entry")" "$root$entry"; do
			grep -qF " $target " /proc/self/mountinfo && continue
			mkdir -p "$target"
			mount --bind "$entry" "$target"
			mount -o remount,bind,ro "$target"
		done
		# A user must be able to reach that path (/root is 0700).
		d=$(dirname "$entry")
		while [ "$as_user" = 1 ] && [ "$d" != / ]; do
			chmod o+x "$root$d"
			d=$(dirname "$d")
		done
	done
	[ "$as_user" = 0 ] || chown 1000:1000 "$root$home/.cache" "$root$home/.cache/nsfilter" \
		"$root$home/.cache/nsfilter/kernel" 2>/dev/null || true
	run() {
		chroot --userspec="$1" "$root" /usr/bin/env -i HOME="$home" TERM=dumb LANG=C.UTF-8 \
			PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			/bin/bash -lc "$2"
	}
	if [ "$as_user" = 1 ]; then
		# The first make run as the user: it must stop, naming the one
		# command for root.
		echo "+ make run   (as student, before the packages)"
		if run 1000:1000 "cd $home/nsfilter && make run" >"$root/tmp/first.log" 2>&1; then
			echo "rehearse: make run as a user did not stop for the packages" >&2
			exit 1
		fi
		cat "$root/tmp/first.log"
		cmd=$(sed -n "s/^nsfilter: error: missing Debian packages; run as root: //p" "$root/tmp/first.log")
		[ -n "$cmd" ] || { echo "rehearse: make run printed no command for root" >&2; exit 1; }
		echo "+ $cmd   (as root)"
		run 0:0 "$cmd"
	fi
	uid=0:0
	[ "$as_user" = 0 ] || uid=1000:1000
	run "$uid" "set -e; cd $home/nsfilter; $timed"
' rehearse "$root" "$timed" "$home" "$as_user" "${binds[@]}" &
child=$!
wait "$child"
