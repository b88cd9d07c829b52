#!/usr/bin/env bash
# make mutants, VM half: hand-written mutants of the module, each applied to a
# scratch copy of Kbuild and rust/, built against the lab kernel and run
# against the VM suite, which must fail for every one.
#
# Usage: scripts/vm-mutants.sh LAB KDIR [NAME...]
#        scripts/vm-mutants.sh --check
#   LAB   the nsfilter-lab program; KDIR the kernel build tree;
#   NAME  only these mutants (default: all).
#   --check  only check that every mutant's text (pending ones too) is in
#         the source once, building and running nothing (make check runs it).
# With KILLER_ONLY=1 each mutant runs against its killer alone (seconds, not
# the whole suite's minutes; other tests' failures are then not seen).
#
# A mutant whose text no longer matches the source is an error, not a pass:
# update the table below with the source. A mutant counts as killed only when
# the test named as its killer fails; any other test that failed is reported.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(dirname "$here")
# shellcheck source=scripts/common.sh
. "$here/common.sh"

check_only=0
if [ "${1:-}" = --check ]; then
	check_only=1
else
	[ $# -ge 2 ] || die "usage: scripts/vm-mutants.sh LAB KDIR [NAME...] | --check"
	lab=$1 kdir=$2
	shift 2
	image=$kdir/arch/x86/boot/bzImage
	[ -f "$image" ] || die "no kernel image at $image"
fi

# name|file|text to find|what replaces it (\n for a new line)|what should kill it
# [|the kernel it needs, when not KDIR's: built against that cached kernel
# (scripts/kernel.sh NAME) and run on it with its own options]
#
# drop_state_before_unhook waits for a grace period between the drop and the
# unhook (as a misplaced synchronize_net() would). Without it the window is
# the few instructions between the two calls: in three runs of the suite
# (60 namespaces deleted under floods, 2.2 million datagrams in the last, and
# 60 rmmods under a flood) no hook call landed in it. Any hook call that does
# land there writes freed memory, which KASAN reports on the debug kernel.
#
# stale_bucket is the old rate-limit defect put back: a bucket time left days
# ahead by a tiny rate and a huge burst is never pulled back under new
# settings, so raising log_rate leaves the namespace silent.
#
# no_budget puts every namespace outside the host-wide budget, as the
# initial one is: the defect of issue 23 (a crowd floods the kernel log).
#
# no_reserve shares the budget first come, first served: a namespace within
# its fair share no longer has the lower half of the bucket to itself, and
# the crowd's fastest take every token (seen: a flooding namespace whose 200
# packets were all refused by the budget, 0 lines).
# Four mutants of issue 25's weak checks, each of which the old check let
# through: slow_refill refills the bucket at 90% of log_rate (only an upper
# bound was checked); level_ignored prints every line at KERN_WARNING
# whatever log_level says (levels were not read); burst_capped holds a
# namespace's burst to 2,500 (2,000 of 3,000 lines were accepted);
# stale_lists has the packet path read the lists' previous version (only
# the final ports value was checked after the write storm).
#
# reader_spins_on_writer is defect 2 of the first review put back, its window
# widened: a writer of a list marks itself busy, spins a while (the mutant's
# widening), and the packet path waits for it to finish. A packet whose
# softirq runs on the writer's CPU then spins forever on a writer that
# cannot run again on that CPU: the write never returns. The test steers
# each flood to a CPU of its own (RPS), so that packets interrupt whatever
# runs there, writes included. The guest then deadlocks (both CPUs spin in
# softirq), so the test never ends: the lab's VM bound stops it, 10 minutes.
#
# no_grace_on_failure is defect 1 of the first review put back: when the
# namespace's registration fails after the IPv4 half was visible, its state
# is dropped (and the kernel frees the slot) without waiting for the hook
# calls that may still run. The window is widened in the mutant: while the
# module is loading, each hook call spins a while (2,000,000 iterations,
# milliseconds under TCG) between finding the state and reading it, so a
# call that entered the hook reads the state after its free. The fault
# injection test makes insmod fail at every allocation nsfilter's code makes
# (the debug kernel's stack-trace filter) under a flood, the IPv6 half of
# the flooded namespace's registration among them, with each injected
# failure dumping its stack (inside the window, longer than a packet's trip
# through the hook), and KASAN sees the read of freed memory. Before both
# (a spin on every hook call, no dump) it was killed in 1 run of 4.
#
# torn_name_copy copies the input device's name in two passes, as strlen()
# then memcpy() would: its length first, then (after a spin, the mutant's
# widening) that many bytes, whatever they have become. A rename to a
# shorter name in between puts its NUL inside the copy (logged as \x00),
# which device_rename_under_traffic finds in IN=: killed in 81 s with
# KILLER_ONLY=1, once the test renamed the device while up (down, it tested
# nothing: taking a device down waits for the hook calls in flight).
#
# cut_at_printk is review finding 4 of issue 23 put back: long lines cut
# where printk cuts its record (1,023 characters) rather than where LOG cuts
# its own (1,016). The LOG-format oracle's ipv6-long-chain frames (40 to 69
# fragment headers) make lines longer than both.
#
# layout_mismatch makes the kernel's offset of net->proc_net disagree with
# the bindings' (as bindgen's did on Debian's 7.2.12 kernel, where the module
# then crashed the kernel at the first new namespace): module init must
# refuse to load.
mutants=(
	"layout_mismatch|rust/helpers.c|[NSFILTER_LAYOUT_NET_PROC_NET] = offsetof(struct net, proc_net),|[NSFILTER_LAYOUT_NET_PROC_NET] = offsetof(struct net, proc_net) + 8,|load_unload"
	"no_budget|rust/decision.rs|            scope: if initial {|            scope: if initial == initial {|host_budget_under_a_crowd"
	"no_reserve|rust/budget.rs|                limits.budget_burst / 2\n|                0\n|host_budget_under_a_crowd"
	"priority_last|rust/sys/pernet.rs|priority: bindings::NF_IP_PRI_FIRST,|priority: bindings::NF_IP_PRI_LAST,|hook_runs_first"
	"init_only_at_load|rust/sys/pernet.rs|let mut ret = unsafe { bindings::nf_register_net_hook(net, (*slot).ops.get()) };|let at_load = AT_LOAD.load(Ordering::Relaxed) && !unsafe { bindings::nsfilter_net_is_init(net) };\n        let mut ret = if at_load { 0 } else { unsafe { bindings::nf_register_net_hook(net, (*slot).ops.get()) } };|namespaces_before_insmod"
	"init_only_at_load|rust/sys/pernet.rs|let ret = to_result(unsafe { bindings::register_pernet_subsys(pernet_ops()) });|AT_LOAD.store(true, Ordering::Relaxed);\n        let ret = to_result(unsafe { bindings::register_pernet_subsys(pernet_ops()) });\n        AT_LOAD.store(false, Ordering::Relaxed);|"
	"init_only_at_load|rust/sys/pernet.rs|static REGISTERED: AtomicBool = AtomicBool::new(false);|static REGISTERED: AtomicBool = AtomicBool::new(false);\nstatic AT_LOAD: AtomicBool = AtomicBool::new(false);|"
	"skip_ipv6|rust/sys/pernet.rs|pf: bindings::NFPROTO_INET as u8,|pf: bindings::NFPROTO_IPV4 as u8,|ipv6_tcp_udp"
	"tcp_as_other|rust/counters.rs|(Some(proto::TCP), _) => &self.tcp,|(Some(proto::TCP), _) => &self.other,|counters_per_protocol"
	"log_twice|rust/hook.rs|            Some(text) => sys::print_str(level, text),|            Some(text) => {\n                sys::print_str(level, text);\n                sys::print_str(level, text);\n            }|nat_masquerade_lab"
	"slow_refill|rust/ratelimit.rs|        let interval = NSEC_PER_SEC / u64::from(rate.max(1));|        let interval = NSEC_PER_SEC / u64::from(rate.max(1)) * 10 / 9;|rate_limit_is_per_namespace"
	"level_ignored|rust/hook.rs|        let level = Level::from_number(level);\n        // Formatted once|        let _ = level;\n        let level = Level::Warning;\n        // Formatted once|params_at_runtime"
	"burst_capped|rust/budget.rs|        if !self.own.take(now, limits.rate, limits.burst, 1, 0) {|        if !self.own.take(now, limits.rate, limits.burst.min(2500), 1, 0) {|rate_change_takes_effect_at_once"
	"stale_lists|rust/settings.rs|        &self.lists[self.current.load(Ordering::Acquire) & 1]|        &self.lists[self.current.load(Ordering::Acquire) & 1 ^ 1]|param_writes_under_flood"
	"stale_bucket|rust/ratelimit.rs|                if tat > furthest {|                if false && tat > furthest {|rate_change_takes_effect_at_once"
	"ignore_log_rate|rust/settings.rs|Param::LogRate => self.rate.store(parse_rate(value)?, Ordering::Relaxed),|Param::LogRate => drop(parse_rate(value)?),|rate_change_takes_effect_at_once"
	"drop_state_before_unhook|rust/sys/pernet.rs|unsafe { bindings::nf_unregister_net_hook(net, (*Self::slot(net)).ops.get()) };|unsafe { ptr::drop_in_place(addr_of_mut!((*Self::slot(net)).state)) };\n        unsafe { bindings::synchronize_net() };\n        unsafe { bindings::nf_unregister_net_hook(net, (*Self::slot(net)).ops.get()) };|namespace_deaths_under_flood"
	"drop_state_before_unhook|rust/sys/pernet.rs|period has passed, so no hook call still reads the state.\n        unsafe { ptr::drop_in_place(addr_of_mut!((*Self::slot(net)).state)) };|period has passed, so no hook call still reads the state.|"
	"reader_spins_on_writer|rust/settings.rs|pub(crate) static SETTINGS: Settings = Settings::new();|pub(crate) static SETTINGS: Settings = Settings::new();\nstatic WRITING: AtomicBool = AtomicBool::new(false);|param_writes_under_flood"
	"reader_spins_on_writer|rust/settings.rs|        change(next);\n        self.current.store(now ^ 1, Ordering::Release);|        WRITING.store(true, Ordering::Relaxed);\n        for _ in 0..1_000_000 {\n            core::hint::spin_loop();\n        }\n        change(next);\n        self.current.store(now ^ 1, Ordering::Release);\n        WRITING.store(false, Ordering::Release);|"
	"reader_spins_on_writer|rust/settings.rs|        &self.lists[self.current.load(Ordering::Acquire) & 1]|        while WRITING.load(Ordering::Acquire) {\n            core::hint::spin_loop();\n        }\n        &self.lists[self.current.load(Ordering::Acquire) & 1]|"
	"no_grace_on_failure|rust/sys/pernet.rs|            // SAFETY: Process context: pernet \`init\` may sleep.\n            unsafe { bindings::synchronize_net() };|            // The mutant: no grace period.|fault_injection_netns_and_insmod|debug"
	"no_grace_on_failure|rust/sys/pernet.rs|        let net_state = unsafe { &*priv_.cast::<T::NetState>() };|        let net_state = unsafe { &*priv_.cast::<T::NetState>() };\n        if LOADING.load(Ordering::Relaxed) {\n            for _ in 0..2_000_000 {\n                core::hint::spin_loop();\n            }\n        }|"
	"no_grace_on_failure|rust/sys/pernet.rs|let ret = to_result(unsafe { bindings::register_pernet_subsys(pernet_ops()) });|LOADING.store(true, Ordering::Relaxed);\n        let ret = to_result(unsafe { bindings::register_pernet_subsys(pernet_ops()) });\n        LOADING.store(false, Ordering::Relaxed);|"
	"no_grace_on_failure|rust/sys/pernet.rs|static REGISTERED: AtomicBool = AtomicBool::new(false);|static REGISTERED: AtomicBool = AtomicBool::new(false);\nstatic LOADING: AtomicBool = AtomicBool::new(false);|"
	"torn_name_copy|rust/sys/net.rs|        for (i, out) in name.bytes.iter_mut().enumerate() {\n            // SAFETY: \`i < IFNAMSIZ\`, within the array.|        let mut len = 0;\n        while len < IFNAMSIZ && unsafe { ptr::read_volatile(src.add(len)) } != 0 {\n            len += 1;\n        }\n        for _ in 0..200_000 {\n            core::hint::spin_loop();\n        }\n        for (i, out) in name.bytes.iter_mut().enumerate().take(len) {\n            // SAFETY: \`i < IFNAMSIZ\`, within the array.|device_rename_under_traffic"
	"torn_name_copy|rust/sys/net.rs|            if b == 0 {\n                break;\n            }\n            *out = b;|            *out = b;|"
	"cut_at_printk|rust/logline.rs|pub(crate) const LOG_TEXT_MAX: usize = 1016;|pub(crate) const LOG_TEXT_MAX: usize = 1023;|logformat_kernel_is_the_oracle"
)

# Not yet killed, so left out of the run (an entry to add to `mutants`
# above, to run it; --check checks its text too).
pending=()

# apply FILE OLD NEW: OLD, which must be in FILE once, becomes NEW (each
# with \n for a new line); with CHECK set, only checks that it is there.
apply() {
	python3 - "$@" <<-'EOF'
		import os, sys
		path, old, new = sys.argv[1], sys.argv[2].replace("\\n", "\n"), sys.argv[3].replace("\\n", "\n")
		s = open(path).read()
		if s.count(old) != 1:
		    sys.exit(1)
		if not os.environ.get("CHECK"):
		    open(path, "w").write(s.replace(old, new))
	EOF
}

if ((check_only)); then
	for m in "${mutants[@]}" "${pending[@]}"; do
		IFS='|' read -r n file old new _ <<<"$m"
		CHECK=1 apply "$top/$file" "$old" "$new" ||
			die "mutant $n: its text is no longer in $file once: update scripts/vm-mutants.sh"
	done
	say "VM mutants: the text of each of ${#mutants[@]} entries and ${#pending[@]} pending ones is in the source"
	exit 0
fi

names=()
for m in "${mutants[@]}"; do
	n=${m%%|*}
	[[ " ${names[*]} " == *" $n "* ]] || names+=("$n")
done
wanted=("$@")
((${#wanted[@]})) || wanted=("${names[@]}")

scratch=$(mktemp -d /tmp/nsfilter-vm-mutants.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
# Each mutant's suite output is kept here.
logs=$NSFILTER_CACHE/vm-mutants
mkdir -p "$logs"
killed=0 survived=()
for name in "${wanted[@]}"; do
	[[ " ${names[*]} " == *" $name "* ]] || die "no mutant named '$name' (known: ${names[*]})"
	dir=$scratch/$name
	mkdir -p "$dir"
	(cd "$top" && git ls-files -z Kbuild rust | xargs -0 cp --parents -t "$dir")
	for m in "${mutants[@]}"; do
		IFS='|' read -r n file old new _ <<<"$m"
		[ "$n" = "$name" ] || continue
		apply "$dir/$file" "$old" "$new" || die "mutant $name: its text is no longer in $file"
	done
	killer=$(printf '%s\n' "${mutants[@]}" | awk -F'|' -v n="$name" '$1 == n && $5 != "" { print $5; exit }')
	# The kernel: KDIR's, or the one the mutant needs, with its options.
	needs=$(printf '%s\n' "${mutants[@]}" | awk -F'|' -v n="$name" '$1 == n && $6 != "" { print $6; exit }')
	mkdir_=$kdir
	boot=(--kernel "$image" --expect-skip fault_injection_netns_and_insmod)
	if [ -n "$needs" ]; then
		mkdir_=$("$here/kernel.sh" kdir "$needs")
		[ -f "$mkdir_/complete" ] || [ -f "$(dirname "$mkdir_")/complete" ] ||
			die "mutant $name needs the $needs kernel: run 'make kernel KERNEL=$needs'"
		read -ra boot <<<"$("$here/kernel.sh" lab-args "$needs")"
	fi
	if ! make -s -C "$mkdir_" M="$dir" LLVM="$LLVM" BINDGEN="$BINDGEN" modules >"$dir/build.log" 2>&1; then
		tail -n 20 "$dir/build.log" >&2
		die "mutant $name does not build"
	fi
	say "mutant $name: running the VM suite (expected to fail, in $killer at least)"
	start=$(date +%s)
	status=0
	# On KDIR's lab kernel, which has no fault injection, that test alone
	# may skip; another kernel brings its own list.
	only=()
	[ "${KILLER_ONLY:-0}" = 0 ] || only=(--filter "$killer")
	"$lab" test "${boot[@]}" --module "$dir/nsfilter.ko" "${only[@]}" \
		>"$dir/suite.log" 2>&1 || status=$?
	cp "$dir/suite.log" "$logs/$name.log"
	# Killed only when the test meant to kill it failed: a timeout, a
	# crash of the run or an unrelated test's failure does not count.
	failed=" $(sed -n 's/^not ok [0-9]* //p' "$dir/suite.log" | tr '\n' ' ')"
	# A test that hung the guest (a deadlock) is the one the VM was running
	# when its bound stopped it: it failed too.
	hung=$(sed -n 's/^[0-9]* *\([a-z0-9_]*\) *MISSING (started, never ended)$/\1/p' "$dir/suite.log")
	[ -z "$hung" ] || failed="$failed$hung "
	others=${failed// $killer / }
	others=$(echo $others)
	if ((status != 0)) && [[ "$failed" == *" $killer "* ]]; then
		killed=$((killed + 1))
		say "mutant $name killed in $(($(date +%s) - start)) s by $killer${hung:+ (hung: $hung)}${others:+ (also failed: $others)}"
	else
		survived+=("$name")
		say "mutant $name SURVIVED: $killer did not fail (exit $status${others:+; failed instead: $others}; $(($(date +%s) - start)) s; $logs/$name.log)"
	fi
done
say "VM mutants: $killed killed, ${#survived[@]} survived${survived[*]:+: ${survived[*]}}"
((${#survived[@]} == 0))
