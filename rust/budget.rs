// SPDX-License-Identifier: GPL-2.0

//! Whether a line may be logged: the namespace's own limit, the host-wide
//! budget that every namespace but the initial one shares, and the summary
//! lines that report what was refused; safe Rust, tested on the host.
//!
//! # Why a host-wide budget
//!
//! Each namespace's own bucket bounds what one namespace logs, but any user
//! may create namespaces (through user namespaces, which Debian allows by
//! default), so without a bound on their sum N namespaces log N times as
//! much and push everything else out of the kernel's ring buffer. Every line
//! of a namespace other than the initial one therefore also takes a token
//! from one host-wide [`Bucket`], the budget (`budget_rate`, `budget_burst`).
//! The initial namespace, the host's own, is outside it: no container can
//! suppress the host's lines.
//!
//! # Why the budget is shared fairly, and how
//!
//! First come, first served would let a crowd of flooding namespaces take
//! every token as it is refilled, and a namespace that logs a line now and
//! then would find the bucket empty nearly every time. So the budget has a
//! reserve, the lower half of its burst, that only a namespace *within its
//! fair share* may take from: a namespace is within it while its own small
//! bucket of shares ([`NetLimit`]'s `fair`), refilled at `S = budget_rate /
//! (2 * A)` lines a second (at least 1) where `A` is the number of
//! namespaces that logged through the budget in the last second, and
//! holding two of them, still has a token. Floods beyond their share
//! compete for the upper half only. Together the shares ask for half of the
//! refill, so while fewer than `budget_rate` namespaces flood the reserve
//! is never drained, and the line of a namespace that logs within its share
//! (a probe a second, with 100 namespaces flooding under the defaults)
//! finds it there; each flooding namespace still gets its share. This is
//! max-min fairness, approximated without a lock: nobody is refused while
//! asking for less than an equal split. With more namespaces than that,
//! each gets about `budget_rate / A`, and the budget's bound on the total
//! holds whatever their number. When a crowd appears at once, `A` catches up
//! with it as its namespaces log their first lines, each taking at most two
//! from the reserve meanwhile.
//!
//! Each decision costs a few atomic loads and at most three compare-and-swaps
//! on cache lines written at most at the admitted lines' rate; a refusal
//! writes nothing shared.
//!
//! # Summary lines
//!
//! A namespace's refused lines are reported by a summary line that comes
//! with one of its admitted lines, at most once a second per namespace (a
//! second from the print of the last one: see [`NetLimit::summary_printed`]),
//! and only when lines were refused since the last one. The refused counts
//! are summed over the CPUs at most once a second per namespace, whether or
//! not lines were refused: after a quiet second the first refused line is
//! reported with an admitted line at most a second later, never after one
//! that comes later than that. In a namespace under the
//! budget, the summary line takes a token of the budget too, so that every
//! record nsfilter writes for such a namespace is within it.

use crate::ratelimit::{Bucket, NSEC_PER_SEC};
use core::sync::atomic::{AtomicU64, Ordering};

/// Summary lines of one namespace come at least this far apart (ns).
pub(crate) const SUMMARY_INTERVAL: u64 = NSEC_PER_SEC;

/// The limits in force, read from the settings for each packet.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// A namespace's own lines per second.
    pub(crate) rate: u32,
    /// A namespace's own burst.
    pub(crate) burst: u32,
    /// Lines per second of all the namespaces under the budget together.
    pub(crate) budget_rate: u32,
    /// Their burst together.
    pub(crate) budget_burst: u32,
}

/// Whether a namespace's lines come out of the host-wide budget.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Scope {
    /// The initial namespace: its own limit only.
    Initial,
    /// Any other namespace: its own limit and the budget.
    Shared,
}

/// Lines refused, by reason.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) struct Suppressed {
    /// By the namespace's own limit (`log_rate`, `log_burst`).
    pub(crate) limit: u64,
    /// By the host-wide budget (`budget_rate`, `budget_burst`).
    pub(crate) budget: u64,
}

impl Suppressed {
    /// All the lines.
    pub(crate) fn total(&self) -> u64 {
        self.limit.saturating_add(self.budget)
    }
}

/// Why a line was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Reason {
    /// The namespace's own limit.
    Limit,
    /// The host-wide budget.
    Budget,
}

