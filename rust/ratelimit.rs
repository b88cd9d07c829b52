// SPDX-License-Identifier: GPL-2.0

//! A lock-free token bucket, one per namespace, in safe Rust.
//!
//! It is the generic cell rate algorithm (GCRA): the whole state is one
//! "theoretical arrival time" in an atomic, advanced by a compare-and-swap,
//! so CPUs logging in the same namespace never wait on a lock and namespaces
//! never touch each other's state. Over any interval of `E` nanoseconds it
//! admits at most `burst + E * rate / 10^9` lines.
//!
//! The rate and burst are read at every call, so a change of `log_rate` or
//! `log_burst` takes effect from the next packet: a time left further ahead
//! than the new values can produce (after `log_burst=1000000 log_rate=1`
//! and a flood it lies days ahead) is pulled back to "empty now, one token
//! per new interval", and never leaves a namespace silent for longer.
//!
//! A refusal writes nothing shared: it reads the time and returns (the
//! caller counts the suppressed line on its own CPU; only the first refusal
//! after a change of settings may pull the time back), so a flood that the
//! limit refuses on several CPUs does not bounce the bucket's cache line
//! between them. Only an admitted line (at most `burst + rate` a second)
//! writes: the time, and how many suppressed lines have been reported.

use core::sync::atomic::{AtomicU64, Ordering};

const NSEC_PER_SEC: u64 = 1_000_000_000;

/// Whether a line may be logged now.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Admit {
    /// Log it; `suppressed` refused lines were not reported yet.
    Yes {
        /// Lines refused (since the previous admitted line, unless a refusal
        /// on another CPU was still being counted then) and not yet
        /// reported with an admitted line.
        suppressed: u64,
    },
    /// The bucket is empty: do not log.
    No,
}

/// The token bucket of one namespace.
pub(crate) struct RateLimit {
    /// The time (ns) at which the bucket would be full again.
    tat: AtomicU64,
    /// How many of the namespace's suppressed lines have been reported.
    reported: AtomicU64,
}

impl RateLimit {
    /// A full bucket.
    pub(crate) const fn new() -> Self {
        Self {
            tat: AtomicU64::new(0),
            reported: AtomicU64::new(0),
        }
    }

    /// Takes a token at time `now` (ns, monotonic) for a bucket refilled at
    /// `rate` lines per second that holds at most `burst` (both at least 1).
    ///
    /// On [`Admit::No`] the caller counts the line as suppressed, and
    /// `suppressed_total` returns how many it has counted in all (it is only
    /// called for an admitted line): the lines counted since the last report
    /// come with this one.
    pub(crate) fn admit(
        &self,
        now: u64,
        rate: u32,
        burst: u32,
        suppressed_total: impl FnOnce() -> u64,
    ) -> Admit {
        let interval = NSEC_PER_SEC / u64::from(rate.max(1));
        let tolerance = interval.saturating_mul(u64::from(burst.max(1)) - 1);
        // The furthest ahead these settings can leave the time: just after
        // the last token of a full burst was taken.
        let furthest = now.saturating_add(tolerance).saturating_add(interval);
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let start = tat.max(now);
            if start - now > tolerance {
                if tat > furthest {
                    // Left by older, slower settings: empty the bucket under
                    // the new ones. Whoever wins this swap, the time is then
                    // within reach of the next interval.
                    let _ = self.tat.compare_exchange(
                        tat,
                        furthest,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                }
                return Admit::No;
            }
            match self.tat.compare_exchange_weak(
                tat,
                start + interval,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(seen) => tat = seen,
            }
        }
        // The total only grows; concurrent admitted lines each report what
        // their own reading adds to the largest reported so far, so every
        // suppressed line is reported once.
        let total = suppressed_total();
        let before = self.reported.fetch_max(total, Ordering::Relaxed);
        Admit::Yes {
            suppressed: total.saturating_sub(before),
        }
    }
}
