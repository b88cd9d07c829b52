#!/usr/bin/env bash
# KERNEL=debian, debian-rt and debian-arm64: Debian 13's own Rust-enabled
# kernel (its amd64 flavour, its rt-amd64 flavour with PREEMPT_RT, or its
# arm64 flavour), unmodified, made ready for out-of-tree Rust modules and for
# the lab VM. Run through scripts/kernel.sh.
#
# Usage: scripts/debian-kernel.sh kdir|build|lab-args [debian|debian-rt|debian-arm64]
#
# Two cache entries, each keyed by what goes into it:
#
# - debian-tree-KEY/build, the KDIR: the image's headers package lacks the
#   Rust metadata (rust/*.rmeta, the proc-macro libraries) that a Rust module
#   is compiled against. It is rebuilt from linux-source-7.3 with the image's
#   own .config, by the very compilers that built the image (trixie's rustc,
#   as CONFIG_RUSTC_VERSION_TEXT says, and gcc-14), in a Debian 13 root:
#   `modules_prepare` with the image's release (scripts/rust-tree.sh). The
#   arm64 image names aarch64-linux-gnu-gcc-14 (Debian 14.2.0-19): on x86-64
#   that is trixie's cross compiler of the same gcc (gcc-14-aarch64-linux-gnu),
#   and trixie's rustc targets arm64 as it is, the kernel building its own
#   `core`. Cross compilers rather than an arm64 root under qemu-user: they
#   are the compilers Debian's config names, and they run at native speed.
#   Debian's Module.symvers then names every Rust symbol the image exports,
#   with the same crate hashes, and a module built against the tree links
#   against them. The kernel's own samples/rust/rust_minimal is the proof.
# - debian-boot-KEY: the image (vmlinuz) and, for the lab VM, the modules the
#   VM suite needs, decompressed (their signatures stay valid), with a load
#   order from depmod's dependencies.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/common.sh
. "$here/common.sh"
# shellcheck source=scripts/debian13.sh
. "$here/debian13.sh"
# shellcheck source=scripts/rust-tree.sh
. "$here/rust-tree.sh"

# Bump when the steps below change what an entry holds.
TREE_RECIPE=1
BOOT_RECIPE=1
abi=$LINUX_73_ABI
# The packages' architecture when it is not the host's, and the root's extra
# packages (the cross compilers).
arch=
root_extra=
case "${2:-debian}" in
debian) release=$LINUX_73_RELEASE ;;
debian-rt) release=$abi-rt-amd64 ;;
debian-arm64)
	# Prepared by Debian's cross compilers for x86-64 (built for it only).
	[ "$(uname -m)" = x86_64 ] ||
		die "KERNEL=debian-arm64 is prepared on an x86-64 host (Debian's cross compilers run there), not on $(uname -m)"
	release=$abi-arm64
	arch=arm64
	# The cross compiler the image's config names; for the vDSO of 32-bit
	# programs, gcc for 32-bit Arm; and arm64's C library, which Kconfig
	# tries to link against (CONFIG_CC_CAN_LINK).
	root_extra=gcc-14-aarch64-linux-gnu=$TRIXIE_CROSS_GCC_VERSION,gcc-14-arm-linux-gnueabihf,libc6-dev-arm64-cross
	;;
*) die "usage: scripts/debian-kernel.sh kdir|build|lab-args [debian|debian-rt|debian-arm64]" ;;
esac
version=$LINUX_73_VERSION

# The modules the VM suite and the labs need, beyond what the image has built
# in; their dependencies come along. Names as modprobe takes them.
GUEST_MODULES=(
	veth bridge tun ipip
	nf_conntrack nf_nat nf_defrag_ipv4 nf_defrag_ipv6
	nf_tables nft_ct nft_log nft_limit nft_masq nft_nat nft_chain_nat
	nf_log_syslog
)

action=${1:-}
case "$action" in
kdir | build | lab-args) ;;
*) die "usage: scripts/debian-kernel.sh kdir|build|lab-args [debian|debian-rt|debian-arm64]" ;;
esac

# The flavour's headers give the image's .config and Module.symvers; the
# source comes from linux-source-7.3, architecture-independent.
tree_packages=("linux-headers-$release" "linux-headers-$abi-common" "linux-kbuild-$abi" linux-source-7.3)
[ -z "$arch" ] || tree_packages=("linux-headers-$release" linux-source-7.3)
boot_packages=("linux-binary-$release" "linux-modules-$release" "linux-base-$release")
tree_key=$({
	printf '%s\n' "${tree_packages[@]}"
	echo "$version recipe $TREE_RECIPE"
	trixie_packages
	[ -z "$arch" ] || echo "$arch $root_extra"
} | sha256sum | cut -c1-16)
boot_key=$({
	printf '%s\n' "${boot_packages[@]}"
	echo "$version recipe $BOOT_RECIPE"
	printf '%s\n' "${GUEST_MODULES[@]}"
} | sha256sum | cut -c1-16)
tree=$NSFILTER_CACHE/kernel/debian-tree-$tree_key
boot=$NSFILTER_CACHE/kernel/debian-boot-$boot_key
kdir=$tree/build

case "$action" in
kdir)
	echo "$kdir"
	exit 0
	;;
lab-args)
	# Debian's kernel taints itself O (out-of-tree) and E (unsigned module)
	# when nsfilter loads: expected, and nothing else is. It has no fault
	# injection: that test alone may report SKIP.
	# On arm64, emulated instruction by instruction: twice the time, and the
	# guest runs arm64's programs.
	extra=
	[ -z "$arch" ] || extra=" --time-factor 2 --guest-root $("$here/guest-root.sh" dir "$arch")"
	echo "--kernel $boot/vmlinuz --kernel-modules $boot/guest-modules --allow-taint OE --memory 1024 --expect-skip fault_injection_netns_and_insmod$extra"
	exit 0
	;;
