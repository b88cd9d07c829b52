#!/usr/bin/env bash
# Installs what nsfilter needs to build a Rust-enabled lab kernel, the module and
# the lab VM. Idempotent: a second run only checks, and says nothing is missing.
#
# Everything that is not a Debian package goes into the cache folder
# ($NSFILTER_CACHE, default ~/.cache/nsfilter), never into the clone.
#
# Usage: scripts/setup.sh [--check] [--kernel KERNEL] [--rehearse] [--packaging]
#   --check     install nothing; exit 1 and print what is missing.
#   --kernel K  also what KERNEL=K needs (debian, debian-rt, debian-arm64:
#               mmdebstrap for their Debian 13 build root; every Debian 13 pin
#               must still be served; NAME-arm64 and debian-arm64:
#               qemu-system-arm, mmdebstrap and rustup's
#               aarch64-unknown-linux-musl target).
#   --rehearse  also what `make rehearse` needs (mmdebstrap).
#   --packaging also what `make deb`, `deb-check` and `system-test` need
#               (mmdebstrap and Debian's keyring for the Debian 13 roots,
#               dpkg-dev for the changelog, e2fsprogs for the disk image).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/common.sh
. "$here/common.sh"

check_only=0
kernel=lab
extra=()
while [ $# -gt 0 ]; do
	case "$1" in
	--check) check_only=1 ;;
	--kernel)
		kernel=${2:?--kernel needs a value}
		shift
		;;
	--rehearse) extra+=(mmdebstrap) ;;
	--packaging) extra+=(mmdebstrap debian-archive-keyring dpkg-dev e2fsprogs) ;;
	-h | --help)
		sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*) die "unknown option '$1' (try --help)" ;;
	esac
	shift
done
case "$kernel" in debian | debian-rt | debian-arm64) extra+=(mmdebstrap debian-archive-keyring) ;; esac
# An arm64 lab (KERNEL=NAME-arm64): its QEMU (qemu-system-arm has
# qemu-system-aarch64), and mmdebstrap to unpack its guest's programs.
case "$kernel" in *-arm64) extra+=(qemu-system-arm mmdebstrap debian-archive-keyring) ;; esac

