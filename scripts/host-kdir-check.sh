#!/usr/bin/env bash
# make host-kdir-check: the "Debian 13 with the backports kernel" steps of
# docs/install.md, checked through KERNEL=debian. A throwaway Debian 13
# machine (an overlay on the cached trixie root, which holds Debian's rustc,
# rust-src, bindgen, gcc-14 and the build tools of step 2) gets step 1's headers and
# source of 7.3.4+deb13-amd64 installed by apt, then runs step 3's
# `make host-kdir` and `make KDIR=...` as a user would, in a copy of the
# clone's files (the clone itself gets no build products). The nsfilter.ko
# built there is then loaded into Debian's unmodified kernel in the lab VM:
# it must log exactly the two packets of one ping in a namespace of its own,
# unload, and leave the kernel tainted O and E only.
#
# Usage: scripts/host-kdir-check.sh NSFILTER-LAB   (after make kernel KERNEL=debian)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(dirname "$here")
# shellcheck source=scripts/common.sh
. "$here/common.sh"
# shellcheck source=scripts/debian13.sh
. "$here/debian13.sh"

lab=$(realpath "${1:?usage: scripts/host-kdir-check.sh NSFILTER-LAB}")
[ "$(id -u)" -eq 0 ] || die "host-kdir-check needs root (overlay, chroot)"
start=$(date +%s)
release=$LINUX_73_RELEASE
debs=()
for p in "linux-headers-$release" "linux-headers-$LINUX_73_ABI-common" "linux-kbuild-$LINUX_73_ABI" \
	linux-source-7.3 "linux-base-$release"; do
	debs+=("$(deb13_fetch "$p" "$LINUX_73_VERSION")")
done
root=$(trixie_root)

work=$(mktemp -d "${TMPDIR:-/var/tmp}/nsfilter-host-kdir.XXXXXX")
cleanup() {
	local rc=$?
	if grep -qF " $work" /proc/self/mountinfo; then
		echo "nsfilter: error: something is still mounted in $work; not deleting it" >&2
	else
		rm -rf "$work"
	fi
	echo "host-kdir-check: $(($(date +%s) - start)) s wall ($([ $rc -eq 0 ] && echo passed || echo "FAILED, status $rc"))"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$work/upper" "$work/work" "$work/merged" "$work/debs" "$work/out" "$work/src"
cp "${debs[@]}" "$work/debs/"
# The clone's files as they are (tracked and new, not ignored), not its builds.
git -C "$top" ls-files -z --cached --others --exclude-standard |
	(cd "$top" && tar --null -T - -cf - 2>/dev/null) | tar -xf - -C "$work/src"

say "a Debian 13 machine with the backports kernel's headers and source; then make host-kdir"
unshare --mount --propagation private -- bash -c '
	set -e
	root=$1 work=$2 release=$3
	m=$work/merged
	mount -t overlay overlay -o "lowerdir=$root,upperdir=$work/upper,workdir=$work/work" "$m"
	mount -t proc proc "$m/proc"
	mount --rbind /sys "$m/sys"
	mount --rbind /dev "$m/dev"
	mount -t tmpfs tmpfs "$m/tmp"
	mkdir -p "$m/debs" "$m/nsfilter" "$m/out"
	mount --bind "$work/debs" "$m/debs"
	mount --bind "$work/out" "$m/out"
	mount --bind "$work/src" "$m/nsfilter"
	cp /etc/resolv.conf "$m/etc/resolv.conf"
	cp /etc/ssl/certs/ca-certificates.crt "$m/etc/ssl/certs/ca-certificates.crt"
	exec chroot "$m" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
		NSFILTER_CACHE=/tmp/cache /bin/bash -c "
		set -e
		apt-get -q update >/tmp/apt.log 2>&1
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends /debs/*.deb \
			>>/tmp/apt.log 2>&1 || { tail -n 20 /tmp/apt.log >&2; exit 1; }
		cd /nsfilter
		# Step 3, as docs/install.md writes it (for the release the lab
		# boots: this machine runs another kernel).
		make host-kdir HOST_RELEASE=$release
		make KDIR=\"\$(scripts/host-kdir.sh $release)\"
		cp nsfilter.ko /out/
	"
' host-kdir-check "$root" "$work" "$release"

say "loading the nsfilter.ko built there into Debian's own kernel"
# One ping in a namespace: its request and its reply enter PRE_ROUTING.
out=$("$lab" exec --kernel-variant debian --no-module --add "$work/out/nsfilter.ko:/root/nsfilter.ko" -- \
	'insmod /root/nsfilter.ko && ip netns add check && ip -n check link set lo up &&
	ip netns exec check ping -c 1 -W 5 127.0.0.1 >/dev/null &&
	dmesg | grep -c "nsfilter: NETNS=.* SRC=127.0.0.1 DST=127.0.0.1 .* PROTO=ICMP " ;
	rmmod nsfilter && uname -r && cat /proc/sys/kernel/tainted')
echo "$out"
[ "$(printf '%s\n' "$out" | tail -n 3 | paste -sd' ')" = "2 $release 12288" ] ||
	die "expected 2 lines for one ping, release $release and taint 12288 (O and E)"
