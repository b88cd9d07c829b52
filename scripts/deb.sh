#!/usr/bin/env bash
# make deb: nsfilter's Debian packages, nsfilter-dkms_VERSION_all.deb and
# nsfilter_VERSION_amd64.deb, built from debian/ by dpkg-buildpackage
# (debhelper, dh-dkms) in a Debian 13 root, then checked by lintian.
#
# The root is the project's trixie root (the compilers that built Debian's
# 7.3 kernel, so Debian's rustc 1.85 builds the command) with the packaging
# tools added, made once in the cache. The tree is built as it is now
# (tracked and new files, not build products), in a copy under OUT.
#
# Usage: scripts/deb.sh [OUT]   (default deb/: the .debs, .changes,
#                                .buildinfo, build.log, lintian.txt)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(dirname "$here")
# shellcheck source=scripts/common.sh
. "$here/common.sh"
# shellcheck source=scripts/debian13.sh
. "$here/debian13.sh"

out=$(realpath -m "${1:-$top/deb}")
cd "$top"

version=$(dpkg-parsechangelog -l debian/changelog -S Version)
cargo_version=$(sed -n 's/^version = "\(.*\)"$/\1/p' userspace/nsfilter/Cargo.toml | head -n1)
[ "${version%%-*}" = "$cargo_version" ] ||
	die "debian/changelog says $version, userspace/nsfilter/Cargo.toml $cargo_version: make them agree"
module_version=$(sed -n 's/^MODULE_VERSION("\(.*\)");$/\1/p' rust/helpers.c)
[ "${version%%-*}" = "$module_version" ] ||
	die "debian/changelog says $version, rust/helpers.c's MODULE_VERSION '$module_version': make them agree"

# Debian's packaging tools, and cargo at the version of the root's rustc.
root=$(trixie_root "build-essential,cargo=$TRIXIE_RUSTC_VERSION,debhelper,dh-dkms,lintian")

start=$(date +%s)
rm -rf "$out"
src=$out/build/nsfilter-$version
mkdir -p "$src"
git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do [ ! -e "$f" ] || printf '%s\0' "$f"; done |
	xargs -0 cp -a --parents -t "$src"
# The build is offline, but cargo resolves the whole workspace, and the lab in
# it uses crates (libc) that the command does not: they are vendored into the
# copy, for resolution only (the command alone is built, std only).
cargo vendor --quiet --locked --manifest-path "$src/userspace/Cargo.toml" "$src/debian/vendor" >/dev/null
printf '%s\n' '[source.crates-io]' 'replace-with = "vendored"' '[source.vendored]' \
	"directory = \"$src/debian/vendor\"" >"$src/debian/cargo-vendor.toml"

say "building nsfilter $version's packages in the Debian 13 root $root"
if ! in_root "$root" "$out" -- bash -c 'cd "$1" && dpkg-buildpackage -b -us -uc' build "$src" \
	>"$out/build.log" 2>&1; then
	tail -n 30 "$out/build.log" >&2
	die "dpkg-buildpackage failed; full log: $out/build.log"
fi
mv "$out"/build/*.deb "$out"/build/*.changes "$out"/build/*.buildinfo "$out/"
rm -rf "$out/build"

changes=$(compgen -G "$out/nsfilter_${version}_*.changes" | head -n1)
# Every tag lintian knows (pedantic ones too) is shown; an error or a
# warning that debian/*.lintian-overrides does not justify fails the build.
set +e
in_root "$root" "$out" -- runuser -u nobody -- lintian --pedantic --display-info --fail-on error,warning "$changes" \
	>"$out/lintian.txt" 2>&1
lintian_status=$?
set -e
cat "$out/lintian.txt" >&2
((lintian_status == 0)) || die "lintian refused the packages (exit $lintian_status): $out/lintian.txt"
say "built in $(($(date +%s) - start)) s; lintian: $(grep -c . "$out/lintian.txt" || true) tag lines (overridden ones not shown)"
for deb in "$out"/*.deb; do
	echo "$deb"
done
