//! Host tests of the per-packet decision (`rust/decision.rs`), the code the
//! hook runs for every packet: what the filters leave out, what the rate
//! limit and the budget refuse, where the summary lines go, what is counted,
//! at which level lines are printed. The kernel's clock and printk are a
//! recorder here.

#![allow(dead_code)]

#[path = "../../rust/budget.rs"]
mod budget;
#[path = "../../rust/counters.rs"]
mod counters;
#[path = "../../rust/decision.rs"]
mod decision;
#[path = "support/host_cpus.rs"]
mod host_cpus;
#[path = "support/host_rcu.rs"]
mod host_rcu;
#[path = "../../rust/logline.rs"]
mod logline;
#[path = "../../rust/packet.rs"]
mod packet;
#[path = "../../rust/ratelimit.rs"]
mod ratelimit;
#[path = "../../rust/rcu.rs"]
mod rcu;
#[path = "../../rust/settings.rs"]
mod settings;

use budget::{Budget, Suppressed, SUMMARY_INTERVAL};
use counters::CpuCounters;
use decision::{NetState, Output};
use host_cpus::HostCpus;
use host_rcu::Alone;
use packet::{parse, Family};
use settings::{Param, Settings};
use std::collections::BTreeMap;

include!("support/protocols.rs");

const SEC: u64 = 1_000_000_000;
const NETNS: u32 = 4026532000;

/// What the decision printed, and when.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Printed {
    Summary {
        at: u64,
        level: u32,
        netns: u32,
        refused: Suppressed,
    },
    Line {
        at: u64,
        level: u32,
    },
}

/// The kernel's clock and log, recorded. `print_delays` are how long the
/// summary lines take to come out, in turn (a hook preempted on
/// `PREEMPT_RT`): the clock moves on by that much while one is printed.
struct Recorder {
    now: u64,
    print_delays: Vec<u64>,
    printed: Vec<Printed>,
}

impl Recorder {
    fn new() -> Self {
        Self {
            now: 100 * SEC,
            print_delays: vec![0],
            printed: Vec::new(),
        }
    }

    fn lines(&self) -> usize {
        self.printed
            .iter()
            .filter(|p| matches!(p, Printed::Line { .. }))
            .count()
    }

    fn summaries(&self) -> Vec<(u64, Suppressed)> {
        self.printed
            .iter()
            .filter_map(|p| match *p {
                Printed::Summary { at, refused, .. } => Some((at, refused)),
                Printed::Line { .. } => None,
            })
            .collect()
    }
}

impl Output for Recorder {
    fn now_ns(&self) -> u64 {
        self.now
    }

    fn summary(&mut self, level: u32, netns: u32, refused: Suppressed) {
        let summaries = self.summaries().len();
        self.now += self.print_delays[summaries % self.print_delays.len()];
        self.printed.push(Printed::Summary {
            at: self.now,
            level,
            netns,
            refused,
        });
    }

    fn line(&mut self, level: u32) {
        self.printed.push(Printed::Line {
            at: self.now,
            level,
        });
    }
}

type State = NetState<HostCpus<CpuCounters>>;

fn shared() -> State {
    NetState::new(HostCpus::new(2), false, false)
}

fn set(s: &Settings, p: Param, v: &str) {
    s.set(p, Some(v.as_bytes()), || {})
        .unwrap_or_else(|e| panic!("{v} for {}: {e}", p.name()));
}

/// The namespace's counters, as `/proc/net/nsfilter` shows them.
fn counters(state: &State) -> BTreeMap<String, u64> {
    let mut text = String::new();
    state
        .counters()
        .show(NETNS, &mut text)
        .expect("a String takes any text");
    text.lines()
        .skip(1)
        .map(|l| {
            let (k, v) = l.split_once(' ').expect("name value");
            (k.to_string(), v.parse().expect("a number"))
        })
        .collect()
}

/// One UDP packet (ports 1000 -> 2000) through the decision at the
/// recorder's time.
fn udp(state: &State, s: &Settings, b: &Budget, out: &mut Recorder) {
    let mut p = ipv4_proto(17);
    p[20..24].copy_from_slice(&[0x03, 0xe8, 0x07, 0xd0]);
    let summary = parse(Family::Ipv4, &p[..]);
    state.packet(s, b, &Alone, NETNS, Family::Ipv4, &summary, out);
}

