#!/usr/bin/env bash
# Builds or prepares a kernel for nsfilter into the cache, once per input.
#
# Usage: scripts/kernel.sh kdir  [KERNEL]   print its build folder (KDIR), build nothing
#        scripts/kernel.sh build [KERNEL]   build it unless the cache has it, print KDIR
#        scripts/kernel.sh lab-args [KERNEL]  print nsfilter-lab's options for it
#                                           (--kernel IMAGE and what it needs), build nothing
#
# KERNEL is one of:
#   lab, debug, race  the lab kernel: tinyconfig + scripts/lab.config (+ for
#                     another name, scripts/NAME.config on top) from Linux 6.12
#                     LTS (Debian's linux-source-6.12, or $KSRC: a tarball or folder);
#   NAME-7.3          the same configuration from Debian 13's linux-source-7.3
#                     (lab-7.3, debug-7.3...);
#   NAME-arm64        the same configuration for arm64 (+ scripts/arm64.config:
#                     QEMU's virt machine), cross-built by clang (lab-arm64);
#   debian            Debian 13's own linux-image-7.3.4+deb13-amd64, unmodified, with
#                     the Rust metadata its headers lack rebuilt in a Debian 13 root
#                     by the compilers that built it (scripts/debian-kernel.sh);
#   debian-rt         the same for its PREEMPT_RT flavour, linux-image-7.3.4+deb13-rt-amd64;
#   debian-arm64      the same for arm64, linux-image-7.3.4+deb13-arm64 (prepared
#                     by Debian's cross compiler).
# Versions are pinned in scripts/versions.sh.
#
# The cache entry is keyed by the source, the fragments, RECIPE below and the
# toolchain versions, so any change to them builds a new kernel and nothing
# else does. An entry is complete only once its marker file is written, last.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/common.sh
. "$here/common.sh"
# shellcheck source=scripts/debian13.sh
. "$here/debian13.sh"
# shellcheck source=scripts/rust-tree.sh
. "$here/rust-tree.sh"

# Bump when the build steps below change in a way that changes the kernel.
RECIPE=2

action=${1:-}
variant=${2:-lab}
case "$action" in
kdir | build | lab-args) ;;
-h | --help)
	sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
*) die "usage: scripts/kernel.sh kdir|build|lab-args [KERNEL]" ;;
esac

case "$variant" in
debian | debian-rt | debian-arm64) exec "$here/debian-kernel.sh" "$action" "$variant" ;;
esac
# The lab kernels are built by the pinned Rust.
pin_rust

# NAME-7.3: the NAME configuration from linux-source-7.3 (fetched on build).
base=$variant
ksrc=${KSRC:-$DEFAULT_KSRC}
# NAME-arm64: for arm64, cross-built (clang targets it with ARCH=arm64).
arch=x86
image=arch/x86/boot/bzImage
if [[ "$base" == *-arm64 ]]; then
	arch=arm64
	image=arch/arm64/boot/Image
	base=${base%-arm64}
fi
if [[ "$base" == *-7.3 ]]; then
	base=${base%-7.3}
	ksrc=package:linux-source-7.3
fi
fragment=$here/$base.config
fragments=("$here/lab.config")
[ "$base" = lab ] || fragments+=("$fragment")
[ "$arch" = x86 ] || fragments+=("$here/$arch.config")
[ -f "$fragment" ] || die "no config fragment for kernel '$variant' ($fragment)"
[ "$ksrc" = package:linux-source-7.3 ] || [ -e "$ksrc" ] ||
	die "kernel source '$ksrc' not found (set KSRC to a tarball or a source folder)"

# Identity of the source: a tarball by its content (hash remembered by path,
# size and time, since hashing 150 MB each time would slow every make), a folder
# by its path and version, a pinned Debian package by its version.
source_id() {
	if [ "$ksrc" = package:linux-source-7.3 ]; then
		echo "linux-source-7.3 $LINUX_73_VERSION"
		return
	fi
	if [ -d "$ksrc" ]; then
		[ -f "$ksrc/Makefile" ] || die "'$ksrc' is not a kernel source folder (no Makefile)"
		printf 'dir %s %s\n' "$(realpath "$ksrc")" "$(make -s -C "$ksrc" kernelversion 2>/dev/null)"
		return
	fi
	local stamp memo
	stamp=$(stat -L -c '%s %Y' "$ksrc")
	memo=$NSFILTER_CACHE/hashes/$(realpath "$ksrc" | sha256sum | cut -c1-16)
	if [ -f "$memo" ] && [ "$(head -n1 "$memo")" = "$stamp" ]; then
		tail -n1 "$memo"
		return
	fi
	mkdir -p "$(dirname "$memo")"
	local sum
	sum=$(sha256sum <"$ksrc" | cut -d' ' -f1)
	printf '%s\n%s\n' "$stamp" "$sum" >"$memo.tmp" && mv "$memo.tmp" "$memo"
	echo "$sum"
}

