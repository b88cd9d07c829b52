# nsfilter: a netfilter module in Rust that logs every packet entering any
# network namespace, and the lab that builds a kernel for it and runs it in QEMU.
#
#   make run     set up if needed, boot the lab VM and show the per-namespace log
#   make test    set up if needed, run the host tests and the VM suite
#   make shell   an interactive shell in the lab VM, nsfilter loaded
#   make check   formatting and lints (rustfmt, clippy, CLIPPY=1 module build)
#   make stress  the reliability tests at full size on the debug and race kernels
#   make test-debug  the tests the debug kernel's checks are for, at quick sizes (CI)
#   make test-arm64  the tests where the architecture shows, on Debian's arm64 kernel (CI)
#   make repeat  the VM suite N times in a row (N=20; FILTER=NAME for some tests)
#   make mutants host mutants of rust/'s logic, and module mutants in the VM
#   make bench   per-packet cost beside a floor, a C twin and nft; host scaling; results/
#   make         build nsfilter.ko against KDIR (default: the cached lab kernel)
#   make rust-analyzer   write rust-project.json for IDE support of rust/
#   make clean   remove every build product of this folder
#   make host-kdir   prepare the running distribution kernel's tree for Rust modules
#   make rehearse    the README's commands on a fresh Debian 12 root (scripts/rehearse.sh)
#   make deb         Debian packages nsfilter-dkms and nsfilter in deb/ (scripts/deb.sh)
#   make deb-check   install them with apt in a throwaway Debian 13 root, purge them
#   make install     nsfilter.ko for KDIR, the command and its man page (DESTDIR, PREFIX)
#   make uninstall   remove what make install put
#   make install-check   both into temporary roots (DESTDIR), never into /
#   make system-test the packages on a booted Debian 13 disk image: DKMS, boot, upgrade, purge
#
# Variables: KERNEL (lab, the default: Linux 6.12 LTS; lab-7.3: the same from
# Linux 7.3; debian: Debian 13's own 7.3 kernel, unmodified; debian-rt: its
# PREEMPT_RT flavour; lab-arm64, debian-arm64: lab and debian for arm64;
# debug, race: see
# scripts/kernel.sh), KDIR (any other Rust-enabled kernel build tree), KSRC
# (kernel source tarball or folder), LLVM (default -19), NSFILTER_CACHE,
# EXPECT_SKIP (with KDIR: the tests its kernel cannot run, comma-separated;
# default the fault injection test, which needs the debug configuration).

SHELL := /bin/bash
.DEFAULT_GOAL := module

KERNEL ?= lab
LLVM ?= -19
# The defaults live in scripts/common.sh; the environment overrides them.
# Evaluated once (:=), not at every use of the variable.
ifndef BINDGEN
BINDGEN := $(shell . scripts/common.sh && echo "$$BINDGEN")
endif
# KDIR is computed at its first use, not when this file is read: on a fresh
# machine the kernel source is there only once `setup` has run, and KDIR
# names a folder keyed by that source.
ifndef KDIR
KDIR = $(eval KDIR := $(shell scripts/kernel.sh kdir $(KERNEL)))$(KDIR)
# What the lab VM boots for KERNEL: the image, and for a distribution kernel
# its modules and the taints it is expected to show.
LAB_KERNEL = $(eval LAB_KERNEL := $(shell scripts/kernel.sh lab-args $(KERNEL)))$(LAB_KERNEL)
else
EXPECT_SKIP ?= fault_injection_netns_and_insmod
comma := ,
LAB_KERNEL = --kernel "$(KDIR)/arch/x86/boot/bzImage" --expect-skip "$(if $(EXPECT_SKIP),$(EXPECT_SKIP),$(comma))"
endif
export LLVM

CARGO ?= cargo
LAB_MANIFEST := userspace/Cargo.toml
LAB := userspace/target/release/nsfilter-lab
# The kernel's make with the compilers that built KDIR (in Debian 13's root
# for KERNEL=debian): scripts/kmake.sh.
KMAKE = BINDGEN="$(BINDGEN)" scripts/kmake.sh "$(KDIR)" M="$(CURDIR)"
# What the lab VM boots and loads.
LAB_ARGS = $(LAB_KERNEL) --module "$(CURDIR)/nsfilter.ko"

.PHONY: module setup kernel lab run shell test test-debug test-arm64 test-arm64-run stress stress-run repeat mutants bench check clean rust-analyzer \
	host-kdir host-kdir-check rehearse deb deb-check system-test command install uninstall install-check

