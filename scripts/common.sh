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

say() { printf 'nsfilter: %s\n' "$*" >&2; }
die() {
	printf 'nsfilter: error: %s\n' "$*" >&2
	exit 1
}

# cargo-mutants for `make mutants`, built into the cache like bindgen.
: "${CARGO_MUTANTS:=$NSFILTER_CACHE/tools/cargo-mutants-$CARGO_MUTANTS_VERSION/bin/cargo-mutants}"
