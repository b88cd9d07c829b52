#!/usr/bin/env bash
# make system-test: nsfilter's Debian packages on a real, booted Debian 13
# system. A disk image is made from Debian's packages (systemd as PID 1, no
# lab initramfs), the way an operator's machine gets its kernels:
#
#   1. Debian 13 with systemd and trixie-backports' 7.2.12 kernel (amd64),
#      its headers and linux-source-7.2;
#   2. `apt install ./nsfilter-dkms_*.deb ./nsfilter_*.deb`: DKMS builds the
#      module for 7.2.12; loading at boot is switched on
#      (/etc/modules-load.d/nsfilter.conf) and two options set
#      (/etc/modprobe.d/nsfilter.conf), as the man page says;
#   3. a kernel upgrade: `apt install` of 7.3.4 in its amd64 and cloud-amd64
#      flavours, with their headers and linux-source-7.3: DKMS builds for
#      both without being asked.
#
# Each step runs in a chroot, at the host's speed. The image is then booted
# in QEMU (no network device) with Debian's own kernel and initramfs, once
# per kernel: 7.3.4 amd64 (the whole check: loaded at boot with the options,
# traffic of an `ip netns` namespace and of a PrivateNetwork=yes service in
# `journalctl -k`, `nsfilter netns` naming both, `nsfilter stat` against
# /proc/net/nsfilter), 7.3.4 cloud-amd64 (loaded at boot, logs), and 7.2.12
# (loaded at boot, logs, then `apt purge`: nothing of nsfilter may remain
# and `modprobe nsfilter` must fail). The guest side is
# scripts/system-test-guest.sh; it reports on the serial console.
#
# Usage: scripts/system-test.sh [DIR]   (DIR: where make deb put the .debs,
#                                        default deb/; the transcripts go to
#                                        DIR/system-test/)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(dirname "$here")
# shellcheck source=scripts/common.sh
. "$here/common.sh"
# shellcheck source=scripts/debian13.sh
. "$here/debian13.sh"

out=$(realpath -m "${1:-$top/deb}")
find_nsfilter_debs "$out"
command -v mkfs.ext4 >/dev/null || die "mkfs.ext4 not found: run scripts/setup.sh (e2fsprogs)"
qemu=${QEMU:-qemu-system-x86_64}
command -v "$qemu" >/dev/null || die "QEMU not found ($qemu): run scripts/setup.sh"
logs=$out/system-test
rm -rf "$logs"
mkdir -p "$logs"

k72=$LINUX_72_ABI-amd64
k73=$LINUX_73_RELEASE
k73cloud=$LINUX_73_ABI-cloud-amd64
# The packages of one kernel flavour: what linux-image-RELEASE depends on,
# and its headers.
flavour_debs() {
	local release=$1 version=$2 p
	for p in "linux-image-$release" "linux-base-$release" "linux-binary-$release" \
		"linux-modules-$release" "linux-headers-$release"; do
		deb13_fetch "$p" "$version"
	done
}
mapfile -t debs72 < <(
	flavour_debs "$k72" "$LINUX_72_VERSION"
	deb13_fetch "linux-headers-$LINUX_72_ABI-common" "$LINUX_72_VERSION"
	deb13_fetch "linux-kbuild-$LINUX_72_ABI" "$LINUX_72_VERSION"
	deb13_fetch linux-source-7.2 "$LINUX_72_VERSION"
)
mapfile -t debs73 < <(
	flavour_debs "$k73" "$LINUX_73_VERSION"
	flavour_debs "$k73cloud" "$LINUX_73_VERSION"
	deb13_fetch "linux-headers-$LINUX_73_ABI-common" "$LINUX_73_VERSION"
	deb13_fetch "linux-kbuild-$LINUX_73_ABI" "$LINUX_73_VERSION"
	deb13_fetch linux-source-7.3 "$LINUX_73_VERSION"
)
for d in "${debs72[@]}" "${debs73[@]}"; do
	[ -f "$d" ] || die "a kernel package is missing: $d"
done