# Debian packages: the kernel source, the LLVM toolchain the kernel's Rust
# support is built with, the kernel's build tools, what the lab VM runs
# (busybox, iproute2's ip, nftables' nft), and the C linker (cc) that cargo
# links with (rustup does not bring one).
# linux-source-6.12 is pinned (scripts/versions.sh): the lab kernel's source.
packages=(
	clang-19 lld-19 llvm-19 libclang-19-dev
	flex bison bc libelf-dev libssl-dev cpio kmod make xz-utils
	busybox-static iproute2 nftables qemu-system-x86 python3 binutils logwatch
	gcc libc6-dev
	"${extra[@]}"
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
if [ -z "${KSRC:-}" ] && [ "$(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null)" != "$LINUX_SOURCE_612_VERSION" ]; then
	missing+=("linux-source-6.12=$LINUX_SOURCE_612_VERSION")
fi

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
	# A pin that Debian no longer serves: one line naming what it serves.
	for p in "${missing[@]}"; do
		[[ "$p" == *=* ]] || continue
		served=$(apt-cache madison "${p%%=*}" | awk -F'|' '{gsub(/ /, "", $2); print $2}' | sort -u -r -V | paste -sd' ')
		grep -qxF -- "${p#*=}" <(tr ' ' '\n' <<<"$served") ||
			die "Debian no longer serves ${p%%=*} ${p#*=} (it serves: ${served:-nothing}); update the pin in scripts/versions.sh"
	done
	since=$SECONDS
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
	say "Debian packages installed in $((SECONDS - since)) s"
fi

# Rust: the kernel builds `core` from source with the same rustc. The pinned
# toolchain (rust-toolchain.toml) serves this clone only; set-up installs it
# if rustup lacks it, and never changes the user's default toolchain.
command -v rustc >/dev/null || die "rustc not found: install Rust with rustup (https://rustup.rs)"
command -v cargo >/dev/null || die "cargo not found: install Rust with rustup"
if command -v rustup >/dev/null && ! rustup toolchain list | grep -q "^$RUST_VERSION-"; then
	((check_only)) && die "Rust $RUST_VERSION is not installed: run 'rustup toolchain install $RUST_VERSION'"
	say "installing Rust $RUST_VERSION for this clone (rust-toolchain.toml; your default toolchain stays as it is)"
	since=$SECONDS
	rustup toolchain install "$RUST_VERSION" --profile minimal --component rust-src,rustfmt,clippy
	say "Rust $RUST_VERSION installed in $((SECONDS - since)) s"
fi
pin_rust
have_rust=$(rustc --version | awk '{print $2}')
[ "$have_rust" = "$RUST_VERSION" ] ||
	die "rustc is $have_rust, the lab kernels are pinned to $RUST_VERSION (rust-toolchain.toml): install Rust with rustup (https://rustup.rs), which then follows the pin"
sysroot=$(rustc --print sysroot)
if [ ! -d "$sysroot/lib/rustlib/src/rust/library/core" ]; then
	((check_only)) && die "rust-src is missing: run 'rustup component add rust-src'"
	command -v rustup >/dev/null || die "rust-src is missing and rustup is not installed"
	say "adding the rust-src component"
	rustup component add rust-src
fi
# The agent for an arm64 guest: static, for aarch64-unknown-linux-musl, whose
# standard library rustup brings (linked by rust-lld, which the toolchain has).
if [[ "$kernel" == *-arm64 ]] && ! rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-musl; then
	((check_only)) && die "the aarch64-unknown-linux-musl target is missing: run 'rustup target add aarch64-unknown-linux-musl'"
	say "adding the aarch64-unknown-linux-musl target (the arm64 guest's agent)"
	rustup target add aarch64-unknown-linux-musl
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
	say "building bindgen-cli $BINDGEN_VERSION (1 to 2 minutes, once)"
	root=$(dirname "$(dirname "$BINDGEN")")
	mkdir -p "$(dirname "$root")"
	rm -rf "$root.tmp"
	since=$SECONDS
	LIBCLANG_PATH=$LIBCLANG_PATH cargo install --quiet --locked --root "$root.tmp" \
		bindgen-cli --version "$BINDGEN_VERSION"
	rm -rf "$root"
	mv "$root.tmp" "$root"
	say "bindgen built in $((SECONDS - since)) s"
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

# Debian 13's packages (KERNEL=lab-7.3 and debian) come through a private apt
# configuration in the cache: check that every pin is still served.
case "$kernel" in
*-7.3 | debian | debian-rt | debian-arm64)
	# shellcheck source=scripts/debian13.sh
	. "$here/debian13.sh"
	pins=("linux-source-7.3=$LINUX_73_VERSION")
	case "$kernel" in
	debian | debian-rt)
		release=$LINUX_73_RELEASE
		[ "$kernel" = debian ] || release=$LINUX_73_ABI-rt-amd64
		for p in "linux-binary-$release" "linux-modules-$release" \
			"linux-headers-$release" "linux-headers-$LINUX_73_ABI-common" "linux-kbuild-$LINUX_73_ABI"; do
			pins+=("$p=$LINUX_73_VERSION")
		done
		;;
	debian-arm64)
		# The kernel's packages are arm64's (lists of their own), its
		# compilers the host's: trixie's cross compiler.
		arm64_pins=()
		for p in binary modules headers; do
			arm64_pins+=("linux-$p-$LINUX_73_ABI-arm64=$LINUX_73_VERSION")
		done
		DEB13_ARCH=arm64 deb13_check_pins "${arm64_pins[@]}"
		pins+=("gcc-14-aarch64-linux-gnu=$TRIXIE_CROSS_GCC_VERSION")
		;;
	esac
	[[ "$kernel" != debian* ]] || mapfile -t -O "${#pins[@]}" pins < <(trixie_packages | tr ',' '\n' | grep -F =)
	deb13_check_pins "${pins[@]}"
	;;
esac

say "set-up complete (cache: $NSFILTER_CACHE)"