setup:
	@scripts/setup.sh --kernel $(KERNEL)

# The cached kernel: built (or, for KERNEL=debian, fetched and prepared) once
# per source, fragment and toolchain.
kernel: setup
	@scripts/kernel.sh build $(KERNEL) >/dev/null

# One clear line when KDIR cannot build a Rust module, rather than pages of
# Kbuild errors.
module:
	@test -f "$(KDIR)/Makefile" || { echo "nsfilter: error: KDIR=$(KDIR) is not a kernel build tree (run 'make kernel KERNEL=$(KERNEL)', or set KDIR)" >&2; exit 1; }
	@grep -qx 'CONFIG_RUST=y' "$(KDIR)/.config" 2>/dev/null || { echo "nsfilter: error: the kernel in KDIR=$(KDIR) is built without CONFIG_RUST" >&2; exit 1; }
	@test -f "$(KDIR)/Module.symvers" || { echo "nsfilter: error: KDIR=$(KDIR) has no Module.symvers (build its 'modules' target)" >&2; exit 1; }
	@$(KMAKE) modules

# For an arm64 kernel (KERNEL=NAME-arm64) also the guest's agent, static,
# for aarch64-unknown-linux-musl, linked by the toolchain's rust-lld.
lab:
	@$(CARGO) build --quiet --release --manifest-path $(LAB_MANIFEST)
	$(if $(filter %-arm64,$(KERNEL)),@CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld \
		$(CARGO) build --quiet --release --manifest-path $(LAB_MANIFEST) --target aarch64-unknown-linux-musl)

run: kernel
	@$(MAKE) --no-print-directory module lab
	@$(LAB) run $(LAB_ARGS)

shell: kernel
	@$(MAKE) --no-print-directory module lab
	@$(LAB) shell $(LAB_ARGS)

test: kernel
	$(CARGO) test --quiet --manifest-path $(LAB_MANIFEST)
	@$(MAKE) --no-print-directory module lab
	$(LAB) test $(LAB_ARGS)
	scripts/lab-selftest.sh $(LAB) $(LAB_ARGS)
	scripts/readme-labs.sh $(LAB) $(LAB_ARGS)

# On the debug kernel (KASAN, lockdep, kmemleak, fault injection), at quick
# sizes, the tests that exercise what it checks: the failure paths of
# registration under fault injection, namespace births and deaths and module
# loads under floods, parameter writes under floods; then lockdep still on
# and a last kmemleak scan. CI runs it; make test KERNEL=debug runs the whole
# suite there (with longer bounds: --time-factor in scripts/kernel.sh).
DEBUG_TESTS := fault_injection_netns_and_insmod,namespace_churn,load_unload_under_flood,namespace_deaths_under_flood,param_writes_under_flood
test-debug:
	@$(MAKE) --no-print-directory KERNEL=debug kernel
	@$(MAKE) --no-print-directory KERNEL=debug module lab
	$(LAB) test --kernel-variant debug --module "$(CURDIR)/nsfilter.ko" --filter $(DEBUG_TESTS)

# On Debian's own arm64 kernel (its Rust metadata prepared by Debian's cross
# compiler), under TCG, the tests where the architecture shows: the module's
# layout and load, the hook's place, the parser on arm64 under injected and
# fuzzed frames against the kernel's own LOG, and the concurrent writers and
# readers on a weakly ordered CPU. CI runs it; make test KERNEL=debian-arm64
# runs the whole suite (about 7.5 minutes in the VM, 10 in all).
ARM64_TESTS := load_unload,hook_runs_first,ipv6_tcp_udp,fuzz_injected_packets,param_writes_under_flood,device_rename_under_traffic,logformat_kernel_is_the_oracle
test-arm64:
	@$(MAKE) --no-print-directory KERNEL=debian-arm64 test-arm64-run
test-arm64-run: kernel
	@$(MAKE) --no-print-directory module lab
	$(LAB) test --filter $(ARM64_TESTS) $(LAB_ARGS)

# The reliability tests at full size on the debug kernel (KASAN, lockdep,
# kmemleak, fault injection, PREEMPT, panic_on_warn) and on the race kernel
# (KCSAN, lockdep, PREEMPT): each built once into the cache like the lab
# kernel. KERNEL= runs them on that one kernel instead.
ifeq ($(origin KERNEL),file)
stress:
	@$(MAKE) --no-print-directory KERNEL=debug stress-run
	@$(MAKE) --no-print-directory KERNEL=race stress-run
