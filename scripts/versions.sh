# shellcheck shell=bash
# Every pinned version that goes into a kernel, a build root or a tool, in one
# place; sourced by scripts/common.sh. Debian drops superseded versions from its
# archive: set-up then names the version it serves, and updating is a one-line
# change here. Each cache entry is keyed by the versions it is made from, so a
# change here builds new entries and leaves the old ones alone.

# The host (Debian 12 or 13): the 6.12 LTS source of KERNEL=lab, and the Rust
# and bindgen that build the lab kernels. Debian 13 serves the same 6.12 LTS
# release under its own version. rustc comes from rustup; set-up installs the
# pinned toolchain for this clone if it is missing.
: "${LINUX_612_TRIXIE_VERSION:=6.12.117-1}"
if [ "$(. /etc/os-release 2>/dev/null && echo "${VERSION_ID:-}")" = 13 ]; then
	: "${LINUX_SOURCE_612_VERSION:=$LINUX_612_TRIXIE_VERSION}"
else
	: "${LINUX_SOURCE_612_VERSION:=6.12.117-1~deb12u1}"
fi
# RUST_VERSION is rust-toolchain.toml's channel: the one place it is pinned.
: "${RUST_VERSION:=$(sed -n 's/^channel = "\(.*\)"$/\1/p' "$(dirname "${BASH_SOURCE[0]}")/../rust-toolchain.toml")}"
: "${BINDGEN_VERSION:=0.72.1}"
# cargo-mutants for `make mutants`.
: "${CARGO_MUTANTS_VERSION:=27.1.0}"

# Debian 13 (trixie, and its backports for the 7.3 kernel), fetched with a
# private apt configuration: the source of KERNEL=lab-7.3, and Debian's own
# Rust-enabled kernel of KERNEL=debian (debian-rt, debian-arm64).
: "${DEBIAN13_MIRROR:=http://deb.debian.org/debian}"
: "${DEBIAN13_SECURITY_MIRROR:=http://deb.debian.org/debian-security}"
: "${LINUX_73_VERSION:=7.3.4-1~bpo13+1}"
: "${LINUX_73_ABI:=7.3.4+deb13}"
: "${LINUX_73_RELEASE:=$LINUX_73_ABI-amd64}"
# make deb-check: a second backports kernel, installed without its
# linux-source (DKMS must skip it and say why), and trixie's own 6.12, built
# without Rust (skipped too), LINUX_612_TRIXIE_VERSION above.
: "${LINUX_72_VERSION:=7.2.12-1~bpo13+1}"
: "${LINUX_72_ABI:=7.2.12+deb13}"
: "${LINUX_612_TRIXIE_ABI:=6.12.117+deb13}"

# The trixie build root for KERNEL=debian: the very compilers that built
# Debian's kernel (its CONFIG_RUSTC_VERSION_TEXT and CONFIG_CC_VERSION_TEXT).
: "${TRIXIE_RUSTC_VERSION:=1.85.1+dfsg1-1+deb13u1}"
: "${TRIXIE_GCC_VERSION:=14.2.0-19}"
# KERNEL=debian-arm64: Debian's arm64 kernel names aarch64-linux-gnu-gcc-14
# (Debian 14.2.0-19); on x86-64 that is trixie's cross compiler built from it.
: "${TRIXIE_CROSS_GCC_VERSION:=14.2.0-19cross1}"
: "${TRIXIE_BINDGEN_VERSION:=0.71.1-6}"
: "${TRIXIE_LIBCLANG_VERSION:=1:19.0-63}"
: "${TRIXIE_PAHOLE_VERSION:=1.30-1}"
