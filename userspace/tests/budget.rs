//! Host tests of the host-wide budget (`rust/budget.rs`): a crowd of
//! flooding namespaces stays within it, shares it fairly, cannot silence the
//! initial namespace or a quiet one, and every refused line is counted under
//! its reason and reported, in summary lines at most once a second.

#![allow(dead_code)]

#[path = "../../rust/budget.rs"]
mod budget;
#[path = "../../rust/ratelimit.rs"]
mod ratelimit;

use budget::{Budget, Limits, NetLimit, Reason, Scope, Suppressed, Verdict, SUMMARY_INTERVAL};

const SEC: u64 = 1_000_000_000;

/// The module's defaults.
const DEFAULTS: Limits = Limits {
    rate: 100,
    burst: 200,
    budget_rate: 200,
    budget_burst: 400,
};

/// One simulated namespace, counted as the hook counts.
struct Ns {
    limit: NetLimit,
    scope: Scope,
    sent: u64,
    logged: u64,
    refused: Suppressed,
    /// Summary lines: when, and what they reported.
    summaries: Vec<(u64, Suppressed)>,
    /// Times of its lines (packet lines), for the budget's bound.
    lines: Vec<u64>,
}

impl Ns {
    fn new(scope: Scope) -> Self {
        Self {
            limit: NetLimit::new(),
            scope,
            sent: 0,
            logged: 0,
            refused: Suppressed::default(),
            summaries: Vec::new(),
            lines: Vec::new(),
        }
    }

    /// One packet at `now`; whether its line was logged.
    fn packet(&mut self, budget: &Budget, now: u64, limits: Limits) -> bool {
        self.sent += 1;
        let refused = self.refused;
        match self
            .limit
            .admit(budget, self.scope, now, limits, || refused)
        {
            Verdict::Refused(Reason::Limit) => {
                self.refused.limit += 1;
                false
            }
            Verdict::Refused(Reason::Budget) => {
                assert_eq!(
                    self.scope,
                    Scope::Shared,
                    "the initial namespace has no budget"
                );
                self.refused.budget += 1;
                false
            }
            Verdict::Log(summary) => {
                if let Some(s) = summary {
                    assert!(s.total() > 0, "a summary line with nothing to report");
                    self.summaries.push((now, s));
                }
                self.logged += 1;
                self.lines.push(now);
                true
            }
        }
    }

    fn reported(&self) -> Suppressed {
        self.summaries
            .iter()
            .fold(Suppressed::default(), |a, (_, s)| Suppressed {
                limit: a.limit + s.limit,
                budget: a.budget + s.budget,
            })
    }

    /// Records (lines and summary lines) in `[from, to)`.
    fn records(&self, from: u64, to: u64) -> u64 {
        let inside = |t: &u64| (from..to).contains(t);
        (self.lines.iter().filter(|t| inside(t)).count()
            + self.summaries.iter().filter(|(t, _)| inside(t)).count()) as u64
    }
}

/// A crowd of `flooders` namespaces sending `pps` packets a second each for
/// `secs` seconds, one quiet namespace sending a probe every `probe_every`
/// ns from `quiet_from` on, and the initial namespace flooding too. Then,
/// after a rest, one probe from each: every refusal is reported.
struct Run {
    budget: Budget,
    initial: Ns,
    quiet: Ns,
    crowd: Vec<Ns>,
    start: u64,
    end: u64,
    probes: u64,
    probes_logged: u64,
}

