// SPDX-License-Identifier: GPL-2.0

//! A lock-free token bucket, in safe Rust: each namespace's own limit, the
//! host-wide budget and the fair shares of it are all one [`Bucket`].
//!
//! It is the generic cell rate algorithm (GCRA): the whole state is one
//! "theoretical arrival time" in an atomic, advanced by a compare-and-swap,
//! so CPUs taking tokens from the same bucket never wait on a lock. Over any
//! interval of `E` nanoseconds it gives at most `burst + E * rate / 10^9`
//! tokens.
//!
//! The rate and burst are read at every call, so a change of them takes
//! effect from the next packet: a time left further ahead than the new
//! values can produce (after `log_burst=1000000 log_rate=1` and a flood it
//! lies days ahead) is pulled back to "empty now, one token per new
//! interval", and never leaves a bucket empty for longer.
//!
//! A refusal writes nothing shared: it reads the time and returns (only the
//! first refusal after a change of settings may pull the time back), so a
//! flood that a bucket refuses on several CPUs does not bounce its cache
//! line between them. Only a token taken writes.

use core::sync::atomic::{AtomicU64, Ordering};

/// Nanoseconds in a second.
pub(crate) const NSEC_PER_SEC: u64 = 1_000_000_000;

/// A token bucket.
pub(crate) struct Bucket {
    /// The time (ns) at which the bucket would be full again.
    tat: AtomicU64,
}

impl Bucket {
    /// A full bucket.
    pub(crate) const fn new() -> Self {
        Self {
            tat: AtomicU64::new(0),
        }
    }

    /// Takes `cost` tokens at time `now` (ns, monotonic) from a bucket
    /// refilled at `rate` tokens per second that holds at most `burst` (both
    /// taken as at least 1), unless fewer than `cost + keep` tokens are in
    /// it: `keep` tokens stay for callers that ask with a smaller `keep`.
    /// Returns whether the tokens were taken.
    pub(crate) fn take(&self, now: u64, rate: u32, burst: u32, cost: u32, keep: u32) -> bool {
        self.decide(now, rate, burst, cost, keep, true)
    }

    /// Whether a token is in the bucket at time `now` (see [`Bucket::take`]),
    /// taking none: only a time left by older settings is pulled back, as
    /// `take` would.
    pub(crate) fn holds(&self, now: u64, rate: u32, burst: u32) -> bool {
        self.decide(now, rate, burst, 1, 0, false)
    }

    /// [`Bucket::take`], or with `take` false only the answer.
    fn decide(&self, now: u64, rate: u32, burst: u32, cost: u32, keep: u32, take: bool) -> bool {
        let interval = NSEC_PER_SEC / u64::from(rate.max(1));
        let capacity = interval.saturating_mul(u64::from(burst.max(1)));
        // The furthest ahead these settings can leave the time: an empty
        // bucket.
        let furthest = now.saturating_add(capacity);
        // Taken, the time may lie at most this far ahead of now.
        let limit = capacity.saturating_sub(interval.saturating_mul(u64::from(keep)));
        let cost = interval.saturating_mul(u64::from(cost));
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let start = tat.max(now);
            if start - now > limit.saturating_sub(cost) || cost > limit {
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
                return false;
            }
            if !take {
                return true;
            }
            match self.tat.compare_exchange_weak(
                tat,
                start + cost,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(seen) => tat = seen,
            }
        }
    }
}