/// What to do with a line.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Verdict {
    /// Log it, after a summary line of the lines refused since the last
    /// one, if there is one (never one with nothing in it).
    Log(Option<Suppressed>),
    /// Do not log it; the caller counts it under the reason.
    Refused(Reason),
}

/// The host-wide budget: one for all namespaces.
pub(crate) struct Budget {
    /// The tokens.
    bucket: Bucket,
    /// How many namespaces took lines from the budget: in the second named
    /// and in the second before it (see [`Active`]).
    active: AtomicU64,
}

/// The unpacked value of [`Budget`]'s `active`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Active {
    /// The second (since boot, modulo 2^32).
    second: u32,
    /// Namespaces active in the second before it.
    before: u16,
    /// Namespaces active in it so far.
    now: u16,
}

impl Active {
    fn unpack(v: u64) -> Self {
        // CAST: Each field is cut out of its bits.
        Self {
            second: (v >> 32) as u32,
            before: (v >> 16) as u16,
            now: v as u16,
        }
    }

    fn pack(self) -> u64 {
        (u64::from(self.second) << 32) | (u64::from(self.before) << 16) | u64::from(self.now)
    }
}

/// The second of time `now`, as [`Active`] keeps it.
fn second_of(now: u64) -> u32 {
    // CAST: Seconds since boot, modulo 2^32 (136 years).
    (now / NSEC_PER_SEC) as u32
}

impl Budget {
    /// A full budget, no namespace active.
    pub(crate) const fn new() -> Self {
        Self {
            bucket: Bucket::new(),
            active: AtomicU64::new(0),
        }
    }

    /// How many namespaces took lines from the budget in the last second
    /// (the current one so far, or the one before if it had more).
    pub(crate) fn active(&self, now: u64) -> u32 {
        let a = Active::unpack(self.active.load(Ordering::Relaxed));
        let second = second_of(now);
        if a.second == second {
            u32::from(a.before.max(a.now))
        } else if a.second.wrapping_add(1) == second {
            u32::from(a.now)
        } else {
            0
        }
    }

    /// A namespace's fair share at `now`: lines per second.
    fn share(&self, now: u64, budget_rate: u32) -> u32 {
        (budget_rate / 2 / self.active(now).max(1)).max(1)
    }

    /// Counts a namespace as active in the second of `now` (called once per
    /// namespace and second).
    fn note_active(&self, now: u64) {
        let second = second_of(now);
        let mut v = self.active.load(Ordering::Relaxed);
        loop {
            let a = Active::unpack(v);
            let next = if a.second == second {
                Active {
                    now: a.now.saturating_add(1),
                    ..a
                }
            } else if a.second.wrapping_add(1) == second {
                Active {
                    second,
                    before: a.now,
                    now: 1,
                }
            } else if second.wrapping_sub(a.second) < u32::MAX / 2 {
                Active {
                    second,
                    before: 0,
                    now: 1,
                }
            } else {
                // Another CPU already moved on to a later second: this
                // namespace is counted there when it logs again.
                return;
            };
            match self.active.compare_exchange_weak(
                v,
                next.pack(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(seen) => v = seen,
            }
        }
    }
}

/// One namespace's limits: its own bucket, its fair share of the budget,
/// and what its summary lines reported.
pub(crate) struct NetLimit {
    /// The namespace's own bucket.
    own: Bucket,
    /// Its fair share of the budget (see the module documentation).
    fair: Bucket,
    /// 1 + the second in which it last took a line from the budget; 0: never.
    active_in: AtomicU64,
    /// The earliest time (ns) of its next summary line.
    next_summary: AtomicU64,
    /// Lines refused by its own limit that summary lines have reported.
    reported_limit: AtomicU64,
    /// Lines refused by the budget that summary lines have reported.
    reported_budget: AtomicU64,
}

impl NetLimit {
    /// Full buckets, nothing to report.
    pub(crate) const fn new() -> Self {
        Self {
            own: Bucket::new(),
            fair: Bucket::new(),
            active_in: AtomicU64::new(0),
            next_summary: AtomicU64::new(0),
            reported_limit: AtomicU64::new(0),
            reported_budget: AtomicU64::new(0),
        }
    }

