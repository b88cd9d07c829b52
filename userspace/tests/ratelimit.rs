//! Host tests of the module's per-namespace rate limit (`rust/ratelimit.rs`):
//! the token bucket's burst, rate, reaction to a parameter change, and
//! exactness under concurrent callers.

#![allow(dead_code)]

#[path = "../../rust/ratelimit.rs"]
mod ratelimit;

use ratelimit::{Admit, RateLimit};

/// A namespace's rate limit with its suppressed lines counted as the hook
/// counts them: by the caller, after a refusal.
struct Limit {
    bucket: RateLimit,
    suppressed: std::sync::atomic::AtomicU64,
}

impl Limit {
    fn new() -> Self {
        Self {
            bucket: RateLimit::new(),
            suppressed: 0.into(),
        }
    }

    fn admit(&self, now: u64, rate: u32, burst: u32) -> Admit {
        use std::sync::atomic::Ordering::Relaxed;
        let admit = self
            .bucket
            .admit(now, rate, burst, || self.suppressed.load(Relaxed));
        if admit == Admit::No {
            self.suppressed.fetch_add(1, Relaxed);
        }
        admit
    }
}

#[test]
fn bucket_allows_a_burst_then_the_rate() {
    let limit = Limit::new();
    let t0 = 5_000_000_000u64;
    let admitted = (0..10)
        .filter(|_| limit.admit(t0, 2, 3) != Admit::No)
        .count();
    assert_eq!(admitted, 3, "a full bucket holds the burst");
    // Half a second later (rate 2/s): one more token, and the seven refused
    // lines are reported with it.
    assert_eq!(
        limit.admit(t0 + 500_000_000, 2, 3),
        Admit::Yes { suppressed: 7 }
    );
    assert_eq!(limit.admit(t0 + 500_000_000, 2, 3), Admit::No);
    // After a long pause the bucket is full again, and no more.
    let later = t0 + 60_000_000_000;
    let admitted = (0..10)
        .filter(|_| limit.admit(later, 2, 3) != Admit::No)
        .count();
    assert_eq!(admitted, 3);
}

#[test]
fn bucket_never_exceeds_burst_plus_rate_times_elapsed() {
    // Deterministic pseudo-random arrivals over 10 s of simulated time.
    let (rate, burst) = (50u32, 20u32);
    let limit = Limit::new();
    let mut x = 0x1234_5678_9abc_def0u64;
    let mut now = 1_000_000_000u64;
    let start = now;
    let (mut admitted, mut refused, mut reported) = (0u64, 0u64, 0u64);
    for _ in 0..100_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        now += x % 200_000; // Up to 0.2 ms apart: a flood.
        match limit.admit(now, rate, burst) {
            Admit::Yes { suppressed } => {
                admitted += 1;
                reported += suppressed;
            }
            Admit::No => refused += 1,
        }
        let elapsed = now - start;
        let bound = u64::from(burst) + elapsed * u64::from(rate) / 1_000_000_000 + 1;
        assert!(admitted <= bound, "{admitted} > {bound} after {elapsed} ns");
    }
    // Every refused line is reported: those since the last admitted line
    // come with the next one.
    match limit.admit(now + 10_000_000_000, rate, burst) {
        Admit::Yes { suppressed } => reported += suppressed,
        Admit::No => panic!("a rested bucket admits"),
    }
    assert_eq!(reported, refused);
    assert!(admitted > u64::from(burst), "the rate refills the bucket");
}

/// `log_rate=1 log_burst=1000000` and a flood leave the bucket's time
/// ~10^15 ns ahead; raising the rate must bring lines back at once, not in
/// days.
#[test]
fn bucket_follows_a_change_of_rate_and_burst_at_once() {
    let limit = Limit::new();
    let mut now = 1_000_000_000u64;
    for _ in 0..1_000_000 {
        limit.admit(now, 1, 1_000_000);
        now += 100;
    }
    assert_eq!(
        limit.admit(now, 1, 1_000_000),
        Admit::No,
        "the flood emptied it"
    );
    // Raise the rate: within 1/rate the bucket admits again.
    let (rate, burst) = (100, 200);
    let mut t = now;
    let first = loop {
        if matches!(limit.admit(t, rate, burst), Admit::Yes { .. }) {
            break t;
        }
        t += 1_000_000;
        assert!(t - now <= 1_000_000_000, "nothing admitted within a second");
    };
    assert!(
        first - now <= 10_000_000,
        "{} ns after the change",
        first - now
    );
    // And from then on the new rate holds, burst and all.
    let later = first + 10_000_000_000;
    let admitted = (0..1000)
        .filter(|_| limit.admit(later, rate, burst) != Admit::No)
        .count();
    assert_eq!(admitted, 200);
    // Lowering the burst takes effect too: a full bucket under the old burst
    // admits no more than the new one.
    let limit = Limit::new();
    let admitted = (0..1000)
        .filter(|_| limit.admit(later, 1, 5) != Admit::No)
        .count();
    assert_eq!(admitted, 5);
}

#[test]
fn bucket_is_exact_under_concurrent_callers() {
    let limit = std::sync::Arc::new(Limit::new());
    let now = 1_000_000_000u64;
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let limit = limit.clone();
            std::thread::spawn(move || {
                (0..10_000)
                    .filter(|_| limit.admit(now, 1000, 500) != Admit::No)
                    .count()
            })
        })
        .collect();
    let admitted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(
        admitted, 500,
        "eight CPUs at the same instant share one burst"
    );
}
