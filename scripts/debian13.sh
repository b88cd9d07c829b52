# shellcheck shell=bash
# Debian 13 (trixie) packages and build root, without touching the host's apt
# set-up; sourced by kernel.sh, kmake.sh and host-kdir.sh, after common.sh.
#
# - deb13_fetch PKG VERSION [ARCH]  the .deb in the cache (a private apt
#                             config; ARCH's packages, e.g. arm64, have lists
#                             of their own).
# - deb13_source_tarball      linux-source-7.3's tarball, unpacked once.
# - trixie_root [EXTRA]       a Debian 13 build root with the compilers that
#                             built Debian's 7.3 kernel (and EXTRA packages);
#                             prints its path.
# - deb13_root WHAT PKGS...   a Debian 13 root with those packages.
# - find_nsfilter_debs OUT    the two packages make deb put in OUT.
# - in_root ROOT DIR... -- CMD   CMD in ROOT with each DIR bind-mounted at its
#                             own path; the mounts live in a private mount
#                             namespace, so they vanish with CMD whatever
#                             happens to it.

DEB13_APT=$NSFILTER_CACHE/apt/trixie
DEB13_DEBS=$NSFILTER_CACHE/debs
DEB13_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

# The private apt configuration of the architecture DEB13_ARCH (the host's
# when empty; deb13_fetch sets it for what it calls): its folder.
deb13_apt_dir() {
	echo "$DEB13_APT${DEB13_ARCH:+-$DEB13_ARCH}"
}

deb13_apt() {
	local cmd=$1 dir arch=()
	shift
	dir=$(deb13_apt_dir)
	[ -z "${DEB13_ARCH:-}" ] || arch=(-o APT::Architecture="$DEB13_ARCH" -o APT::Architectures::="$DEB13_ARCH")
	"$cmd" -q -o Dir::Etc::SourceList="$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null \
		-o Dir::State::Lists="$dir/lists" -o Dir::Cache="$dir/cache" \
		-o Dir::State::Status=/dev/null -o Debug::NoLocking=1 -o APT::Sandbox::User=root "${arch[@]}" "$@"
}

# Refreshes the private package lists (also when they are older than a day).
deb13_update() {
	local dir opts
	dir=$(deb13_apt_dir)
	opts="signed-by=$DEB13_KEYRING${DEB13_ARCH:+ arch=$DEB13_ARCH}"
	mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
	[ -r "$DEB13_KEYRING" ] || die "$DEB13_KEYRING not found (package debian-archive-keyring)"
	cat >"$dir/sources.list" <<-EOF
		deb [$opts] $DEBIAN13_MIRROR trixie main
		deb [$opts] $DEBIAN13_MIRROR trixie-updates main
		deb [$opts] $DEBIAN13_MIRROR trixie-backports main
	EOF
	deb13_apt apt-get update >"$dir/update.log" 2>&1 ||
		{ cat "$dir/update.log" >&2 && die "apt-get update for Debian 13${DEB13_ARCH:+ ($DEB13_ARCH)} failed"; }
	touch "$dir/updated"
}

# The versions of PKG that Debian serves, newest first, one line.
deb13_served() {
	deb13_apt apt-cache madison "$1" 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2); print $2}' |
		sort -u -r -V | paste -sd' '
}

# Downloads PKG at VERSION (for ARCH, the host's when not given) into the
# cache unless it is there; prints its path.
deb13_fetch() {
	local pkg=$1 version=$2 DEB13_ARCH=${3:-} found dir
	dir=$(deb13_apt_dir)
	found=$(compgen -G "$DEB13_DEBS/${pkg}_${version/:/%3a}_${DEB13_ARCH:-*}.deb" | head -n1 || true)
	if [ -n "$found" ]; then
		echo "$found"
		return
	fi
	if [ ! -f "$dir/updated" ] || [ -n "$(find "$dir/updated" -mmin +1440)" ]; then
		deb13_update
	fi
	local served
	served=$(deb13_served "$pkg")
	if ! grep -qxF -- "$version" <(tr ' ' '\n' <<<"$served"); then
		deb13_update
		served=$(deb13_served "$pkg")
		grep -qxF -- "$version" <(tr ' ' '\n' <<<"$served") ||
			die "Debian no longer serves $pkg${DEB13_ARCH:+:$DEB13_ARCH} $version (it serves: ${served:-nothing}); update the pin in scripts/versions.sh"
	fi
	mkdir -p "$DEB13_DEBS"
	local tmp
	tmp=$(mktemp -d "$DEB13_DEBS/.fetch.XXXXXX")
	(cd "$tmp" && deb13_apt apt-get download "$pkg=$version" >/dev/null) ||
		{ rm -rf "$tmp" && die "could not download $pkg${DEB13_ARCH:+:$DEB13_ARCH} $version from Debian 13"; }
	found=$(compgen -G "$tmp/*.deb" | head -n1)
	mv "$found" "$DEB13_DEBS/"
	rm -rf "$tmp"
	echo "$DEB13_DEBS/$(basename "$found")"
}

# linux-source-7.3's tarball, taken out of its package once.
deb13_source_tarball() {
	local dir=$NSFILTER_CACHE/src/linux-source-7.3_$LINUX_73_VERSION
	local tarball=$dir/linux-source-7.3.tar.xz
	if [ ! -f "$tarball" ]; then
		local deb
		deb=$(deb13_fetch linux-source-7.3 "$LINUX_73_VERSION")
		say "unpacking $(basename "$deb")"
		rm -rf "$dir.tmp"
		mkdir -p "$dir.tmp"
		dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dir.tmp" ./usr/src/linux-source-7.3.tar.xz
		mkdir -p "$dir"
		mv "$dir.tmp/usr/src/linux-source-7.3.tar.xz" "$tarball"
		rm -rf "$dir.tmp"
	fi
	echo "$tarball"
}

