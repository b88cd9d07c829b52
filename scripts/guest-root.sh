#!/usr/bin/env bash
# The lab guest's programs for an architecture other than the host's: busybox
# (Debian's static build), iproute2's `ip` and nftables' `nft` with the
# libraries they need, from Debian 13's packages for that architecture. The
# packages are unpacked (mmdebstrap's `extract` variant), never configured,
# so no package script runs and no emulator is needed; nsfilter-lab takes the
# programs and, through readelf, their libraries from the root
# (`--guest-root`). On the host's own architecture the lab copies the host's
# programs instead, and this is not needed.
#
# Usage: scripts/guest-root.sh dir|build ARCH    (ARCH: arm64)
#   dir    print the root's folder, build nothing
#   build  unpack it unless the cache has it (a few seconds), print its folder
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/common.sh
. "$here/common.sh"
# shellcheck source=scripts/debian13.sh
. "$here/debian13.sh"

# Bump when the steps below change what the root holds.
RECIPE=1
PACKAGES=busybox-static,iproute2,nftables

action=${1:-}
arch=${2:-}
case "$action" in
dir | build) ;;
*) die "usage: scripts/guest-root.sh dir|build ARCH" ;;
esac
case "$arch" in
arm64) ;;
*) die "no guest root for architecture '$arch' (arm64 only: x86-64 guests use the host's programs)" ;;
esac

key=$(printf '%s\n' "$arch" "$PACKAGES" "$DEBIAN13_MIRROR" "recipe $RECIPE" | sha256sum | cut -c1-16)
root=$NSFILTER_CACHE/guest/$arch-$key
if [ "$action" = dir ]; then
	echo "$root"
	exit 0
fi

mkdir -p "$NSFILTER_CACHE/guest"
exec 9>"$root.lock"
flock 9
if [ ! -f "$root/.complete" ]; then
	command -v mmdebstrap >/dev/null || die "mmdebstrap not found: run 'make setup KERNEL=lab-$arch'"
	command -v readelf >/dev/null || die "readelf not found: run 'make setup KERNEL=lab-$arch'"
	say "unpacking Debian 13's $arch busybox, iproute2 and nftables into $root (once)"
	rm -rf "$root"
	mmdebstrap --quiet --variant=extract --architectures="$arch" --include="$PACKAGES" \
		trixie "$root" "deb [signed-by=$DEB13_KEYRING] $DEBIAN13_MIRROR trixie main" \
		>"$root.log" 2>&1 ||
		{ tail -n 20 "$root.log" >&2 && die "mmdebstrap failed (log: $root.log)"; }
	for program in usr/bin/busybox usr/sbin/ip usr/sbin/nft; do
		[ -f "$root/$program" ] || die "the $arch packages hold no /$program"
	done
	date -u +%FT%TZ >"$root/.complete"
fi
echo "$root"
