// SPDX-License-Identifier: GPL-2.0

//! What each namespace counts, shown in `/proc/net/nsfilter`; safe Rust.
//!
//! Each CPU counts in a slot of its own ([`CpuCounters`], one per CPU in the
//! namespace's state), so the packet path never writes a cache line that
//! another CPU writes too; a reader of `/proc/net/nsfilter` sums the slots.
//! The per-CPU storage is whatever implements [`PerCpu`]: the kernel's
//! per-CPU areas in the module (`sys::PerCpu`), a plain array on the host.

use crate::budget::{Reason, Suppressed};
use crate::packet::{proto, Family, Summary};
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU64, Ordering};

/// Storage with one `T` for each CPU.
pub(crate) trait PerCpu<T> {
    /// The slot of the CPU the caller runs on.
    fn local(&self) -> &T;

    /// Calls `f` with every CPU's slot.
    fn each(&self, f: &mut dyn FnMut(&T));
}

/// One CPU's counters in one namespace.
#[derive(Default)]
pub(crate) struct CpuCounters {
    ipv4: AtomicU64,
    ipv6: AtomicU64,
    tcp: AtomicU64,
    udp: AtomicU64,
    udplite: AtomicU64,
    sctp: AtomicU64,
    icmp: AtomicU64,
    icmpv6: AtomicU64,
    other: AtomicU64,
    malformed: AtomicU64,
    filtered: AtomicU64,
    logged: AtomicU64,
    suppressed: AtomicU64,
    suppressed_budget: AtomicU64,
}

/// Adds one to a counter of this CPU's slot.
///
/// An atomic read-modify-write, not a load and a store: the slot is this
/// CPU's, so the cache line is already this CPU's and no other CPU waits
/// for it, but the hook is not always the only writer of its CPU's slot
/// while it runs. `nf_reinject()` (net/netfilter/nf_queue.c) runs the hooks
/// after a queueing one in process context without disabling bottom halves,
/// so a softirq on the same CPU may run the hook between another call's load
/// and store; with a preemptible RCU the caller may even move to another CPU
/// in between. A load and a store would then lose a count; this cannot.
fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl CpuCounters {
    /// Counts a packet of `family` that parsed to `summary`.
    pub(crate) fn seen(&self, family: Family, summary: &Summary) {
        bump(match family {
            Family::Ipv4 => &self.ipv4,
            Family::Ipv6 => &self.ipv6,
        });
        bump(match (summary.protocol(), family) {
            (Some(proto::TCP), _) => &self.tcp,
            (Some(proto::UDP), _) => &self.udp,
            (Some(proto::UDPLITE), _) => &self.udplite,
            (Some(proto::SCTP), _) => &self.sctp,
            (Some(proto::ICMP), Family::Ipv4) => &self.icmp,
            (Some(proto::ICMPV6), Family::Ipv6) => &self.icmpv6,
            _ => &self.other,
        });
        if summary.is_malformed() {
            bump(&self.malformed);
        }
    }

    /// Counts a packet the settings did not let be logged.
    pub(crate) fn filtered(&self) {
        bump(&self.filtered);
    }

    /// Counts a logged line.
    pub(crate) fn logged(&self) {
        bump(&self.logged);
    }

    /// Counts a line that was refused, under its reason.
    pub(crate) fn suppressed(&self, reason: Reason) {
        bump(match reason {
            Reason::Limit => &self.suppressed,
            Reason::Budget => &self.suppressed_budget,
        });
    }

    /// The counters, in the order of [`NAMES`].
    fn all(&self) -> [&AtomicU64; COUNTERS] {
        [
            &self.ipv4,
            &self.ipv6,
            &self.tcp,
            &self.udp,
            &self.udplite,
            &self.sctp,
            &self.icmp,
            &self.icmpv6,
            &self.other,
            &self.malformed,
            &self.filtered,
            &self.logged,
            &self.suppressed,
            &self.suppressed_budget,
        ]
    }
}

/// How many counters a namespace has.
const COUNTERS: usize = 14;

/// The counters' names in `/proc/net/nsfilter`, in its order.
const NAMES: [&str; COUNTERS] = [
    "packets_ipv4",
    "packets_ipv6",
    "tcp",
    "udp",
    "udplite",
    "sctp",
    "icmp",
    "icmpv6",
    "other",
    "malformed",
    "filtered",
    "logged",
    "suppressed",
    "suppressed_budget",
];

/// One namespace's counters: a [`CpuCounters`] for each CPU.
pub(crate) struct Counters<P> {
    cpus: P,
}

impl<P: PerCpu<CpuCounters>> Counters<P> {
    /// Counters kept in `cpus`, whose slots start at zero.
    pub(crate) const fn new(cpus: P) -> Self {
        Self { cpus }
    }

    /// The slot the caller counts in: its CPU's.
    pub(crate) fn local(&self) -> &CpuCounters {
        self.cpus.local()
    }

    /// Lines refused so far in this namespace, on every CPU, by reason.
    ///
    /// Each CPU's counts only grow, so neither sum falls below an earlier
    /// sum that the same counts went into; a count being added meanwhile on
    /// another CPU may or may not be in it.
    pub(crate) fn suppressed_total(&self) -> Suppressed {
        let mut total = Suppressed::default();
        self.cpus.each(&mut |c| {
            total.limit = total
                .limit
                .wrapping_add(c.suppressed.load(Ordering::Relaxed));
            total.budget = total
                .budget
                .wrapping_add(c.suppressed_budget.load(Ordering::Relaxed));
        });
        total
    }

    /// Writes the counters of namespace `netns`, one `name value` per line,
    /// each the sum over the CPUs.
    pub(crate) fn show(&self, netns: u32, out: &mut dyn Write) -> fmt::Result {
        let mut sums = [0u64; COUNTERS];
        // Relaxed loads are the kernel's `READ_ONCE()`: each slot is read
        // whole (an aligned 64-bit load is one access on 64-bit CPUs, and
        // `AtomicU64` is never torn on any) while its CPU may be adding to it.
        self.cpus.each(&mut |c| {
            for (sum, counter) in sums.iter_mut().zip(c.all()) {
                *sum = sum.wrapping_add(counter.load(Ordering::Relaxed));
            }
        });
        writeln!(out, "netns {netns}")?;
        for (name, sum) in NAMES.iter().zip(sums) {
            writeln!(out, "{name} {sum}")?;
        }
        Ok(())
    }
}