# The packages of the trixie build root, each at its pinned version.
trixie_packages() {
	local v=$TRIXIE_RUSTC_VERSION
	echo "rustc=$v,rust-src=$v"
	echo "gcc-14=$TRIXIE_GCC_VERSION"
	echo "bindgen=$TRIXIE_BINDGEN_VERSION,libclang-dev=$TRIXIE_LIBCLANG_VERSION"
	# pahole and openssl: Kconfig probes them (CONFIG_PAHOLE_VERSION, BTF,
	# CONFIG_OPENSSL_SUPPORTS_ML_DSA); without them olddefconfig drops options.
	echo "pahole=$TRIXIE_PAHOLE_VERSION,openssl"
	echo "make,bc,flex,bison,libelf-dev,libssl-dev,kmod,cpio,xz-utils,python3,libc6-dev"
}

# The packages `make deb` put in OUT: sets dkms_deb and cmd_deb, or dies.
# Usage: find_nsfilter_debs OUT
find_nsfilter_debs() {
	dkms_deb=$(compgen -G "$1/nsfilter-dkms_*_all.deb" | head -n1 || true)
	cmd_deb=$(compgen -G "$1/nsfilter_*_amd64.deb" | head -n1 || true)
	[ -n "$dkms_deb" ] && [ -n "$cmd_deb" ] || die "no packages in $1: run 'make deb' first"
}

# A Debian 13 build root in the cache, made once per package list; prints it.
# EXTRA (comma-separated packages) makes a root of its own with them too.
# Usage: trixie_root [EXTRA]
trixie_root() {
	# shellcheck disable=SC2046
	deb13_root "with rustc $TRIXIE_RUSTC_VERSION, gcc-14${1:+, $1}" $(trixie_packages) ${1:+"$1"}
}

# A Debian 13 root (mmdebstrap's minbase, from trixie main) in the cache with
# the given packages (each argument a comma-separated list, PKG=VERSION for a
# pin), made once per list; prints its path. WHAT says what it is for.
# Usage: deb13_root WHAT PACKAGES...
deb13_root() {
	local what=$1 key root
	shift
	key=$({
		printf '%s\n' "$@"
		echo "$DEBIAN13_MIRROR"
	} | sha256sum | cut -c1-16)
	root=$NSFILTER_CACHE/roots/trixie-$key
	mkdir -p "$NSFILTER_CACHE/roots"
	(
		flock 8
		[ -f "$root/.complete" ] && exit 0
		command -v mmdebstrap >/dev/null || die "mmdebstrap not found: run scripts/setup.sh"
		# shellcheck disable=SC2046
		deb13_check_pins $(printf '%s\n' "$@" | tr ',' '\n' | grep -F =)
		say "making a Debian 13 root ($what) in $root (about a minute, once)"
		rm -rf "$root"
		mmdebstrap --quiet --variant=minbase --include="$(printf '%s\n' "$@" | paste -sd,)" \
			trixie "$root" "deb [signed-by=$DEB13_KEYRING] $DEBIAN13_MIRROR trixie main" \
			>"$NSFILTER_CACHE/roots/trixie-$key.log" 2>&1 ||
			{ tail -n 20 "$NSFILTER_CACHE/roots/trixie-$key.log" >&2 && die "mmdebstrap failed"; }
		date -u +%FT%TZ >"$root/.complete"
	) 8>"$root.lock" || exit 1
	echo "$root"
}

# Checks that Debian still serves each PKG=VERSION (without downloading);
# dies with one line naming what it serves instead.
deb13_check_pins() {
	[ -f "$(deb13_apt_dir)/updated" ] || deb13_update
	local pin missing=() table
	table=$(deb13_apt apt-cache madison "${@%%=*}" 2>/dev/null | awk -F'|' '{gsub(/ /, ""); print $1 "=" $2}')
	for pin in "$@"; do
		grep -qxF -- "$pin" <<<"$table" || missing+=("$pin")
	done
	((${#missing[@]})) || return 0
	deb13_update
	for pin in "${missing[@]}"; do
		local served
		served=$(deb13_served "${pin%%=*}")
		grep -qxF -- "${pin#*=}" <(tr ' ' '\n' <<<"$served") ||
			die "Debian no longer serves ${pin%%=*}${DEB13_ARCH:+:$DEB13_ARCH} ${pin#*=} (it serves: ${served:-nothing}); update the pin in scripts/versions.sh"
	done
}

# Runs a command in ROOT with the given folders bind-mounted at their own
# paths, in the current folder (or / if it is not one of them), as root.
# Usage: in_root ROOT DIR... -- CMD...
in_root() {
	local root=$1
	shift
	local binds=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		binds+=("$(realpath "$1")")
		shift
	done
	[ "${1:-}" = -- ] || die "in_root: no command"
	shift
	[ "$(id -u)" -eq 0 ] || die "building in the Debian 13 root needs root (chroot)"
	unshare --mount --propagation private -- bash -c '
		set -e
		root=$1 cwd=$2 nbinds=$3
		shift 3
		mount -t proc proc "$root/proc"
		mount --rbind /sys "$root/sys"
		mount --rbind /dev "$root/dev"
		mount -t tmpfs tmpfs "$root/tmp"
		for ((i = 0; i < nbinds; i++)); do
			mkdir -p "$root$1"
			mount --bind "$1" "$root$1"
			shift
		done
		exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
			LANG=C.UTF-8 /bin/bash -c "cd \"\$0\" 2>/dev/null || cd /; exec \"\$@\"" "$cwd" "$@"
	' in_root "$root" "$PWD" "${#binds[@]}" "${binds[@]}" "$@"
}
