# shellcheck shell=bash
# Rebuilds the Rust metadata that a distribution kernel's headers lack, so
# that out-of-tree Rust modules can be built for that kernel; sourced by
# debian-kernel.sh (KERNEL=debian, in a Debian 13 root) and host-kdir.sh (the
# running kernel of a Debian 13 machine), after common.sh.
#
# prepare_rust_tree TARBALL CONFIG SYMVERS RELEASE KDIR
#   Unpacks the kernel source TARBALL into KDIR, configures it with the
#   image's CONFIG, runs `modules_prepare` with the image's RELEASE (which
#   builds rust/*.rmeta and the proc-macro libraries) and installs the image's
#   SYMVERS. Each command runs through the function `in_tree` that the caller
#   defines (plainly, or inside a build root), in KDIR. The compilers must be
#   the image's own: the caller checks rustc, this checks that olddefconfig
#   changed nothing but the compiler's own lines.
#
# check_rust_tree KDIR LOG
#   Builds the kernel's samples/rust/rust_minimal out of tree against KDIR,
#   the way nsfilter is built (scripts/kmake.sh): modpost checks every Rust
#   symbol it uses against Module.symvers, and its vermagic must name the
#   release. Prints the module's path.

# use_kernel_rustc CONFIG: makes `rustc` the one whose version text is the
# kernel's CONFIG_RUSTC_VERSION_TEXT, for this shell and what it runs: rustup's
# toolchain of that version if it is installed (RUSTUP_TOOLCHAIN, since the
# kernel's make runs rustc in the tree, outside any rust-toolchain.toml), else
# PATH's rustc, else the distribution's /usr/bin/rustc, which rustup's often
# shadows. Dies saying what differs.
use_kernel_rustc() {
	local want version have
	want=$(sed -n 's/^CONFIG_RUSTC_VERSION_TEXT="\(.*\)"$/\1/p' "$1")
	version=$(awk '{print $2}' <<<"$want")
	if [ -n "$version" ] && command -v rustup >/dev/null &&
		rustup toolchain list 2>/dev/null | grep -q "^$version-" &&
		[ "$(RUSTUP_TOOLCHAIN=$version rustc --version 2>/dev/null)" = "$want" ]; then
		export RUSTUP_TOOLCHAIN=$version
		return 0
	fi
	have=$(rustc --version 2>/dev/null || echo "no rustc")
	[ "$have" != "$want" ] || return 0
	if [ "$(/usr/bin/rustc --version 2>/dev/null)" = "$want" ]; then
		export PATH=/usr/bin:$PATH
		return 0
	fi
	die "the kernel was built by '$want', but rustc is '$have' (Debian: apt install rustc rust-src)"
}

# tools_differ MESSAGE: the tools at hand are not the ones that configured
# the kernel. Dies, unless the caller defined its own (nsfilter-dkms skips
# the kernel: something to install, not a failed build).
declare -F tools_differ >/dev/null || tools_differ() { die "$@"; }

# needs_compat_cc CONFIG: whether preparing the tree builds arm64's vDSO for
# 32-bit programs, with gcc for 32-bit Arm (Debian's arm64 kernels do).
needs_compat_cc() {
	grep -qx 'CONFIG_ARM64=y' "$1" && grep -qx 'CONFIG_COMPAT_VDSO=y' "$1" &&
		grep -qx 'CONFIG_CC_IS_GCC=y' "$1"
}