    /// Decides on a line of this namespace at time `now` (ns, monotonic).
    ///
    /// On [`Verdict::Refused`] the caller counts the line under its reason;
    /// `suppressed` returns the lines it has counted so far, by reason (each
    /// only grows). It is called at most once a second, whether or not it
    /// finds lines to report, and only for a line its own limit admits.
    pub(crate) fn admit(
        &self,
        budget: &Budget,
        scope: Scope,
        now: u64,
        limits: Limits,
        suppressed: impl FnOnce() -> Suppressed,
    ) -> Verdict {
        // Its own limit first: a namespace refused by its own limit takes
        // nothing from the budget.
        if !self.own.take(now, limits.rate, limits.burst, 1, 0) {
            return Verdict::Refused(Reason::Limit);
        }
        let due = self.next_summary.load(Ordering::Relaxed);
        let mut pending = None;
        if now >= due {
            let totals = suppressed();
            if totals.limit > self.reported_limit.load(Ordering::Relaxed)
                || totals.budget > self.reported_budget.load(Ordering::Relaxed)
            {
                pending = Some(totals);
            } else {
                // Nothing to report: the counts are read again a second
                // from now, not for each line (reading them walks every
                // CPU). A line refused meanwhile is reported then, still
                // before a line of this namespace is.
                let _ = self.next_summary.compare_exchange(
                    due,
                    now.saturating_add(SUMMARY_INTERVAL),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
        }
        if scope == Scope::Shared {
            let (rate, burst) = (limits.budget_rate, limits.budget_burst);
            // An empty budget refuses the line whatever the share says:
            // decided first, so that a flood over the budget pays for no
            // share for each line it sends, nor spends the namespace's fair
            // tokens on lines refused.
            if !budget.bucket.holds(now, rate, burst) {
                return Verdict::Refused(Reason::Budget);
            }
            let share = budget.share(now, limits.budget_rate);
            // A burst of two lines: a namespace that logs at its share
            // stays within it though its lines arrive a little unevenly,
            // and a crowd that appears at once takes at most two lines
            // each from the reserve before the estimate of `A` has caught
            // up with it.
            let within_share = self.fair.take(now, share, 2, 1, 0);
            let keep = if within_share {
                0
            } else {
                limits.budget_burst / 2
            };
            // With a summary due, the line and its summary take two tokens;
            // without them, the line alone (the summary waits).
            let with_summary = pending.is_some() && budget.bucket.take(now, rate, burst, 2, keep);
            if !with_summary {
                pending = None;
                if !budget.bucket.take(now, rate, burst, 1, keep) {
                    return Verdict::Refused(Reason::Budget);
                }
            }
            let second = u64::from(second_of(now)) + 1;
            if self.active_in.load(Ordering::Relaxed) != second
                && self.active_in.swap(second, Ordering::Relaxed) != second
            {
                budget.note_active(now);
            }
        }
        Verdict::Log(pending.and_then(|totals| self.report(due, now, totals)))
    }

    /// Called right after a summary line of this namespace was printed, at
    /// `now`: the next one comes at least [`SUMMARY_INTERVAL`] after it.
    ///
    /// [`NetLimit::admit`] already spaces the *decisions* to report by that
    /// interval, but the kernel log stamps each record when it is printed,
    /// and on `PREEMPT_RT` the hook can be preempted between the decision
    /// and the print: two summary lines were seen 971.76 ms apart in the
    /// log of a `debian-rt` stress run. Counting the interval from the
    /// print keeps the log's own timestamps a second apart.
    pub(crate) fn summary_printed(&self, now: u64) {
        self.next_summary
            .fetch_max(now.saturating_add(SUMMARY_INTERVAL), Ordering::Relaxed);
    }

    /// The summary of `totals` if this call is the one that reports it (the
    /// one that moves the next summary's time on from `due`), and it holds
    /// lines not reported yet.
    fn report(&self, due: u64, now: u64, totals: Suppressed) -> Option<Suppressed> {
        self.next_summary
            .compare_exchange(
                due,
                now.saturating_add(SUMMARY_INTERVAL),
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .ok()?;
        // The totals only grow; concurrent reports each report what their
        // own reading adds to the largest reported so far, so every refused
        // line is reported once.
        let limit = self
            .reported_limit
            .fetch_max(totals.limit, Ordering::Relaxed);
        let budget = self
            .reported_budget
            .fetch_max(totals.budget, Ordering::Relaxed);
        let new = Suppressed {
            limit: totals.limit.saturating_sub(limit),
            budget: totals.budget.saturating_sub(budget),
        };
        (new.total() != 0).then_some(new)
    }
}
