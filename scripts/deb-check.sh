#!/usr/bin/env bash
# make deb-check: the packages of `make deb`, installed with apt in a
# throwaway Debian 13 root beside three kernels' headers, as an operator
# would install them:
#
#   - 7.3.4+deb13-amd64 (trixie-backports, Rust), its modules and image,
#     with linux-source-7.3: DKMS must build and install nsfilter for it;
#   - 7.2.12+deb13-amd64 (trixie-backports, Rust) without linux-source-7.2:
#     DKMS must skip it with one line saying what is missing;
#   - trixie's own 6.12.117+deb13-amd64, built without Rust: skipped too;
#
# and the package must configure all the same. Then a rebuild from the
# cached Rust metadata, and `apt purge`, after which no nsfilter file may
# remain under /lib/modules, /var/lib/dkms, /usr, /etc or /var/cache.
#
# The root is a copy of a bare Debian 13 (mmdebstrap minbase, cached once):
# every package the build needs must come from nsfilter-dkms's Depends
# (apt runs with --no-install-recommends). The backports kernels' packages
# come from the project's cache of .debs; the rest from Debian's mirror,
# kept between runs in the cache. About 6 minutes on 2 cores (the Rust
# metadata of one kernel), plus the downloads the first time.
#
# Usage: scripts/deb-check.sh [DIR]   (DIR: where make deb put the .debs,
#                                      default deb/; the transcript goes
#                                      to DIR/deb-check.log)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(dirname "$here")
# shellcheck source=scripts/common.sh
. "$here/common.sh"
# shellcheck source=scripts/debian13.sh
. "$here/debian13.sh"

out=$(realpath -m "${1:-$top/deb}")
find_nsfilter_debs "$out"
version=$(dpkg-deb -f "$dkms_deb" Version)

k73=$LINUX_73_RELEASE
k72=$LINUX_72_ABI-amd64
k612=$LINUX_612_TRIXIE_ABI-amd64
local_debs=()
# 7.3.4's modules too (DKMS runs depmod only for a kernel whose modules are
# installed, and compresses nsfilter.ko as they are: xz).
for p in "linux-headers-$k73" "linux-headers-$LINUX_73_ABI-common" "linux-kbuild-$LINUX_73_ABI" \
	"linux-base-$k73" "linux-modules-$k73" "linux-binary-$k73" linux-source-7.3; do
	local_debs+=("$(deb13_fetch "$p" "$LINUX_73_VERSION")")
done
for p in "linux-headers-$k72" "linux-headers-$LINUX_72_ABI-common" "linux-kbuild-$LINUX_72_ABI" \
	"linux-base-$k72"; do
	local_debs+=("$(deb13_fetch "$p" "$LINUX_72_VERSION")")
done

base=$(deb13_root "bare, for make deb-check" apt)
work=$NSFILTER_CACHE/deb-check/root
archives=$NSFILTER_CACHE/deb-check/archives
mkdir -p "$archives"
exec 9>"$NSFILTER_CACHE/deb-check/lock"
flock 9
say "copying the bare Debian 13 root into $work"
rm -rf "$work"
cp -a --reflink=auto "$base" "$work"
# Debian's packages that earlier runs downloaded.
find "$archives" -maxdepth 1 -name '*.deb' -exec cp -t "$work/var/cache/apt/archives/" {} +

cat >"$work/check.sh" <<'EOF'
#!/bin/bash
# Runs inside the throwaway root; see scripts/deb-check.sh.
set -euo pipefail
dkms_deb=$1 cmd_deb=$2 version=$3 k73=$4 k72=$5 k612=$6 k612_version=$7
shift 7
export DEBIAN_FRONTEND=noninteractive
step() { printf '\n### %s\n' "$*"; }
fail() {
	echo "deb-check: FAILED: $*"
	exit 1
}
apt_get() { apt-get -q -y -o Dpkg::Use-Pty=0 --no-install-recommends "$@"; }

apt-get -q update >/dev/null
step "kernels: $k73 (modules, headers) with linux-source-7.3; $k72 without linux-source-7.2; $k612 (no CONFIG_RUST)"
apt_get install "$@" "linux-headers-$k612=$k612_version" >/tmp/kernels.log 2>&1 ||
	{ tail -n 30 /tmp/kernels.log && fail "installing the kernel headers"; }
# As the kernel images would (Debian's packages put the same file there).
for k in "$k73" "$k72" "$k612"; do
	cp "/usr/src/linux-headers-$k/.config" "/boot/config-$k"
