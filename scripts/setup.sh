#!/usr/bin/env bash
# Installs what nsfilter needs to build a Rust-enabled lab kernel, the module and
# the lab VM. Idempotent: a second run only checks, and says nothing is missing.
#
# Everything that is not a Debian package goes into the cache folder
# ($NSFILTER_CACHE, default ~/.cache/nsfilter), never into the clone.
#
# Usage: scripts/setup.sh [--check]
#   --check  install nothing; exit 1 and print what is missing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/common.sh
. "$here/common.sh"

check_only=0
case "${1:-}" in
"") ;;
--check) check_only=1 ;;
-h | --help)
	sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
*) die "unknown option '$1' (try --help)" ;;
esac

# Debian packages: the kernel source, the LLVM toolchain the kernel's Rust
# support is built with, the kernel's build tools, and what the lab VM runs.
packages=(
	linux-source-6.12 clang-19 lld-19 llvm-19 libclang-19-dev
	flex bison bc libelf-dev libssl-dev cpio kmod make xz-utils
	busybox-static iproute2 qemu-system-x86 python3 binutils
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if ((${#missing[@]})); then
	cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
	if ((check_only)); then
		die "missing Debian packages: ${missing[*]}"
	fi
	if [ "$(id -u)" -ne 0 ]; then
		die "missing Debian packages; run as root: $cmd"
	fi
	say "installing Debian packages: ${missing[*]}"
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Rust: the kernel builds `core` from source with the same rustc.
command -v rustc >/dev/null || die "rustc not found: install Rust with rustup (https://rustup.rs)"
command -v cargo >/dev/null || die "cargo not found: install Rust with rustup"
sysroot=$(rustc --print sysroot)
if [ ! -d "$sysroot/lib/rustlib/src/rust/library/core" ]; then
	((check_only)) && die "rust-src is missing: run 'rustup component add rust-src'"
	command -v rustup >/dev/null || die "rust-src is missing and rustup is not installed"
	say "adding the rust-src component"
	rustup component add rust-src
fi
for c in rustfmt clippy; do
	if ! rustup component list --installed 2>/dev/null | grep -q "^$c"; then
		((check_only)) && die "the $c component is missing: run 'rustup component add $c'"
		say "adding the $c component"
		rustup component add "$c"
	fi
done

# bindgen: Debian's is older than the kernel's minimum, so a pinned one is
# built into the cache. Installing into a temporary root and renaming it keeps
# an interrupted install from looking complete.
if [ ! -x "$BINDGEN" ]; then
	((check_only)) && die "bindgen $BINDGEN_VERSION is not installed at $BINDGEN"
	say "building bindgen-cli $BINDGEN_VERSION (about 3 minutes, once)"
	root=$(dirname "$(dirname "$BINDGEN")")
	mkdir -p "$(dirname "$root")"
	rm -rf "$root.tmp"
	LIBCLANG_PATH=$LIBCLANG_PATH cargo install --quiet --locked --root "$root.tmp" \
		bindgen-cli --version "$BINDGEN_VERSION"
	rm -rf "$root"
	mv "$root.tmp" "$root"
fi

# Versions: let the kernel itself say whether this toolchain fits it.
ver=$("$BINDGEN" --version 2>/dev/null | awk '{print $2}')
[ "$ver" = "$BINDGEN_VERSION" ] || die "bindgen at $BINDGEN reports '$ver', expected $BINDGEN_VERSION"
for tool in clang ld.lld llvm-ar; do
	command -v "$tool$LLVM_SUFFIX" >/dev/null || die "$tool$LLVM_SUFFIX not found (package clang-19/lld-19/llvm-19)"
done
[ -r "$DEFAULT_KSRC" ] || [ -n "${KSRC:-}" ] || die "kernel source $DEFAULT_KSRC not found (package linux-source-6.12)"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found (package qemu-system-x86)"
[ -x /bin/busybox ] || die "/bin/busybox not found (package busybox-static)"

say "set-up complete (cache: $NSFILTER_CACHE)"
