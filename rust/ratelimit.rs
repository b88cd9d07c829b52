// SPDX-License-Identifier: GPL-2.0

//! A lock-free token bucket, one per namespace, in safe Rust.
//!
//! It is the generic cell rate algorithm (GCRA): the whole state is one
//! "theoretical arrival time" in an atomic, advanced by a compare-and-swap,
//! so CPUs logging in the same namespace never wait on a lock and namespaces
//! never touch each other's state. Over any interval of `E` nanoseconds it
//! admits at most `burst + E * rate / 10^9` lines.

use core::sync::atomic::{AtomicU64, Ordering};

const NSEC_PER_SEC: u64 = 1_000_000_000;

/// Whether a line may be logged now.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Admit {
    /// Log it; `suppressed` lines were refused since the last admitted one.
    Yes {
        /// Lines refused since the previous admitted line.
        suppressed: u64,
    },
    /// The bucket is empty: do not log.
    No,
}

/// The token bucket of one namespace.
pub(crate) struct RateLimit {
    /// The time (ns) at which the bucket would be full again.
    tat: AtomicU64,
    /// Lines refused since the last admitted one.
    pending: AtomicU64,
}

impl RateLimit {
    /// A full bucket.
    pub(crate) const fn new() -> Self {
        Self {
            tat: AtomicU64::new(0),
            pending: AtomicU64::new(0),
        }
    }

    /// Takes a token at time `now` (ns, monotonic) for a bucket refilled at
    /// `rate` lines per second that holds at most `burst` (both at least 1).
    pub(crate) fn admit(&self, now: u64, rate: u32, burst: u32) -> Admit {
        let interval = NSEC_PER_SEC / u64::from(rate.max(1));
        let tolerance = interval.saturating_mul(u64::from(burst.max(1)) - 1);
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let start = tat.max(now);
            if start - now > tolerance {
                self.pending.fetch_add(1, Ordering::Relaxed);
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
        Admit::Yes {
            suppressed: self.pending.swap(0, Ordering::Relaxed),
        }
    }
}