base=$(deb13_root "a booted system, for make system-test" \
	"apt,systemd,systemd-sysv,dbus,udev,kmod,initramfs-tools,iproute2,iputils-ping,procps")
work=$NSFILTER_CACHE/system-test
exec 9>"$NSFILTER_CACHE/system-test.lock"
flock 9
rm -rf "$work"
mkdir -p "$work"
root=$work/root
say "copying the Debian 13 root into $root"
cp -a --reflink=auto "$base" "$root"
install -D -m 755 "$here/system-test-guest.sh" "$root/usr/local/sbin/systest"

# The image's own setup, in its root. Each step's transcript is kept.
cat >"$root/setup.sh" <<'EOF'
#!/bin/bash
# Runs inside the image's root; see scripts/system-test.sh.
set -euo pipefail
step=$1
shift
export DEBIAN_FRONTEND=noninteractive
apt_get() { apt-get -q -y -o Dpkg::Use-Pty=0 --no-install-recommends "$@"; }
case $step in
kernel)
	# trixie-backports, as docs/debian-packages.md tells an operator. Only
	# what must come from there does (PKG/trixie-backports, not -t, which
	# would also take backports' libelf1t64, and nsfilter-dkms's libelf-dev
	# would then not install): the kernel, and the linux-base it needs.
	sed 's/ trixie main$/ trixie-backports main/' /etc/apt/sources.list >/etc/apt/sources.list.d/backports.list
	apt-get -q update >/dev/null
	apt_get install linux-base/trixie-backports "$@"
	;;
nsfilter)
	apt_get install "$@"
	# The opt-in for loading at boot, and two options, as nsfilter(8) says.
	sed -i 's/^#nsfilter$/nsfilter/' /etc/modules-load.d/nsfilter.conf
	grep -qx nsfilter /etc/modules-load.d/nsfilter.conf
	echo 'options nsfilter log_rate=50 log_level=notice' >>/etc/modprobe.d/nsfilter.conf
	;;
upgrade)
	apt_get install "$@"
	;;