else
stress:
	@$(MAKE) --no-print-directory stress-run
endif

# On the race kernel, the concurrency tests (the rest is the debug kernel's).
STRESS_TESTS_race := namespace_churn,load_unload_under_flood,namespace_deaths_under_flood,param_writes_under_flood,device_rename_under_traffic
# On PREEMPT_RT (Debian's rt-amd64), the same concurrency tests and the
# host-wide budget's crowds: the packet path runs in preemptible threads.
STRESS_TESTS_debian-rt := $(STRESS_TESTS_race),host_budget_under_a_crowd
stress-run: kernel
	@$(MAKE) --no-print-directory module lab
	$(LAB) test --stress $(if $(STRESS_TESTS_$(KERNEL)),--filter $(STRESS_TESTS_$(KERNEL))) $(LAB_ARGS)

# The VM suite N times in a row (default 20), each in a fresh VM; FILTER=
# runs only the tests whose name contains it. For flakiness, on any KERNEL.
N ?= 20
FILTER ?=
repeat: kernel
	@$(MAKE) --no-print-directory module lab
	@scripts/repeat.sh $(N) "$(FILTER)" $(LAB) $(LAB_ARGS)

# Mutation testing: cargo-mutants over the safe logic in rust/ against the
# host tests (every survivor killed or listed in scripts/mutants-equivalent.txt),
# then hand-written module mutants against the VM suite (every one killed).
mutants: kernel
	@$(MAKE) --no-print-directory module lab
	scripts/mutants.sh
	scripts/vm-mutants.sh $(LAB) "$(KDIR)"

# What nsfilter costs per packet (against no module, the floor and the C twin
# in bench/, and nft), at scale, the host scaling benchmark, and the
# workflow's wall times; JSON in results/ (an arm64 kernel's in its own
# file: its figures are not compared with x86's).
BENCH_OUT ?= results/bench$(if $(filter %-arm64,$(KERNEL)),-arm64).json
bench: kernel
	@$(MAKE) --no-print-directory module lab
	@$(KMAKE) M="$(CURDIR)/bench" KCFLAGS=-Werror modules >/dev/null
	@scripts/bench.sh $(LAB) "$(CURDIR)/bench/nsfilter_c.ko" $(BENCH_OUT) $(LAB_ARGS)

check: kernel
	$(CARGO) fmt --manifest-path $(LAB_MANIFEST) --all -- --check
	$(CARGO) clippy --quiet --manifest-path $(LAB_MANIFEST) --all-targets -- -D warnings
	rustfmt --check --edition 2021 --config-path "$(KDIR)/source/.rustfmt.toml" rust/nsfilter.rs
	@scripts/vm-mutants.sh --check
	@$(MAKE) --no-print-directory clean-module
	$(KMAKE) CLIPPY=1 KRUSTFLAGS=-Dwarnings KCFLAGS=-Werror modules

# rust-project.json for editing rust/ with rust-analyzer (IDE support).
rust-analyzer: kernel
	@$(MAKE) --no-print-directory module
	@scripts/rust-analyzer.sh "$(KDIR)"

# Prepares the running kernel's build tree (/lib/modules/$(uname -r)/build) of
# a Rust-enabled distribution kernel for Rust modules: see docs/install.md.
# HOST_RELEASE=: another installed kernel's instead.
host-kdir:
	@scripts/host-kdir.sh $(HOST_RELEASE)

# Those steps, checked through KERNEL=debian: a throwaway Debian 13 machine
# runs them, and Debian's own kernel loads the Rust module they built.
host-kdir-check:
	@$(MAKE) --no-print-directory KERNEL=debian kernel lab
	@scripts/host-kdir-check.sh $(LAB)

# The README's two commands, as written, in a throwaway Debian 12 root with
# an empty cache: what a new user's first hour does. DEBIAN=13: a Debian 13
# root. NO_REUSE=1: build the kernels inside the root too. AS_USER=1: as a
# normal user, who has root run the one apt-get command set-up prints.
DEBIAN ?= 12
rehearse:
	@scripts/setup.sh --rehearse
	@scripts/rehearse.sh --debian $(DEBIAN) $(if $(NO_REUSE),--no-reuse) $(if $(AS_USER),--user)

# Debian 13's packages, built with debhelper and dh-dkms in a Debian 13 root
# (Debian's rustc), lintian clean: deb/nsfilter-dkms_VERSION_all.deb (DKMS
# prepares each kernel's Rust metadata from its linux-source package) and
# deb/nsfilter_VERSION_amd64.deb (the command, its man page, modprobe.d and
# modules-load.d files). See docs/debian-packages.md.
deb:
	@scripts/setup.sh --packaging
	@scripts/deb.sh

