#!/usr/bin/env bash
# Runs the kernel's make in a build tree (KDIR) with the compilers that built
# that tree, so that `make KDIR=...` works for any Rust-enabled tree:
#   - a clang-built tree (the lab kernels): LLVM=$LLVM and the cached bindgen;
#   - a gcc-built tree (a distribution kernel): CC named by the tree's
#     CONFIG_CC_VERSION_TEXT (e.g. x86_64-linux-gnu-gcc-14; for Debian's arm64
#     kernel on x86-64 its cross compiler, with CROSS_COMPILE), bindgen from
#     PATH unless $BINDGEN is;
#   - in both, the rustc that built the tree (CONFIG_RUSTC_VERSION_TEXT), the
#     distribution's /usr/bin/rustc if rustup's comes first on PATH;
#   - a tree that scripts/debian-kernel.sh prepared: as above, but inside its
#     Debian 13 root (trixie's rustc is the one that built the image), with
#     the tree and the current folder bind-mounted at their own paths.
#
# Usage: scripts/kmake.sh KDIR MAKE-ARGUMENTS...
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/common.sh
. "$here/common.sh"
# shellcheck source=scripts/debian13.sh
. "$here/debian13.sh"
# shellcheck source=scripts/rust-tree.sh
. "$here/rust-tree.sh"

[ $# -ge 1 ] || die "usage: scripts/kmake.sh KDIR MAKE-ARGUMENTS..."
kdir=$1
shift
config=$kdir/.config

# The root a tree was prepared in, if any (written by debian-kernel.sh).
root=
[ ! -f "$kdir/.nsfilter-root" ] || root=$(cat "$kdir/.nsfilter-root")

args=()
# A tree configured for another architecture than the host's (lab-arm64,
# debian-arm64).
! grep -qx 'CONFIG_ARM64=y' "$config" 2>/dev/null || args+=(ARCH=arm64)
if grep -qx 'CONFIG_CC_IS_CLANG=y' "$config" 2>/dev/null; then
	args+=(LLVM="$LLVM")
	[ -z "$root" ] && [ -x "$BINDGEN" ] && args+=(BINDGEN="$BINDGEN")
else
	# LLVM= from the environment (the lab's) would make the kernel link with lld.
	unset LLVM
	# CC, HOSTCC, and for Debian's arm64 kernel CROSS_COMPILE (ARCH is above).
	if grep -q '^CONFIG_CC_VERSION_TEXT="[^ ]* ' "$config" 2>/dev/null; then
		cc_args=()
		kernel_cc_args "$config"
		for a in "${cc_args[@]}"; do [ "$a" = ARCH=arm64 ] || args+=("$a"); done
	fi
	if [ -n "$root" ]; then
		args+=(BINDGEN=bindgen)
	elif [ -x "$BINDGEN" ]; then
		args+=(BINDGEN="$BINDGEN")
	fi
fi

if [ -z "$root" ]; then
	# The rustc that built the tree (a distribution's, often behind rustup's).
	[ ! -f "$config" ] || use_kernel_rustc "$config"
	exec make -C "$kdir" "${args[@]}" "$@"
fi
[ -f "$root/.complete" ] || die "the Debian 13 root of $kdir is gone ($root): run 'make kernel KERNEL=debian' (or debian-rt, debian-arm64: the kernel of this tree)"
in_root "$root" "$kdir" "$PWD" -- make -C "$kdir" "${args[@]}" "$@"
