#!/usr/bin/env bash
# make install-check: `make install` and `make uninstall` into temporary
# roots (DESTDIR), never into /:
#   1. an empty root, default PREFIX: the three files land where they should,
#      depmod is skipped (that kernel is not installed there);
#   2. a root where KDIR's kernel is installed (it has a modules.dep), with
#      PREFIX=/opt/nsfilter: depmod lists nsfilter, modprobe resolves it;
# and in both, uninstall leaves exactly the files that were there before.
#
# Usage: scripts/install-check.sh [MAKE-VARIABLES...]   (e.g. KDIR=...)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/common.sh
. "$here/common.sh"
cd "$(dirname "$here")"

scratch=$(mktemp -d /tmp/nsfilter-install.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
files() { (cd "$1" && find . -type f -exec md5sum {} + | sort -k2); }
mk() { make --no-print-directory "$@" >"$scratch/make.log" 2>&1 || { cat "$scratch/make.log" >&2 && die "make $*"; }; }

# The module and the command, built once, as the caller's make would.
mk "$@" module command
kver=$(make --no-print-directory -s "$@" -f Makefile -f - print-kver <<<'print-kver: ; @echo $(KVER)')
[ -n "$kver" ] || die "no kernel release for this KDIR"

# 1. An empty root.
root=$scratch/empty
mkdir -p "$root"
mk "$@" install DESTDIR="$root"
for f in "lib/modules/$kver/extra/nsfilter.ko" usr/local/sbin/nsfilter usr/local/share/man/man8/nsfilter.8; do
	[ -f "$root/$f" ] || die "make install put no /$f"
done
[ -x "$root/usr/local/sbin/nsfilter" ] || die "/usr/local/sbin/nsfilter is not executable"
grep -q 'depmod skipped' "$scratch/make.log" || die "depmod ran for a kernel that is not installed"
[ ! -e "$root/lib/modules/$kver/modules.dep" ] || die "make install made a modules.dep"
mk "$@" uninstall DESTDIR="$root"
[ -z "$(find "$root" -type f)" ] || die "make uninstall left: $(find "$root" -type f)"
say "install-check: empty root, PREFIX=/usr/local: 3 files in, depmod skipped, 3 files out"

# 2. A root where that kernel is installed.
root=$scratch/installed
mkdir -p "$root/lib/modules/$kver"
: >"$root/lib/modules/$kver/modules.dep"
depmod -b "$root" "$kver" 2>/dev/null
before=$(files "$root")
mk "$@" install DESTDIR="$root" PREFIX=/opt/nsfilter
[ -x "$root/opt/nsfilter/sbin/nsfilter" ] || die "PREFIX=/opt/nsfilter: no /opt/nsfilter/sbin/nsfilter"
[ -f "$root/opt/nsfilter/share/man/man8/nsfilter.8" ] || die "PREFIX=/opt/nsfilter: no man page"
grep -qx 'extra/nsfilter.ko:' "$root/lib/modules/$kver/modules.dep" || die "depmod did not list extra/nsfilter.ko"
modprobe -d "$root" -S "$kver" --show-depends nsfilter | grep -q "/lib/modules/$kver/extra/nsfilter.ko" ||
	die "modprobe does not resolve nsfilter in the staged root"
mk "$@" uninstall DESTDIR="$root" PREFIX=/opt/nsfilter
after=$(files "$root")
[ "$before" = "$after" ] || die "make uninstall did not restore the files: $(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | paste -sd' ')"
say "install-check: installed kernel $kver, PREFIX=/opt/nsfilter: depmod lists and then forgets nsfilter; the files are as before"