fn run(
    flooders: usize,
    pps: u64,
    secs: u64,
    probe_every: u64,
    quiet_from: u64,
    limits: Limits,
) -> Run {
    let mut r = Run {
        budget: Budget::new(),
        initial: Ns::new(Scope::Initial),
        quiet: Ns::new(Scope::Shared),
        crowd: (0..flooders).map(|_| Ns::new(Scope::Shared)).collect(),
        start: 100 * SEC,
        end: 0,
        probes: 0,
        probes_logged: 0,
    };
    // Every namespace sends at `pps`, round robin: a packet every `step` ns
    // from some namespace of the crowd.
    let step = SEC / pps / flooders as u64;
    let mut now = r.start;
    let mut next_probe = r.start + quiet_from;
    let mut i = 0usize;
    r.end = r.start + secs * SEC;
    while now < r.end {
        r.crowd[i].packet(&r.budget, now, limits);
        i = (i + 1) % flooders;
        if i == 0 {
            r.initial.packet(&r.budget, now, limits);
        }
        if now >= next_probe {
            r.probes += 1;
            if r.quiet.packet(&r.budget, now, limits) {
                r.probes_logged += 1;
            }
            next_probe += probe_every;
        }
        now += step;
    }
    // A rest, then a line from each: its summary reports what is left.
    let later = r.end + 3 * SEC;
    let spacing = (SEC / u64::from(limits.budget_rate)).max(20_000_000) + 1;
    for (n, ns) in r.crowd.iter_mut().enumerate() {
        assert!(
            ns.packet(&r.budget, later + n as u64 * spacing, limits),
            "a rested namespace logs"
        );
    }
    assert!(r.initial.packet(&r.budget, later, limits));
    r
}

#[test]
fn a_crowd_stays_within_the_budget_and_shares_it() {
    let limits = DEFAULTS;
    let r = run(100, 2_000, 10, SEC, SEC, limits);
    // The bound: in any whole-second interval, the records of the shared
    // namespaces are at most the burst plus the rate times its length.
    let shared: Vec<&Ns> = r.crowd.iter().chain([&r.quiet]).collect();
    for from in 0..10 {
        for to in from + 1..=10 {
            let records: u64 = shared
                .iter()
                .map(|ns| ns.records(r.start + from * SEC, r.start + to * SEC))
                .sum();
            let bound =
                u64::from(limits.budget_burst) + u64::from(limits.budget_rate) * (to - from);
            assert!(
                records <= bound,
                "{records} records in [{from} s, {to} s), bound {bound}"
            );
        }
    }
    // Each flooding namespace got lines, and once the budget has seen the
    // crowd for a second, about an equal share: none more than twice the
    // mean. (In the first second the first namespaces take a larger share:
    // the budget does not know yet how many there are.)
    assert!(r.crowd.iter().all(|ns| ns.logged > 0));
    let logged: Vec<u64> = r
        .crowd
        .iter()
        .map(|ns| ns.records(r.start + 2 * SEC, r.end))
        .collect();
    let mean = logged.iter().sum::<u64>() / logged.len() as u64;
    let (min, max) = (logged.iter().min().unwrap(), logged.iter().max().unwrap());
    println!(
        "crowd: mean {mean}, min {min}, max {max} lines each; quiet {}/{}",
        r.probes_logged, r.probes
    );
    assert!(*min >= 2, "a flooding namespace got {min} lines");
    assert!(
        *max <= 2 * mean + 4,
        "unfair: {max} lines against a mean of {mean}"
    );
    // The quiet namespace, logging within its share, lost no probe.
    assert!(r.probes >= 8);
    assert_eq!(r.probes_logged, r.probes, "the quiet namespace lost probes");
    // The initial namespace is outside the budget: its own limit only.
    let own = u64::from(limits.burst) + u64::from(limits.rate) * 10;
    assert!(
        r.initial.logged + 2 >= own,
        "the initial namespace logged {} of {own}",
        r.initial.logged
    );
    assert_eq!(r.initial.refused.budget, 0);
}

#[test]
fn every_refusal_is_counted_by_reason_and_reported_once_a_second_at_most() {
    let r = run(40, 1_000, 5, SEC / 2, 0, DEFAULTS);
    for ns in r.crowd.iter().chain([&r.initial, &r.quiet]) {
        assert_eq!(
            ns.logged + ns.refused.total(),
            ns.sent,
            "every packet has one fate"
        );
        assert_eq!(
            ns.reported(),
            ns.refused,
            "summaries add up to the counters"
        );
        for pair in ns.summaries.windows(2) {
            assert!(
                pair[1].0 - pair[0].0 >= SUMMARY_INTERVAL,
                "two summary lines {} ns apart",
                pair[1].0 - pair[0].0
            );
        }
    }
    // The crowd was refused for both reasons: each floods at 10 times its
    // own rate, and 40 of them at twenty times the budget.
    let refused = r
        .crowd
        .iter()
        .fold(Suppressed::default(), |a, ns| Suppressed {
            limit: a.limit + ns.refused.limit,
            budget: a.budget + ns.refused.budget,
        });
    assert!(refused.limit > 0 && refused.budget > 0, "{refused:?}");
}