/// Each packet is counted as seen and has exactly one fate: filtered,
/// refused for one of two reasons, or logged.
fn assert_fates_add_up(c: &BTreeMap<String, u64>, sent: u64) {
    assert_eq!(c["packets_ipv4"], sent, "{c:?}");
    assert_eq!(c["udp"], sent, "{c:?}");
    assert_eq!(
        c["filtered"] + c["logged"] + c["suppressed"] + c["suppressed_budget"],
        sent,
        "{c:?}"
    );
}

#[test]
fn what_the_settings_leave_out_is_counted_and_prints_nothing() {
    let b = Budget::new();
    let mut out = Recorder::new();
    // Logging off.
    let s = Settings::new();
    set(&s, Param::Enabled, "0");
    let state = shared();
    udp(&state, &s, &b, &mut out);
    // Another protocol, another port, another namespace.
    for (param, value) in [
        (Param::Protocols, "tcp"),
        (Param::Ports, "22"),
        (Param::Netns, "4026531840"),
    ] {
        let s = Settings::new();
        set(&s, param, value);
        udp(&state, &s, &b, &mut out);
    }
    assert!(out.printed.is_empty(), "{:?}", out.printed);
    let c = counters(&state);
    assert_eq!(c["filtered"], 4, "{c:?}");
    assert_fates_add_up(&c, 4);
    // What they let through is logged: this protocol, port, namespace.
    for (param, value) in [
        (Param::Protocols, "udp"),
        (Param::Ports, "2000"),
        (Param::Netns, &NETNS.to_string()),
    ] {
        let s = Settings::new();
        set(&s, param, value);
        udp(&state, &s, &b, &mut out);
    }
    assert_eq!(out.lines(), 3, "{:?}", out.printed);
    assert_eq!(counters(&state)["logged"], 3);
}

#[test]
fn skip_userns_leaves_out_only_namespaces_of_other_user_namespaces() {
    let (b, mut out) = (Budget::new(), Recorder::new());
    let s = Settings::new();
    set(&s, Param::SkipUserns, "1");
    let container: State = NetState::new(HostCpus::new(1), false, true);
    let host_owned = shared();
    let initial: State = NetState::new(HostCpus::new(1), true, false);
    udp(&container, &s, &b, &mut out);
    assert!(out.printed.is_empty());
    assert_eq!(counters(&container)["filtered"], 1);
    udp(&host_owned, &s, &b, &mut out);
    udp(&initial, &s, &b, &mut out);
    assert_eq!(out.lines(), 2);
    // Off (the default), the container's namespace is logged too.
    set(&s, Param::SkipUserns, "0");
    udp(&container, &s, &b, &mut out);
    assert_eq!(out.lines(), 3);
}

/// A namespace floods: a summary line comes only after refused lines, right
/// before an admitted line, at most once a second, never empty, and the
/// summaries add up to what was refused.
#[test]
fn summaries_follow_refusals_and_precede_a_line() {
    let (b, mut out) = (Budget::new(), Recorder::new());
    let s = Settings::new();
    set(&s, Param::LogRate, "5");
    set(&s, Param::LogBurst, "5");
    set(&s, Param::LogLevel, "3");
    let state = shared();
    let mut sent = 0;
    // The burst, one packet a second apart: nothing refused, no summary.
    for _ in 0..5 {
        udp(&state, &s, &b, &mut out);
        sent += 1;
        out.now += SEC;
    }
    assert_eq!(out.lines(), 5);
    assert!(out.summaries().is_empty(), "{:?}", out.printed);
    // Then a flood: 1,000 packets a second for 10 s.
    for _ in 0..10_000 {
        udp(&state, &s, &b, &mut out);
        sent += 1;
        out.now += SEC / 1000;
    }
    // A rest, and one more line that reports the rest.
    out.now += 5 * SEC;
    udp(&state, &s, &b, &mut out);
    sent += 1;
    let c = counters(&state);
    assert_fates_add_up(&c, sent);
    assert_eq!(c["logged"], out.lines() as u64);
    let summaries = out.summaries();
    assert!(summaries.len() >= 9, "{summaries:?}");
    let reported = summaries
        .iter()
        .fold(Suppressed::default(), |a, (_, r)| Suppressed {
            limit: a.limit + r.limit,
            budget: a.budget + r.budget,
        });
    assert_eq!(reported.limit, c["suppressed"]);
    assert_eq!(reported.budget, c["suppressed_budget"]);
    for pair in summaries.windows(2) {
        assert!(pair[1].0 - pair[0].0 >= SUMMARY_INTERVAL, "{pair:?}");
    }
    for (i, p) in out.printed.iter().enumerate() {
        match *p {
            Printed::Summary {
                level,
                netns,
                refused,
                ..
            } => {
                assert!(refused.total() > 0, "an empty summary line");
                assert_eq!((level, netns), (3, NETNS));
                assert!(
                    matches!(out.printed.get(i + 1), Some(Printed::Line { .. })),
                    "a summary not followed by its line: {:?}",
                    out.printed.get(i + 1)
                );
            }
            Printed::Line { level, .. } => assert_eq!(level, 3),
        }
    }
}

