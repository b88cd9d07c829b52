// SPDX-License-Identifier: GPL-2.0

//! What nsfilter decides for each packet once it is parsed, and what each
//! namespace counts meanwhile: whether the settings let it be logged, whether
//! the namespace's own rate limit and the host-wide budget admit its line,
//! and whether a summary line of the lines refused so far goes before it.
//!
//! Safe Rust over the namespace's state; the kernel's clock and `printk` are
//! behind [`Output`]. The hook (`hook.rs`) gives it the kernel's; the host
//! tests (`userspace/tests/decision.rs`) a clock of their own and a recorder,
//! so the whole per-packet decision is tested, and mutated by
//! `make mutants`, on the host.

use crate::budget::{Budget, NetLimit, Scope, Suppressed, Verdict};
use crate::counters::{Counters, CpuCounters, PerCpu};
use crate::packet::{Family, Summary};
use crate::rcu::ReadSide;
use crate::settings::Settings;

/// What the decision needs of the kernel: its clock and its log.
pub(crate) trait Output {
    /// Nanoseconds of a clock that never goes back.
    fn now_ns(&self) -> u64;

    /// Prints, at `level`, the line reporting the lines of namespace
    /// `netns` refused since the last such line (never all zero).
    fn summary(&mut self, level: u32, netns: u32, refused: Suppressed);

    /// Prints, at `level`, the packet's own line.
    fn line(&mut self, level: u32);
}

/// What nsfilter keeps for each namespace.
pub(crate) struct NetState<P> {
    counters: Counters<P>,
    limit: NetLimit,
    /// Whether its lines come out of the host-wide budget.
    scope: Scope,
    /// Whether a user namespace other than the initial one owns it (what
    /// `skip_userns` leaves out).
    in_userns: bool,
}

impl<P: PerCpu<CpuCounters>> NetState<P> {
    /// The state of a new namespace, its counters in `cpus`. The initial
    /// namespace keeps out of the budget: no other namespace can use up
    /// what the host's own lines need.
    pub(crate) const fn new(cpus: P, initial: bool, in_userns: bool) -> Self {
        Self {
            counters: Counters::new(cpus),
            limit: NetLimit::new(),
            scope: if initial {
                Scope::Initial
            } else {
                Scope::Shared
            },
            in_userns,
        }
    }

    /// The namespace's counters.
    pub(crate) fn counters(&self) -> &Counters<P> {
        &self.counters
    }

    /// Counts a packet of `family` seen in this namespace (inode `netns`)
    /// that parsed to `summary`, decides whether its line is logged, and
    /// prints through `out` what is. Runs inside RCU (`rcu` proves it), for
    /// every packet, on any CPU at once.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn packet(
        &self,
        settings: &Settings,
        budget: &Budget,
        rcu: &impl ReadSide,
        netns: u32,
        family: Family,
        summary: &Summary,
        out: &mut impl Output,
    ) {
        let counters = self.counters.local();
        counters.seen(family, summary);
        if !settings.enabled()
            || (self.in_userns && settings.skip_userns())
            || !settings.wants(rcu, netns, summary)
        {
            counters.filtered();
            return;
        }
        let verdict = self
            .limit
            .admit(budget, self.scope, out.now_ns(), settings.limits(), || {
                self.counters.suppressed_total()
            });
        match verdict {
            Verdict::Refused(reason) => counters.suppressed(reason),
            Verdict::Log(refused) => {
                let level = settings.log_level();
                if let Some(refused) = refused {
                    out.summary(level, netns, refused);
                    // The next summary counts its second from this print,
                    // however late it came out (see `summary_printed`).
                    self.limit.summary_printed(out.now_ns());
                }
                out.line(level);
                counters.logged();
            }
        }
    }
}