esac

mkdir -p "$NSFILTER_CACHE/kernel"

# Unpacks the given packages into $1/pkg.
unpack() {
	local dir=$1 p deb
	shift
	rm -rf "$dir"
	mkdir -p "$dir/pkg"
	for p in "$@"; do
		if [ "$p" = linux-source-7.3 ]; then
			deb=$(deb13_fetch "$p" "$version")
		else
			deb=$(deb13_fetch "$p" "$version" "$arch")
		fi
		[ "$p" = linux-source-7.3 ] || dpkg-deb -x "$deb" "$dir/pkg"
	done
}

prepare_tree() {
	exec 9>"$tree.lock"
	flock 9
	[ ! -f "$tree/complete" ] || return 0
	local start tarball root headers config want have
	start=$(date +%s)
	unpack "$tree" "${tree_packages[@]}"
	tarball=$(deb13_source_tarball)
	root=$(trixie_root "$root_extra")
	say "preparing Debian's $release for Rust modules in $tree (3 to 10 minutes, once)"
	headers=$tree/pkg/usr/src/linux-headers-$release
	config=$headers/.config
	[ -f "$config" ] || die "linux-headers-$release has no .config at $config"
	grep -qx 'CONFIG_RUST=y' "$config" || die "Debian's $release is built without CONFIG_RUST"
	want=$(sed -n 's/^CONFIG_RUSTC_VERSION_TEXT="\(.*\)"$/\1/p' "$config")
	have=$(in_root "$root" -- rustc --version)
	[ "$want" = "$have" ] ||
		die "the kernel was built by '$want', the Debian 13 root has '$have' (pin TRIXIE_RUSTC_VERSION)"

	say "unpacking linux-source-7.3 and running modules_prepare in the Debian 13 root"
	in_tree() { in_root "$root" "$kdir" -- "$@"; }
	prepare_rust_tree "$tarball" "$config" "$headers/Module.symvers" "$release" "$kdir"
	# From now on scripts/kmake.sh builds modules for this tree in that root.
	echo "$root" >"$kdir/.nsfilter-root"
	check_rust_tree "$kdir" "$tree/sample.log" >/dev/null
	date -u +%FT%TZ >"$tree/complete"
	say "Rust metadata for $release prepared in $(($(date +%s) - start)) s"
	exec 9>&-
}

# The image, and the guest's modules in dependency order.
prepare_boot() {
	exec 9>"$boot.lock"
	flock 9
	[ ! -f "$boot/complete" ] || return 0
	local mods depbase deps guest path plain m
	unpack "$boot" "${boot_packages[@]}"
	mods=$boot/pkg/usr/lib/modules/$release
	[ -f "$mods/vmlinuz" ] || die "linux-binary-$release holds no $mods/vmlinuz"
	# QEMU boots arm64's Image uncompressed (Debian's is); a gzip'ed one is
	# unpacked.
	if [ "$arch" = arm64 ] && gzip -t "$mods/vmlinuz" 2>/dev/null; then
		gzip -dc "$mods/vmlinuz" >"$boot/vmlinuz"
	else
		cp "$mods/vmlinuz" "$boot/vmlinuz"
	fi
	depbase=$boot/depmod
	mkdir -p "$depbase/lib/modules"
	ln -s "$mods" "$depbase/lib/modules/$release"
	depmod -b "$depbase" "$release" || die "depmod failed on linux-modules-$release"
	deps=$mods/modules.dep
	declare -A seen=()
	order=()
	visit() {
		local name=$1 line path dep
		line=$(grep -E "(^|/)${name//[-_]/[-_]}\.ko(\.xz|\.zst|\.gz)?:" "$deps" | head -n1 || true)
		if [ -z "$line" ]; then
			# Built into the image: nothing to load.
			grep -qE "/${name//[-_]/[-_]}\.ko$" "$mods/modules.builtin" ||
				die "module $name is neither in linux-modules-$release nor built in"
			return 0
		fi
		path=${line%%:*}
		[ -z "${seen[$path]:-}" ] || return 0
		seen[$path]=1
		for dep in ${line#*:}; do
			dep=$(basename "$dep")
			visit "${dep%%.ko*}"
		done
		order+=("$path")
	}
	for m in "${GUEST_MODULES[@]}"; do visit "$m"; done
	guest=$boot/guest-modules
	mkdir -p "$guest"
	: >"$guest/load"
	for path in "${order[@]}"; do
		plain=${path%.xz}
		plain=${plain%.zst}
		plain=${plain%.gz}
		mkdir -p "$guest/$release/$(dirname "$plain")"
		case "$path" in
		*.xz) xz -dc "$mods/$path" >"$guest/$release/$plain" ;;
		*.zst) zstd -qdc "$mods/$path" >"$guest/$release/$plain" ;;
		*.gz) gzip -dc "$mods/$path" >"$guest/$release/$plain" ;;
		*) cp "$mods/$path" "$guest/$release/$plain" ;;
		esac
		echo "/lib/modules/$release/$plain" >>"$guest/load"
	done
	# The rest of the packages is not needed any more.
	rm -rf "$depbase" "$boot/pkg"
	date -u +%FT%TZ >"$boot/complete"
	say "Debian's $release image and ${#order[@]} guest modules ready in $boot"
	exec 9>&-
}

prepare_tree
prepare_boot
# A guest of another architecture runs that architecture's programs.
[ -z "$arch" ] || "$here/guest-root.sh" build "$arch" >/dev/null
echo "$kdir"