key=$({
	source_id
	cat "${fragments[@]}"
	echo "recipe $RECIPE"
	rustc -vV
	"clang$LLVM_SUFFIX" --version 2>/dev/null || echo "no clang$LLVM_SUFFIX"
	echo "bindgen $BINDGEN_VERSION LLVM=$LLVM"
} | sha256sum | cut -c1-16)
entry=$NSFILTER_CACHE/kernel/$variant-$key
kdir=$entry/build

case "$action" in
kdir)
	echo "$kdir"
	exit 0
	;;
lab-args)
	# The tests this kernel cannot run, which alone may report SKIP: fault
	# injection is in the debug configuration only.
	skips=fault_injection_netns_and_insmod
	[ "$base" != debug ] || skips=
	# KASAN, lockdep and kmemleak (debug), KCSAN (race) under TCG: the quick
	# suite took 16 minutes for its first 22 tests on the debug kernel.
	factor=1
	[ "$base" = lab ] || factor=4
	# Their checks' own memory (KASAN's shadow and quarantine, kmemleak's
	# and lockdep's records) on top of the lab's: at 512 MiB the debug
	# kernel killed the agent while 100 namespaces flooded at once.
	memory=512
	[ "$base" = lab ] || memory=1024
	# Another architecture: emulated instruction by instruction, and with
	# that architecture's programs in the guest.
	guest=
	if [ "$arch" != x86 ]; then
		factor=$((factor * 2))
		guest=" --guest-root $("$here/guest-root.sh" dir "$arch")"
	fi
	echo "--kernel $kdir/$image --expect-skip ${skips:-,} --time-factor $factor --memory $memory$guest"
	exit 0
	;;
esac

# A guest of another architecture runs that architecture's programs.
[ "$arch" = x86 ] || "$here/guest-root.sh" build "$arch" >/dev/null

mkdir -p "$NSFILTER_CACHE/kernel"
exec 9>"$entry.lock"
flock 9
if [ -f "$entry/complete" ]; then
	echo "$kdir"
	exit 0
fi

[ -x "$BINDGEN" ] || die "bindgen not found at $BINDGEN: run scripts/setup.sh first"
[ "$ksrc" != package:linux-source-7.3 ] || ksrc=$(deb13_source_tarball)
say "building the $variant kernel into $entry (6 to 12 minutes on 2 cores, once)"
start=$(date +%s)
rm -rf "$entry"
mkdir -p "$entry"
if [ -d "$ksrc" ]; then
	src=$(realpath "$ksrc")
else
	say "unpacking $ksrc"
	mkdir -p "$entry/src"
	tar -xf "$ksrc" -C "$entry/src" --strip-components=1
	src=$entry/src
fi

# Another architecture than the host's is named to the kernel's make, which
# then has clang target it (no cross binutils needed with LLVM=).
karch=()
[ "$arch" = x86 ] || karch=(ARCH="$arch")
kmake() {
	make -s -C "$src" O="$kdir" LLVM="$LLVM" BINDGEN="$BINDGEN" "${karch[@]}" "$@"
}

if ! kmake rustavailable >"$entry/rustavailable.log" 2>&1; then
	cat "$entry/rustavailable.log" >&2
	die "the kernel says Rust is not available with this toolchain (see above)"
fi
kmake tinyconfig >/dev/null
"$src/scripts/kconfig/merge_config.sh" -m -O "$kdir" "$kdir/.config" "${fragments[@]}" >/dev/null
kmake olddefconfig >/dev/null

# A fragment line that olddefconfig dropped means a dependency is missing:
# name it now rather than fail obscurely later.
lost=()
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=*) grep -qxF "$line" "$kdir/.config" || lost+=("$line") ;;
	"# CONFIG_"*" is not set")
		option=${line#\# }
		option=${option%% *}
		! grep -q "^$option=[ym]" "$kdir/.config" || lost+=("$line")
		;;
	esac
done < <(cat "${fragments[@]}")
((${#lost[@]} == 0)) || die "these options did not survive olddefconfig: ${lost[*]}"

say "compiling ${image##*/} and modules (log: $entry/build.log)"
kmake -j"$(nproc)" "${image##*/}" modules >"$entry/build.log" 2>&1 &
progress $! "$kdir" "compiling the $variant kernel"
if ! wait $!; then
	tail -n 40 "$entry/build.log" >&2
	die "kernel build failed; full log: $entry/build.log"
fi
[ -f "$kdir/Module.symvers" ] || die "the kernel build produced no Module.symvers"
# Proof that out-of-tree Rust modules build against it, before nsfilter does.
check_rust_tree "$kdir" "$entry/sample.log" >/dev/null

date -u +%FT%TZ >"$entry/complete"
say "kernel built in $(($(date +%s) - start)) s"
echo "$kdir"