/// A namespace that logs within its fair share (`budget_rate / 2 / A`)
/// takes from the reserve and is never refused, however hard the others
/// flood: here 2 flooders and one namespace at 8 lines a second, whose share
/// is 60 / 2 / 3 = 10.
#[test]
fn a_namespace_within_its_fair_share_is_never_refused() {
    let limits = Limits {
        budget_rate: 60,
        budget_burst: 120,
        ..DEFAULTS
    };
    let budget = Budget::new();
    let mut flooders = [Ns::new(Scope::Shared), Ns::new(Scope::Shared)];
    let mut moderate = Ns::new(Scope::Shared);
    let (start, end) = (100 * SEC, 110 * SEC);
    let mut now = start;
    let mut next_moderate = start;
    let mut i = 0;
    while now < end {
        flooders[i % 2].packet(&budget, now, limits);
        i += 1;
        if now >= next_moderate {
            moderate.packet(&budget, now, limits);
            next_moderate += SEC / 8;
        }
        now += SEC / 2000;
    }
    assert!(
        flooders
            .iter()
            .all(|f| f.refused.budget > 0 && f.logged > 0),
        "the flooders are held by the budget and still log"
    );
    assert_eq!(moderate.sent, 80);
    assert_eq!(
        moderate.refused,
        Suppressed::default(),
        "a namespace within its share was refused ({} of {} logged)",
        moderate.logged,
        moderate.sent
    );
}

/// Namespaces refused by the budget alone, never by their own limit, get
/// summary lines that report those refusals.
#[test]
fn refusals_by_the_budget_alone_are_reported() {
    let limits = Limits {
        budget_rate: 5,
        budget_burst: 10,
        ..DEFAULTS
    };
    let budget = Budget::new();
    let mut crowd: Vec<Ns> = (0..3).map(|_| Ns::new(Scope::Shared)).collect();
    let mut now = 100 * SEC;
    while now < 110 * SEC {
        for ns in &mut crowd {
            ns.packet(&budget, now, limits);
        }
        now += SEC / 20;
    }
    // A rest, then one line each: its summary reports what is left.
    now += 10 * SEC;
    for ns in &mut crowd {
        assert!(ns.packet(&budget, now, limits), "a rested namespace logs");
        now += SEC;
    }
    for ns in &crowd {
        assert_eq!(ns.refused.limit, 0, "20 lines a second are within log_rate");
        assert!(ns.refused.budget > 0, "the budget refused some");
        assert_eq!(
            ns.reported(),
            ns.refused,
            "summaries add up to the counters"
        );
    }
}

/// On PREEMPT_RT the hook can be preempted between the decision to report
/// and the print: the next summary counts its second from the print, so the
/// log's timestamps stay a second apart however late the last one came out.
#[test]
fn summary_lines_are_a_second_apart_from_their_print() {
    let (budget, ns) = (Budget::new(), NetLimit::new());
    let limits = Limits {
        rate: 1,
        burst: 1,
        ..DEFAULTS
    };
    let mut refused = 0u64;
    let mut printed: Vec<u64> = Vec::new();
    let mut now = 10 * SEC;
    while now < 20 * SEC {
        let totals = Suppressed {
            limit: refused,
            budget: 0,
        };
        match ns.admit(&budget, Scope::Shared, now, limits, || totals) {
            Verdict::Refused(_) => refused += 1,
            Verdict::Log(Some(_)) => {
                // Printed 300 ms after the decision every other time, at
                // once otherwise.
                let at = now + 300_000_000 * (printed.len() as u64 % 2);
                printed.push(at);
                ns.summary_printed(at);
            }
            Verdict::Log(None) => {}
        }
        now += 10_000_000;
    }
    assert!(printed.len() >= 5, "{printed:?}");
    for pair in printed.windows(2) {
        assert!(
            pair[1] - pair[0] >= SUMMARY_INTERVAL,
            "two summary lines printed {} ns apart",
            pair[1] - pair[0]
        );
    }
}

