# Shared settings for the set-up scripts; sourced, not run.
# Every value can be overridden from the environment.

: "${NSFILTER_CACHE:=${XDG_CACHE_HOME:-$HOME/.cache}/nsfilter}"
# shellcheck source=scripts/versions.sh
. "$(dirname "${BASH_SOURCE[0]}")/versions.sh"
: "${BINDGEN:=$NSFILTER_CACHE/tools/bindgen-$BINDGEN_VERSION/bin/bindgen}"
# The LLVM the kernel is built with, as the kernel's LLVM= variable takes it.
: "${LLVM:=-19}"
LLVM_SUFFIX=${LLVM#1}
: "${LIBCLANG_PATH:=/usr/lib/llvm-19/lib}"
DEFAULT_KSRC=/usr/src/linux-source-6.12.tar.xz
export NSFILTER_CACHE BINDGEN LLVM LIBCLANG_PATH

# pin_rust: the pinned Rust (rust-toolchain.toml, RUST_VERSION) for this shell
# and everything it runs, also outside the clone, where rustup sees no
# rust-toolchain.toml (the lab kernel's make runs rustc in the cache). Through
# rustup's RUSTUP_TOOLCHAIN: the user's default toolchain is left alone.
pin_rust() {
	if command -v rustup >/dev/null; then export RUSTUP_TOOLCHAIN=$RUST_VERSION; fi
}

say() { printf 'nsfilter: %s\n' "$*" >&2; }
die() {
	printf 'nsfilter: error: %s\n' "$*" >&2
	exit 1
}

# progress PID DIR WHAT: while process PID runs, says how many objects (*.o)
# DIR holds and for how long WHAT has run: on a terminal one line that
# updates every 5 s, in a log a line every 30 s.
progress() {
	local pid=$1 dir=$2 what=$3 since=$SECONDS waited=0 n
	while kill -0 "$pid" 2>/dev/null; do
		sleep 5
		waited=$((waited + 5))
		if [ -t 2 ] || ((waited % 30 == 0)); then
			n=$(find "$dir" -name '*.o' 2>/dev/null | wc -l)
			if [ -t 2 ]; then
				printf '\rnsfilter: %s: %d objects built, %d s ' "$what" "$n" $((SECONDS - since)) >&2
			else
				say "$what: $n objects built, $((SECONDS - since)) s"
			fi
		fi
	done
	if [ -t 2 ]; then printf '\n' >&2; fi
}

# cargo-mutants for `make mutants`, built into the cache like bindgen.
: "${CARGO_MUTANTS:=$NSFILTER_CACHE/tools/cargo-mutants-$CARGO_MUTANTS_VERSION/bin/cargo-mutants}"