system)
	echo systest >/etc/hostname
	printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >/etc/fstab
	# The console is the test's: no login prompt on it.
	systemctl mask serial-getty@ttyS0.service getty@tty1.service >/dev/null 2>&1
	cat >/etc/systemd/system/systest.service <<-'UNIT'
		[Unit]
		Description=nsfilter's system test (scripts/system-test-guest.sh)
		After=systemd-modules-load.service systemd-journald.service
		[Service]
		Type=oneshot
		ExecStart=/usr/local/sbin/systest
		StandardOutput=tty
		StandardError=tty
		TTYPath=/dev/ttyS0
		[Install]
		WantedBy=multi-user.target
	UNIT
	cat >/etc/systemd/system/privnet-demo.service <<-'UNIT'
		[Unit]
		Description=A service with a network of its own (nsfilter's system test)
		[Service]
		PrivateNetwork=yes
		ExecStart=/bin/sh -c 'ping -c 3 -i 0.2 127.0.0.1 >/dev/null; exec sleep infinity'
	UNIT
	systemctl enable systest.service >/dev/null 2>&1
	dkms status
	# What each kernel's DKMS build took (its prepare step, then the build).
	grep -H -e '^nsfilter-dkms: .* prepared in' -e '^# elapsed time' \
		/var/lib/dkms/nsfilter/*/*/*/log/make.log | sed 's|^/var/lib/dkms/nsfilter/[^/]*/||' || true
	apt-get clean
	;;
esac
EOF

in_image() {
	local what=$1
	shift
	local start=$SECONDS
	say "image: $what"
	if ! in_root "$root" "$DEB13_DEBS" "$out" -- bash /setup.sh "$@" >"$logs/$1.log" 2>&1; then
		tail -n 30 "$logs/$1.log" >&2
		die "image: $what failed; transcript: $logs/$1.log (the root is left in $root)"
	fi
	echo "$what: $((SECONDS - start)) s" >>"$logs/times.txt"
}
build_start=$SECONDS
in_image "Debian's $k72 with its headers and linux-source-7.2" kernel "${debs72[@]}"
in_image "apt install nsfilter-dkms nsfilter (DKMS builds for $k72)" nsfilter "$dkms_deb" "$cmd_deb"
in_image "the kernel upgrade: apt install $k73 and $k73cloud (DKMS builds for both)" upgrade "${debs73[@]}"
in_image "systemd units, fstab, dkms status" system
cp "$logs/system.log" "$logs/dkms-status.txt"
for k in "$k72" "$k73" "$k73cloud"; do
	grep -q "^nsfilter/.*, $k, x86_64: installed" "$logs/dkms-status.txt" ||
		die "dkms status does not list nsfilter installed for $k: $(cat "$logs/dkms-status.txt")"
done
grep -E '^nsfilter-dkms: |Building module|dkms.*nsfilter' "$logs/nsfilter.log" "$logs/upgrade.log" | sort -u >"$logs/dkms-lines.txt" || true
rm "$root/setup.sh"

# The disk: ext4 made from the root as it is (mkfs.ext4 -d), 1 GiB to spare.
image=$work/disk.raw
size_mb=$(($(du -sm "$root" | cut -f1) + 1024))
say "image: an ext4 disk of $size_mb MiB from the root"
mkfs.ext4 -q -F -L systest -d "$root" "$image" "${size_mb}M"
for k in "$k72" "$k73" "$k73cloud"; do
	vmlinuz=$root/boot/vmlinuz-$k
	[ -f "$vmlinuz" ] || vmlinuz=$root/usr/lib/modules/$k/vmlinuz
	cp "$vmlinuz" "$work/vmlinuz-$k"
	cp "$root/boot/initrd.img-$k" "$work/initrd.img-$k" || die "no initramfs for $k in the image"
done
echo "image build: $((SECONDS - build_start)) s in all, disk $size_mb MiB" >>"$logs/times.txt"
rm -rf "$root"

# One boot: KERNEL MODE. Passes if the guest reports 'SYSTEST: END 0' and
# the kernel reports nothing. An oops panics, and the panic ends QEMU
# (oops=panic panic=-1 -no-reboot); a guest that reported its end but does
# not power off within 60 s, or never ends within 15 minutes, is stopped.
boot() {
	local k=$1 mode=$2 console=$logs/boot-$1.log start=$SECONDS pid ended=
	say "booting $k ($mode checks; console: $console)"
	: >"$console"
	# TCG (KVM may be broken, see NOTES); Debian's 7.x kernels need one
	# TCG thread and the HPET clock under it (see userspace/src/boot.rs).
	"$qemu" -m 2048 -smp 2 -accel tcg,thread=single \
		-no-reboot -nic none -serial "file:$console" -monitor none -display none \
		-kernel "$work/vmlinuz-$k" -initrd "$work/initrd.img-$k" \
		-drive "file=$image,format=raw,if=virtio" \
		-append "root=/dev/vda rw console=ttyS0 loglevel=3 oops=panic panic=-1 clocksource=hpet systemd.show_status=0 systest=$mode" \
		</dev/null >"$logs/qemu-$k.log" 2>&1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		if [ -z "$ended" ] && grep -aq '^SYSTEST: END' "$console"; then
			ended=$SECONDS
		fi
		if { [ -n "$ended" ] && ((SECONDS - ended > 60)); } || ((SECONDS - start > 900)); then
			kill "$pid" 2>/dev/null || true
			break
		fi
		sleep 1
	done
	wait "$pid" 2>/dev/null || true
	echo "boot $k ($mode): $((SECONDS - start)) s" >>"$logs/times.txt"
	grep -a '^SYSTEST: ' "$console" || true
	if grep -aE 'BUG:|Oops|WARNING:|Kernel panic|rust_kernel: panicked' "$console" >&2; then
		die "$k: the kernel reported a failure (console: $console)"
	fi
	grep -aq '^SYSTEST: END 0' "$console" ||
		die "$k: the system test failed or did not end within 900 s (console: $console)"
}
boot "$k73" full
boot "$k73cloud" boot
boot "$k72" purge
rm -f "$image"
say "system test green; times:"
cat "$logs/times.txt"