# kernel_cc_args CONFIG: sets the array cc_args (the caller's, if it has one)
# to the make arguments that select the C compiler CONFIG_CC_VERSION_TEXT
# names (Debian's: x86_64-linux-gnu-gcc-14 on amd64, aarch64-linux-gnu-gcc-14
# on arm64) as CC and HOSTCC. A compiler for another architecture than this
# machine's (Debian's arm64 kernel, prepared on x86-64 by Debian's cross
# compiler of the same version) is CC only: CROSS_COMPILE and ARCH follow
# from it, and HOSTCC is the same version's compiler for this machine. Dies
# when CONFIG names no compiler, or one for an architecture not known here.
kernel_cc_args() {
	local cc prefix machine
	cc=$(sed -n 's/^CONFIG_CC_VERSION_TEXT="\([^ ]*\) .*/\1/p' "$1")
	[ -n "$cc" ] || die "$1 names no compiler (CONFIG_CC_VERSION_TEXT)"
	prefix=
	[[ "$cc" != *-linux-gnu-* ]] || prefix=${cc%-linux-gnu-*}-linux-gnu-
	machine=$(uname -m)
	# arm64's vDSO for 32-bit programs is built by the same gcc for 32-bit
	# Arm (Debian: gcc-14-arm-linux-gnueabihf); Kconfig drops
	# CONFIG_COMPAT_VDSO without it, and modules_prepare builds it.
	if needs_compat_cc "$1"; then
		cc_args=(CROSS_COMPILE_COMPAT=arm-linux-gnueabihf- CC_COMPAT="arm-linux-gnueabihf-gcc${cc##*gcc}")
	else
		cc_args=()
	fi
	# The host's own compiler (x86_64-linux-gnu-gcc-14 on x86-64, or
	# x86_64-pc-linux-gnu-gcc elsewhere): CC and HOSTCC.
	if [ -z "$prefix" ] || [ "${prefix%%-*}" = "$machine" ]; then
		cc_args+=(CC="$cc" HOSTCC="$cc")
		return 0
	fi
	cc_args+=(CC="$cc" HOSTCC="$machine-linux-gnu-${cc#"$prefix"}" CROSS_COMPILE="$prefix")
	case "$prefix" in
	aarch64-*) cc_args+=(ARCH=arm64) ;;
	*) die "$1: the kernel was built by $cc, for an architecture nsfilter does not know" ;;
	esac
}

prepare_rust_tree() {
	local tarball=$1 config=$2 symvers=$3 release=$4 kdir=$5
	local cc_args
	kernel_cc_args "$config"
	mkdir -p "$kdir"
	tar -xf "$tarball" -C "$kdir" --strip-components=1
	cp "$config" "$kdir/.config"
	(
		cd "$kdir"
		# The image's signing keys are not in the source; the tree never signs.
		in_tree scripts/config --set-str SYSTEM_TRUSTED_KEYS "" --set-str SYSTEM_REVOCATION_KEYS ""
		local kmake=(make -s "${cc_args[@]}" KERNELRELEASE="$release")
		in_tree "${kmake[@]}" olddefconfig >"$kdir/.nsfilter-prepare.log" 2>&1 ||
			{ tail -n 20 "$kdir/.nsfilter-prepare.log" >&2 && die "olddefconfig failed"; }
		# Nothing but the compiler's version text and plugin lines may change:
		# anything else means a tool that Kconfig probes is missing or differs.
		local changed
		changed=$(diff <(grep '^CONFIG_' "$config") <(grep '^CONFIG_' .config) | grep '^[<>]' |
			grep -v -e CC_VERSION_TEXT -e GCC_PLUGIN -e SYSTEM_TRUSTED_KEYS -e SYSTEM_REVOCATION_KEYS || true)
		[ -z "$changed" ] ||
			tools_differ "olddefconfig changed the kernel's configuration (a tool differs or is missing): $(echo "$changed" | paste -sd' ')"
		if ! in_tree "${kmake[@]}" -j"$(nproc)" modules_prepare >>"$kdir/.nsfilter-prepare.log" 2>&1; then
			tail -n 40 "$kdir/.nsfilter-prepare.log" >&2
			die "modules_prepare failed; full log: $kdir/.nsfilter-prepare.log"
		fi
	) || exit # with the subshell's status (tools_differ may choose it)
	cp "$symvers" "$kdir/Module.symvers"
	[ -f "$kdir/rust/libkernel.rmeta" ] || die "modules_prepare made no rust/libkernel.rmeta"
	[ "$(cat "$kdir/include/config/kernel.release")" = "$release" ] ||
		die "the prepared tree's release is not $release"
}

check_rust_tree() {
	local kdir=$1 log=$2 release sample vermagic
	release=$(cat "$kdir/include/config/kernel.release")
	sample=$(dirname "$kdir")/rust_minimal
	rm -rf "$sample"
	mkdir -p "$sample"
	# An O= build tree links its source as source/.
	if [ -d "$kdir/source/samples" ]; then
		cp "$kdir/source/samples/rust/rust_minimal.rs" "$sample/"
	else
		cp "$kdir/samples/rust/rust_minimal.rs" "$sample/"
	fi
	echo 'obj-m := rust_minimal.o' >"$sample/Kbuild"
	if ! (cd "$sample" && "${here:?}/kmake.sh" "$kdir" M="$sample" modules) >"$log" 2>&1; then
		cat "$log" >&2
		die "the kernel's Rust sample module did not build against the prepared tree $kdir"
	fi
	vermagic=$(modinfo -F vermagic "$sample/rust_minimal.ko")
	[ "${vermagic%% *}" = "$release" ] || die "the sample module's vermagic is '$vermagic', not $release"
	echo "$sample/rust_minimal.ko"
}
