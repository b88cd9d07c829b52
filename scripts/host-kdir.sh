#!/usr/bin/env bash
# make host-kdir: prepares a build tree for the kernel this machine runs, so
# that nsfilter (any out-of-tree Rust module) can be built for it and loaded.
#
# For a distribution kernel built with CONFIG_RUST whose headers lack the Rust
# metadata (Debian 13's backports kernels): rebuilds that metadata from the
# matching linux-source package with the kernel's own configuration and the
# compiler that built it, as KERNEL=debian does in a Debian 13 root
# (scripts/rust-tree.sh). Says what is missing when it cannot. Prints the tree
# to pass as KDIR: `make KDIR=$(scripts/host-kdir.sh)`.
#
# Usage: scripts/host-kdir.sh [RELEASE]   (default: uname -r)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/common.sh
. "$here/common.sh"
# shellcheck source=scripts/rust-tree.sh
. "$here/rust-tree.sh"

case "${1:-}" in
-h | --help)
	sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
esac
release=${1:-$(uname -r)}
# A distribution kernel is built with gcc: the lab's LLVM= must not reach its
# make (the kernel's Makefile reads it from the environment).
unset LLVM
build=/lib/modules/$release/build
[ -f "$build/Makefile" ] ||
	die "no build tree for $release at $build: install linux-headers-$release"
config=$build/.config
[ -f "$config" ] || config=/boot/config-$release
[ -f "$config" ] || die "no configuration for $release (neither $build/.config nor /boot/config-$release)"
grep -qx 'CONFIG_RUST=y' "$config" ||
	die "$release is built without CONFIG_RUST: no Rust module can be loaded into it (run a Rust-enabled kernel, e.g. Debian 13's from trixie-backports)"

# Metadata already there (a self-built tree, Ubuntu's linux-lib-rust-*
# package, Arch, NixOS): nothing to prepare.
if [ -f "$build/rust/kernel.rmeta" ] || [ -f "$build/rust/libkernel.rmeta" ]; then
	say "$build already has the Rust metadata"
	echo "$build"
	exit 0
fi

# The compiler that built the kernel, and no other: crate hashes, which name
# every Rust symbol the kernel exports, depend on rustc's exact version text.
use_kernel_rustc "$config"
have=$(rustc --version)
sysroot=$(rustc --print sysroot)
[ -d "$sysroot/lib/rustlib/src/rust/library/core" ] || die "the Rust standard library's source is missing (apt install rust-src)"
cc=$(sed -n 's/^CONFIG_CC_VERSION_TEXT="\([^ ]*\) .*/\1/p' "$config")
command -v "$cc" >/dev/null || die "$release was built by $cc, which is not installed (apt install $cc)"
# An arm64 tree's modules_prepare builds its vDSO for 32-bit programs with gcc
# for 32-bit Arm (scripts/rust-tree.sh).
if needs_compat_cc "$config"; then
	command -v "arm-linux-gnueabihf-gcc${cc##*gcc}" >/dev/null ||
		die "$release's 32-bit vDSO needs arm-linux-gnueabihf-gcc${cc##*gcc} (apt install gcc${cc##*gcc}-arm-linux-gnueabihf)"
fi
command -v bindgen >/dev/null || [ -x "$BINDGEN" ] || die "bindgen not found (apt install bindgen libclang-dev)"
for tool in make flex bison bc; do
	command -v "$tool" >/dev/null || die "$tool not found (apt install $tool)"
done
[ -f "$build/Module.symvers" ] || die "$build has no Module.symvers"

# The source: the distribution's source package of the same version.
series=$(sed -n 's/^\([0-9]*\.[0-9]*\).*/\1/p' <<<"$release")
tarball=/usr/src/linux-source-$series.tar.xz
[ -f "$tarball" ] || die "no kernel source at $tarball: install linux-source-$series (the same version as the kernel, e.g. from trixie-backports)"
if command -v dpkg-query >/dev/null; then
	image=$(dpkg-query -S "/lib/modules/$release/kernel" 2>/dev/null | cut -d: -f1 | head -n1 || true)
	image_version=$( [ -z "$image" ] || dpkg-query -W -f='${Version}' "$image" 2>/dev/null || true)
	source_version=$(dpkg-query -W -f='${Version}' "linux-source-$series" 2>/dev/null || true)
	[ -z "$image_version" ] || [ "$image_version" = "$source_version" ] ||
		die "linux-source-$series is ${source_version:-not installed}, the kernel is $image_version: install linux-source-$series=$image_version"
fi

key=$({
	echo "$release"
	sha256sum <"$config"
	sha256sum <"$build/Module.symvers"
	stat -L -c '%s %Y' "$tarball"
	echo "$have"
} | sha256sum | cut -c1-16)
entry=$NSFILTER_CACHE/host/$release-$key
kdir=$entry/build
mkdir -p "$NSFILTER_CACHE/host"
exec 9>"$entry.lock"
flock 9
if [ ! -f "$entry/complete" ]; then
	say "preparing $release for Rust modules in $entry (a few minutes, once)"
	start=$(date +%s)
	rm -rf "$entry"
	in_tree() { "$@"; }
	prepare_rust_tree "$tarball" "$config" "$build/Module.symvers" "$release" "$kdir"
	check_rust_tree "$kdir" "$entry/sample.log" >/dev/null
	date -u +%FT%TZ >"$entry/complete"
	say "prepared in $(($(date +%s) - start)) s; build nsfilter with: make KDIR=$kdir"
fi
echo "$kdir"
