# nsfilter: a netfilter module in Rust that logs every packet entering any
# network namespace, and the lab that builds a kernel for it and runs it in QEMU.
#
#   make run     set up if needed, boot the lab VM and show the per-namespace log
#   make test    set up if needed, run the host tests and the VM suite
#   make check   formatting and lints (rustfmt, clippy, CLIPPY=1 module build)
#   make stress  the reliability tests at full size on the debug kernel
#   make bench   per-packet cost against no module and a C twin; results/
#   make         build nsfilter.ko against KDIR (default: the cached lab kernel)
#   make rust-analyzer   write rust-project.json for IDE support of rust/
#   make clean   remove every build product of this folder
#
# Variables: KDIR (kernel build tree), KERNEL (lab kernel variant, default lab),
# KSRC (kernel source tarball or folder), LLVM (default -19), NSFILTER_CACHE.

SHELL := /bin/bash
.DEFAULT_GOAL := module

KERNEL ?= lab
LLVM ?= -19
# The defaults live in scripts/common.sh; the environment overrides them.
# Evaluated once (:=), not at every use of the variable.
ifndef BINDGEN
BINDGEN := $(shell . scripts/common.sh && echo "$$BINDGEN")
endif
ifndef KDIR
KDIR := $(shell scripts/kernel.sh kdir $(KERNEL))
endif
export LLVM

CARGO ?= cargo
LAB_MANIFEST := userspace/Cargo.toml
LAB := userspace/target/release/nsfilter-lab
KMAKE = $(MAKE) -C "$(KDIR)" M="$(CURDIR)" LLVM=$(LLVM) BINDGEN="$(BINDGEN)"
# What the lab VM boots and loads.
LAB_ARGS = --kernel "$(KDIR)/arch/x86/boot/bzImage" --module "$(CURDIR)/nsfilter.ko"

.PHONY: module setup kernel lab run test stress stress-run bench check clean rust-analyzer

setup:
	@scripts/setup.sh

# The cached lab kernel: built once per source, fragment and toolchain.
kernel: setup
	@scripts/kernel.sh build $(KERNEL) >/dev/null

# One clear line when KDIR cannot build a Rust module, rather than pages of
# Kbuild errors.
module:
	@test -f "$(KDIR)/Makefile" || { echo "nsfilter: error: KDIR=$(KDIR) is not a kernel build tree (run 'make kernel', or set KDIR)" >&2; exit 1; }
	@grep -qx 'CONFIG_RUST=y' "$(KDIR)/.config" 2>/dev/null || { echo "nsfilter: error: the kernel in KDIR=$(KDIR) is built without CONFIG_RUST" >&2; exit 1; }
	@test -f "$(KDIR)/Module.symvers" || { echo "nsfilter: error: KDIR=$(KDIR) has no Module.symvers (build its 'modules' target)" >&2; exit 1; }
	@$(KMAKE) modules

lab:
	@$(CARGO) build --quiet --release --manifest-path $(LAB_MANIFEST)

run: kernel
	@$(MAKE) --no-print-directory module lab
	@$(LAB) run $(LAB_ARGS)

test: kernel
	$(CARGO) test --quiet --manifest-path $(LAB_MANIFEST)
	@$(MAKE) --no-print-directory module lab
	$(LAB) test $(LAB_ARGS)
	scripts/lab-selftest.sh $(LAB) $(LAB_ARGS)
	scripts/readme-labs.sh $(LAB) $(LAB_ARGS)

# The reliability tests at full size on the debug kernel (KASAN, lockdep,
# kmemleak, panic_on_warn): built once into the cache like the lab kernel.
stress:
	@$(MAKE) --no-print-directory KERNEL=debug stress-run

stress-run: kernel
	@$(MAKE) --no-print-directory module lab
	$(LAB) test --stress $(LAB_ARGS)

# What nsfilter costs per packet (against no module and the C twin in
# bench/), at scale, and the workflow's wall times; JSON in results/.
BENCH_OUT ?= results/bench.json
bench: kernel
	@$(MAKE) --no-print-directory module lab
	@$(KMAKE) M="$(CURDIR)/bench" KCFLAGS=-Werror modules >/dev/null
	@scripts/bench.sh $(LAB) "$(KDIR)/arch/x86/boot/bzImage" "$(CURDIR)/nsfilter.ko" "$(CURDIR)/bench/nsfilter_c.ko" $(BENCH_OUT)

check: kernel
	$(CARGO) fmt --manifest-path $(LAB_MANIFEST) -- --check
	$(CARGO) clippy --quiet --manifest-path $(LAB_MANIFEST) --all-targets -- -D warnings
	rustfmt --check --edition 2021 --config-path "$(KDIR)/source/.rustfmt.toml" rust/nsfilter.rs
	@$(MAKE) --no-print-directory clean-module
	$(KMAKE) CLIPPY=1 KRUSTFLAGS=-Dwarnings KCFLAGS=-Werror modules

# rust-project.json for editing rust/ with rust-analyzer (IDE support).
rust-analyzer: kernel
	@$(MAKE) --no-print-directory module
	@scripts/rust-analyzer.sh "$(KDIR)"

clean-module:
	@if [ -f "$(KDIR)/Makefile" ]; then $(KMAKE) clean >/dev/null; $(KMAKE) M="$(CURDIR)/bench" clean >/dev/null; fi
	@rm -f rust/bindings_generated.rs rust/.bindings_generated.rs.*

clean: clean-module
	@rm -rf userspace/target rust-project.json