# They installed with apt beside three kernels' headers in a throwaway
# Debian 13 root: built for one, skipped with a reason for two, purged clean.
deb-check: deb
	@scripts/deb-check.sh

# The packages on a real system: a Debian 13 disk image made from Debian's
# packages (systemd, the 7.2.12 kernel, then the 7.3.4 amd64 and cloud-amd64
# kernels as an upgrade), booted in QEMU once per kernel with Debian's own
# kernel and initramfs. See scripts/system-test.sh.
system-test: deb
	@scripts/system-test.sh

# Without Debian's packages (another distribution, a kernel you built): the
# module built for KDIR (whose tree has the Rust metadata) into
# /lib/modules/KVER/extra, KVER being KDIR's release, then depmod; the command
# into $(PREFIX)/sbin and nsfilter(8) into $(PREFIX)/share/man/man8. DESTDIR
# stages it all under another root. depmod runs only where that kernel is
# installed (its modules.dep exists), as DKMS does. uninstall removes those
# three files and runs depmod again; the folders stay (/usr/local/sbin is
# base-files' on Debian).
PREFIX ?= /usr/local
DESTDIR ?=
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
KVER = $(eval KVER := $(shell cat "$(KDIR)/include/config/kernel.release" 2>/dev/null))$(KVER)
MODULE_DEST = $(DESTDIR)/lib/modules/$(KVER)/extra
DEPMOD = if [ -f "$(DESTDIR)/lib/modules/$(KVER)/modules.dep" ]; then \
		depmod $(if $(DESTDIR),-b "$(DESTDIR)") "$(KVER)"; \
	else \
		echo "nsfilter: $(DESTDIR)/lib/modules/$(KVER) has no modules.dep (the kernel is not installed there): depmod skipped" >&2; \
	fi

command:
	@$(CARGO) build --quiet --release --manifest-path $(LAB_MANIFEST) --package nsfilter

install: module command
	@test -n "$(KVER)" || { echo "nsfilter: error: no $(KDIR)/include/config/kernel.release: KDIR is not a prepared kernel tree" >&2; exit 1; }
	install -D -m 644 nsfilter.ko "$(MODULE_DEST)/nsfilter.ko"
	install -D -m 755 userspace/target/release/nsfilter "$(DESTDIR)$(SBINDIR)/nsfilter"
	install -D -m 644 dist/nsfilter.8 "$(DESTDIR)$(MANDIR)/man8/nsfilter.8"
	@$(DEPMOD)

uninstall:
	@test -n "$(KVER)" || { echo "nsfilter: error: no $(KDIR)/include/config/kernel.release: set KDIR as for make install" >&2; exit 1; }
	rm -f "$(MODULE_DEST)/nsfilter.ko" "$(DESTDIR)$(SBINDIR)/nsfilter" "$(DESTDIR)$(MANDIR)/man8/nsfilter.8"
	@$(DEPMOD)

install-check:
	@scripts/install-check.sh $(if $(filter command line,$(origin KDIR)),KDIR="$(KDIR)") $(if $(filter command line,$(origin KERNEL)),KERNEL="$(KERNEL)")

# Kbuild's own clean needs the kernel tree; without one (an operator's
# machine with no lab kernel, where KDIR resolves to nothing) the products
# are deleted by name, in the folders Kbuild builds in.
KBUILD_PRODUCTS := -name '*.o' -o -name '*.ko' -o -name '*.ko.*' -o -name '*.mod' \
	-o -name '*.mod.c' -o -name '.*.cmd' -o -name '*.d' -o -name '.*.tmp' \
	-o -name modules.order -o -name Module.symvers
ifeq ($(origin KDIR),file)
# Cleaning without a lab kernel is not an error: no message about it.
clean-module: KDIR = $(shell scripts/kernel.sh kdir $(KERNEL) 2>/dev/null)
endif
clean-module:
	@if [ -f "$(KDIR)/Makefile" ]; then $(KMAKE) clean >/dev/null; $(KMAKE) M="$(CURDIR)/bench" clean >/dev/null; fi
	@find . rust bench -maxdepth 1 -type f \( $(KBUILD_PRODUCTS) \) -delete
	@rm -f rust/bindings_generated.rs rust/.bindings_generated.rs.*

clean: clean-module
	@rm -rf userspace/target rust-project.json deb