#[test]
fn no_summary_line_without_refusals() {
    let (budget, ns) = (Budget::new(), NetLimit::new());
    let mut now = 5 * SEC;
    for _ in 0..1000 {
        let v = ns.admit(&budget, Scope::Shared, now, DEFAULTS, Suppressed::default);
        assert_eq!(v, Verdict::Log(None));
        now += 20_000_000;
    }
}

/// Lowering the budget takes effect at once, and a budget of one line a
/// second holds with a crowd.
#[test]
fn a_small_budget_holds() {
    let limits = Limits {
        budget_rate: 1,
        budget_burst: 1,
        ..DEFAULTS
    };
    let r = run(10, 1_000, 5, SEC, 0, limits);
    let total: u64 = r
        .crowd
        .iter()
        .chain([&r.quiet])
        .map(|ns| ns.records(r.start, r.end + 1))
        .sum();
    assert!(total <= 1 + 5, "{total} records with a budget of 1/s");
}

/// A line the budget refuses because another namespace emptied it spends
/// nothing of its namespace's fair share: the namespace gets its line from
/// the reserve when a token comes back.
#[test]
fn an_empty_budget_spends_no_fair_share() {
    // Own limits open; the budget: 2 lines a second, burst 2, of which 1 is
    // the reserve of namespaces within their share (1 line a second each).
    let limits = Limits {
        rate: 1_000_000,
        burst: 1_000_000,
        budget_rate: 2,
        budget_burst: 2,
    };
    let budget = Budget::new();
    let (mut quiet, mut loud) = (Ns::new(Scope::Shared), Ns::new(Scope::Shared));
    let t = 100 * SEC;
    // The loud namespace empties the budget with its two fair lines.
    assert!(loud.packet(&budget, t, limits) && loud.packet(&budget, t + 1, limits));
    // The quiet one sends two packets into the empty budget: refused.
    assert!(!quiet.packet(&budget, t + 2, limits) && !quiet.packet(&budget, t + 3, limits));
    assert_eq!(quiet.refused.budget, 2);
    // 0.6 s later one token is back, in the reserve: the quiet namespace,
    // still within its share, takes it.
    assert!(
        quiet.packet(&budget, t + 600_000_000, limits),
        "the quiet namespace's fair share was spent on refused lines"
    );
}

/// A line with no refused line to report takes one token of the budget,
/// not the two a line and its summary take.
#[test]
fn a_line_with_nothing_to_report_takes_one_token() {
    let limits = Limits {
        rate: 1_000_000,
        burst: 1_000_000,
        budget_rate: 1,
        budget_burst: 2,
    };
    let budget = Budget::new();
    let mut ns = Ns::new(Scope::Shared);
    let t = 100 * SEC;
    assert!(ns.packet(&budget, t, limits), "the first line");
    assert!(
        ns.packet(&budget, t + 1, limits),
        "the second token went to no summary"
    );
    assert!(!ns.packet(&budget, t + 2, limits), "a burst of 2");
}

/// `budget.active` counts namespaces that logged through the budget in the
/// last second, and forgets them after two.
#[test]
fn active_namespaces_are_counted_per_second() {
    let budget = Budget::new();
    let nets: Vec<NetLimit> = (0..30).map(|_| NetLimit::new()).collect();
    let t = 50 * SEC;
    for (i, n) in nets.iter().enumerate() {
        let _ = n.admit(
            &budget,
            Scope::Shared,
            t + i as u64,
            DEFAULTS,
            Suppressed::default,
        );
    }
    assert_eq!(budget.active(t + SEC / 2), 30);
    // The next second remembers the last one.
    assert_eq!(budget.active(t + SEC), 30);
    let _ = nets[0].admit(
        &budget,
        Scope::Shared,
        t + SEC,
        DEFAULTS,
        Suppressed::default,
    );
    assert_eq!(budget.active(t + SEC), 30);
    assert_eq!(budget.active(t + 2 * SEC), 1);
    assert_eq!(budget.active(t + 3 * SEC), 0);
}
