//! Host tests of the module's per-namespace rate limit (`rust/ratelimit.rs`):
//! the token bucket's burst, rate, reaction to a parameter change, and
//! exactness under concurrent callers.

#![allow(dead_code)]

#[path = "../../rust/budget.rs"]
mod budget;
#[path = "../../rust/ratelimit.rs"]
mod ratelimit;

use budget::{Budget, Limits, NetLimit, Reason, Scope, Suppressed, Verdict};
use ratelimit::Bucket;

/// A line's fate as these tests look at it: its own limit alone.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Admit {
    /// Logged, after a summary of `suppressed` lines (0: no summary).
    Yes { suppressed: u64 },
    /// Refused.
    No,
}

/// The initial namespace's limit (outside the budget) with its suppressed
/// lines counted as the hook counts them: by the caller, after a refusal.
struct Limit {
    limit: NetLimit,
    budget: Budget,
    suppressed: std::sync::atomic::AtomicU64,
}

impl Limit {
    fn new() -> Self {
        Self {
            limit: NetLimit::new(),
            budget: Budget::new(),
            suppressed: 0.into(),
        }
    }

    fn admit(&self, now: u64, rate: u32, burst: u32) -> Admit {
        use std::sync::atomic::Ordering::Relaxed;
        let limits = Limits {
            rate,
            burst,
            // Not used for the initial namespace: a budget of one line.
            budget_rate: 1,
            budget_burst: 1,
        };
        let verdict = self
            .limit
            .admit(&self.budget, Scope::Initial, now, limits, || Suppressed {
                limit: self.suppressed.load(Relaxed),
                budget: 0,
            });
        match verdict {
            Verdict::Refused(Reason::Limit) => {
                self.suppressed.fetch_add(1, Relaxed);
                Admit::No
            }
            Verdict::Refused(Reason::Budget) => panic!("the initial namespace has no budget"),
            Verdict::Log(None) => Admit::Yes { suppressed: 0 },
            Verdict::Log(Some(s)) => {
                assert_eq!(s.budget, 0);
                assert!(s.limit > 0, "a summary of nothing");
                Admit::Yes {
                    suppressed: s.limit,
                }
            }
        }
    }
}

#[test]
fn a_bucket_keeps_what_it_is_asked_to_keep() {
    let b = Bucket::new();
    let now = 7_000_000_000;
    // Burst 10: keeping 6, four single tokens and no more.
    let taken = (0..10).filter(|_| b.take(now, 10, 10, 1, 6)).count();
    assert_eq!(taken, 4);
    // The six kept are there for a caller that keeps nothing: three pairs.
    let pairs = (0..10).filter(|_| b.take(now, 10, 10, 2, 0)).count();
    assert_eq!(pairs, 3);
    assert!(!b.take(now, 10, 10, 1, 0), "empty");
    // 0.1 s later (rate 10/s), one token: enough for one, not for two.
    assert!(!b.take(now + 100_000_000, 10, 10, 2, 0));
    assert!(b.take(now + 100_000_000, 10, 10, 1, 0));
    // A cost above the burst is never given.
    let c = Bucket::new();
    assert!(!c.take(now, 10, 1, 2, 0));
    assert!(c.take(now, 10, 1, 1, 0));
}

/// `holds` says whether a token is there and takes none; like `take`, it
/// pulls back a time left far ahead by older settings.
#[test]
fn holds_answers_without_taking() {
    let b = Bucket::new();
    let now = 7_000_000_000;
    assert!(b.holds(now, 10, 2) && b.holds(now, 10, 2), "full");
    assert!(
        b.take(now, 10, 2, 1, 0) && b.take(now, 10, 2, 1, 0),
        "both still there"
    );
    assert!(!b.holds(now, 10, 2), "empty");
    assert!(b.holds(now + 100_000_000, 10, 2), "one token 0.1 s later");
    // Emptied under 1/s with a burst of 1,000: the time lies 1,000 s ahead.
    let c = Bucket::new();
    while c.take(now, 1, 1_000, 1, 0) {}
    // Under 1,000/s, burst 1: empty now, a token a millisecond later.
    assert!(!c.holds(now, 1_000, 1));
    assert!(c.holds(now + 1_000_000, 1_000, 1));
}

#[test]
fn bucket_allows_a_burst_then_the_rate() {
    let limit = Limit::new();
    let t0 = 5_000_000_000u64;
    let admitted = (0..10)
        .filter(|_| limit.admit(t0, 2, 3) != Admit::No)
        .count();
    assert_eq!(admitted, 3, "a full bucket holds the burst");
    // Half a second later (rate 2/s): one more token. The refused counts
    // were last read at t0, when nothing was refused: they are read again
    // a second after that, not for every line.
    assert_eq!(
        limit.admit(t0 + 500_000_000, 2, 3),
        Admit::Yes { suppressed: 0 }
    );
    assert_eq!(limit.admit(t0 + 500_000_000, 2, 3), Admit::No);
    // At t0 + 1 s, one token more, and the eight refused lines come with it.
    assert_eq!(
        limit.admit(t0 + 1_000_000_000, 2, 3),
        Admit::Yes { suppressed: 8 }
    );
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

#[test]
fn refused_counts_are_read_at_most_once_a_second() {
    // Reading them walks every CPU's counters: not once per line.
    let limit = NetLimit::new();
    let budget = Budget::new();
    let limits = Limits {
        rate: 1_000_000,
        burst: 1_000_000,
        budget_rate: 1,
        budget_burst: 1,
    };
    let reads = std::cell::Cell::new(0u32);
    let t0 = 3_000_000_000u64;
    // 10,000 lines over 2.5 s, none refused: at t0, t0 + 1 s, t0 + 2 s.
    for i in 0..10_000u64 {
        let now = t0 + i * 250_000;
        let verdict = limit.admit(&budget, Scope::Initial, now, limits, || {
            reads.set(reads.get() + 1);
            Suppressed::default()
        });
        assert_eq!(verdict, Verdict::Log(None));
    }
    assert_eq!(reads.get(), 3);
}