done
ls -d /lib/modules/*/build

step "apt install ./$(basename "$dkms_deb") ./$(basename "$cmd_deb")"
start=$(date +%s)
set +e
apt_get install "$dkms_deb" "$cmd_deb" >/tmp/install.log 2>&1
status=$?
set -e
took=$(($(date +%s) - start))
sed -n '/^Setting up nsfilter/,$p' /tmp/install.log
[ "$status" -eq 0 ] || fail "apt install exited $status"
echo "apt install: ${took} s (downloads and installs the build dependencies, then DKMS builds)"

step "dpkg's state"
dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${Version}\n' nsfilter-dkms nsfilter
[ -z "$(dpkg --audit)" ] || fail "dpkg --audit: $(dpkg --audit)"
dpkg-query -W -f='${db:Status-Abbrev}' nsfilter-dkms | grep -q '^ii' || fail "nsfilter-dkms is not installed"
dpkg-query -W -f='${db:Status-Abbrev}' nsfilter | grep -q '^ii' || fail "nsfilter is not installed"

step "dkms status"
dkms status
dkms status -k "$k73" nsfilter | grep -q ": installed" || fail "nsfilter is not installed for $k73"
! dkms status -k "$k72" nsfilter | grep -q "$k72" || fail "dkms lists $k72"
! dkms status -k "$k612" nsfilter | grep -q "$k612" || fail "dkms lists $k612"

step "the one-line reasons for the kernels DKMS skipped"
grep '^nsfilter-dkms: ' /tmp/install.log | sort -u
grep -q "^nsfilter-dkms: $k72: no kernel source /usr/src/linux-source-7.2.tar.xz" /tmp/install.log ||
	fail "no line saying that $k72 lacks linux-source-7.2"
grep -q "^nsfilter-dkms: $k612: the kernel is built without CONFIG_RUST" /tmp/install.log ||
	fail "no line saying that $k612 lacks CONFIG_RUST"

step "DKMS's build for $k73 (its make.log)"
log=/var/lib/dkms/nsfilter/$version/$k73/x86_64/log/make.log
grep -E '^(Running the pre_build|Building module|# elapsed time|nsfilter-dkms: )' "$log"

step "the module DKMS installed for $k73"
ko=$(find "/lib/modules/$k73/updates/dkms" -name 'nsfilter.ko*')
[ -n "$ko" ] || fail "no nsfilter.ko in /lib/modules/$k73/updates/dkms"
modinfo "$ko" | grep -E '^(filename|name|vermagic|signer|sig_key|parm):'
modinfo -F vermagic "$ko" | grep -qx "$k73 SMP preempt mod_unload *" || fail "vermagic: $(modinfo -F vermagic "$ko")"
[ "$(modinfo -F parm "$ko" | wc -l)" -eq 10 ] || fail "modinfo lists $(modinfo -F parm "$ko" | wc -l) parameters, not 10"
modinfo -k "$k73" nsfilter >/dev/null || fail "modinfo -k $k73 nsfilter (depmod) does not find it"
echo "signed by: $(modinfo -F signer "$ko" || true)"

step "the cached Rust metadata"
du -sh /var/cache/nsfilter-dkms/*/

step "a rebuild for $k73 from the cached metadata (what a new nsfilter-dkms does)"
dkms remove "nsfilter/$version" -k "$k73" >/dev/null
start=$(date +%s)
dkms install "nsfilter/$version" -k "$k73" >/tmp/rebuild.log 2>&1 || { cat /tmp/rebuild.log && fail "dkms install"; }
echo "dkms build and install: $(($(date +%s) - start)) s"

step "the command"
nsfilter --help | head -n 3
ls /usr/share/man/man8/nsfilter.8.gz
ls -l /etc/modprobe.d/nsfilter.conf /etc/modules-load.d/nsfilter.conf
[ "$(grep -c '^#options nsfilter' /etc/modprobe.d/nsfilter.conf)" -ge 8 ] || fail "modprobe.d/nsfilter.conf"
! grep -q '^nsfilter' /etc/modules-load.d/nsfilter.conf || fail "loading at boot is on by default"

step "apt purge nsfilter-dkms nsfilter"
apt_get purge nsfilter-dkms nsfilter >/tmp/purge.log 2>&1 || { cat /tmp/purge.log && fail "apt purge"; }
grep -E '^(Removing|Purging)' /tmp/purge.log
left=$(find /lib/modules/ /usr /etc /var/lib/dkms /var/cache -name '*nsfilter*' 2>/dev/null || true)
[ -z "$left" ] || fail "left behind: $left"
echo "no file named *nsfilter* under /lib/modules, /usr, /etc, /var/lib/dkms, /var/cache"
! modinfo -k "$k73" nsfilter >/dev/null 2>&1 || fail "modinfo -k $k73 nsfilter still finds a module"
echo "modinfo -k $k73 nsfilter: not found"
! modprobe --dry-run -S "$k73" nsfilter 2>/tmp/modprobe.err || fail "modprobe -S $k73 nsfilter still finds a module"
echo "modprobe --dry-run -S $k73 nsfilter: $(cat /tmp/modprobe.err)"
! dpkg-query -W nsfilter-dkms nsfilter >/dev/null 2>&1 || fail "dpkg still knows the packages"
echo
echo "deb-check: all green"
EOF

start=$(date +%s)
say "installing nsfilter $version's packages in a Debian 13 root (transcript: $out/deb-check.log)"
set +e
in_root "$work" "$DEB13_DEBS" "$out" -- bash /check.sh "$dkms_deb" "$cmd_deb" "$version" \
	"$k73" "$k72" "$k612" "$LINUX_612_TRIXIE_VERSION" "${local_debs[@]}" 2>&1 | tee "$out/deb-check.log"
status=${PIPESTATUS[0]}
set -e
cp -n "$work"/var/cache/apt/archives/*.deb "$archives/" 2>/dev/null || true
if [ "$status" -ne 0 ]; then
	die "deb-check failed after $(($(date +%s) - start)) s; the root is left in $work"
fi
rm -rf "$work"
say "deb-check green in $(($(date +%s) - start)) s"