/// A namespace that never has a line refused never prints a summary line.
#[test]
fn no_summary_without_refusals() {
    let (b, mut out) = (Budget::new(), Recorder::new());
    let s = Settings::new();
    let state = shared();
    for _ in 0..2000 {
        udp(&state, &s, &b, &mut out);
        out.now += SEC / 50;
    }
    assert_eq!(out.lines(), 2000);
    assert!(out.summaries().is_empty(), "{:?}", out.summaries());
    assert_fates_add_up(&counters(&state), 2000);
}

/// Every other summary line comes out 300 ms after its decision (the hook
/// preempted on `PREEMPT_RT`): the next is still a second after it in the
/// log.
#[test]
fn summaries_are_spaced_from_their_print() {
    let (b, mut out) = (Budget::new(), Recorder::new());
    out.print_delays = vec![300_000_000, 0];
    let s = Settings::new();
    set(&s, Param::LogRate, "1");
    set(&s, Param::LogBurst, "1");
    let state = shared();
    for _ in 0..1000 {
        udp(&state, &s, &b, &mut out);
        out.now += SEC / 100;
    }
    let summaries = out.summaries();
    assert!(summaries.len() >= 5, "{summaries:?}");
    for pair in summaries.windows(2) {
        assert!(
            pair[1].0 - pair[0].0 >= SUMMARY_INTERVAL,
            "two summary lines {} ns apart",
            pair[1].0 - pair[0].0
        );
    }
}

/// The budget holds the shared namespaces together; the initial namespace
/// keeps only its own limit.
#[test]
fn the_budget_binds_every_namespace_but_the_initial_one() {
    let (b, mut out) = (Budget::new(), Recorder::new());
    let s = Settings::new();
    set(&s, Param::BudgetRate, "40");
    set(&s, Param::BudgetBurst, "40");
    let crowd: Vec<State> = (0..20).map(|_| shared()).collect();
    let initial: State = NetState::new(HostCpus::new(2), true, false);
    // 20 packets a second from each, for 5 s.
    for _ in 0..100 {
        for ns in &crowd {
            udp(ns, &s, &b, &mut out);
        }
        udp(&initial, &s, &b, &mut out);
        out.now += SEC / 20;
    }
    let initial_c = counters(&initial);
    assert_fates_add_up(&initial_c, 100);
    assert_eq!(initial_c["suppressed_budget"], 0, "{initial_c:?}");
    assert_eq!(initial_c["logged"], 100, "within its own limit");
    let mut crowd_records = 0;
    let mut by_budget = 0;
    for ns in &crowd {
        let c = counters(ns);
        assert_fates_add_up(&c, 100);
        assert!(c["logged"] > 0, "every namespace of the crowd logs: {c:?}");
        crowd_records += c["logged"];
        by_budget += c["suppressed_budget"];
    }
    crowd_records += out.summaries().len() as u64;
    // 5 s at 40 a second, and the burst, for the crowd's lines and summaries.
    assert!(crowd_records <= 40 + 40 * 5 + 1, "{crowd_records}");
    assert!(by_budget > 0);
}
