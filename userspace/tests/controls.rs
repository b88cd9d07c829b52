//! Host tests of the module's controls: settings (module parameters), the
//! per-namespace rate limit and counters; the files the module is built from.

#![allow(dead_code)]

#[path = "../../rust/budget.rs"]
mod budget;
#[path = "../../rust/counters.rs"]
mod counters;
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

use budget::{Budget, Limits, NetLimit, Reason, Scope, Verdict};
use counters::{Counters, CpuCounters};
use host_cpus::{set_cpu, HostCpus};
use host_rcu::Alone;
use packet::{parse, Family, Summary};
use settings::{Param, Settings};

/// Sets a parameter as the kernel does with `NAME=VALUE`, with no readers
/// to wait for.
fn set<'a>(s: &Settings, p: Param, v: &'a [u8]) -> Result<(), settings::ParamError<'a>> {
    s.set(p, Some(v), || {})
}

fn show(s: &Settings, p: Param) -> String {
    let mut out = String::new();
    s.show(p, &mut out)
        .expect("writing to a String cannot fail");
    out
}

const ALL: [Param; 10] = [
    Param::Enabled,
    Param::LogRate,
    Param::LogBurst,
    Param::Protocols,
    Param::Ports,
    Param::Netns,
    Param::LogLevel,
    Param::BudgetRate,
    Param::BudgetBurst,
    Param::SkipUserns,
];

#[test]
fn defaults() {
    let s = Settings::new();
    let shown: Vec<String> = ALL.iter().map(|p| show(&s, *p)).collect();
    assert_eq!(
        shown,
        ["Y", "100", "200", "", "", "", "warning", "200", "400", "N"]
    );
    for (i, p) in ALL.iter().enumerate() {
        assert_eq!(Param::from_id(i), Some(*p));
    }
    assert_eq!(Param::from_id(10), None);
}

#[test]
fn log_level_takes_numbers_and_names() {
    let s = Settings::new();
    assert_eq!(s.log_level(), 4);
    for (input, level, shown) in [
        (&b"6\n"[..], 6, "info"),
        (b"0", 0, "emerg"),
        (b"DEBUG", 7, "debug"),
        (b"warn", 4, "warning"),
        (b"notice", 5, "notice"),
    ] {
        set(&s, Param::LogLevel, input).unwrap();
        assert_eq!(
            (s.log_level(), show(&s, Param::LogLevel).as_str()),
            (level, shown)
        );
    }
    for bad in [&b"8"[..], b"-1", b"loud", b""] {
        assert!(set(&s, Param::LogLevel, bad).is_err(), "{bad:?}");
        assert_eq!(s.log_level(), 5);
    }
}

#[test]
fn valid_values_are_taken_and_read_back() {
    let s = Settings::new();
    for (p, input, shown) in [
        (Param::Enabled, &b"0\n"[..], "N"),
        (Param::Enabled, b"yes", "Y"),
        (Param::LogRate, b"1\n", "1"),
        (Param::LogBurst, b" 1000000 ", "1000000"),
        (Param::Protocols, b"UDP,tcp,tcp", "tcp,udp"),
        (Param::Protocols, b"icmpv6,other", "icmpv6,other"),
        (Param::Protocols, b"", ""),
        (Param::Ports, b"53,80, 53 ,8080\n", "53,80,8080"),
        (Param::Netns, b"4026531840", "4026531840"),
        (Param::Netns, b"", ""),
        (Param::BudgetRate, b"5000\n", "5000"),
        (Param::BudgetBurst, b"1", "1"),
        (Param::SkipUserns, b"on", "Y"),
        (Param::SkipUserns, b"0", "N"),
    ] {
        set(&s, p, input).unwrap();
        assert_eq!(show(&s, p), shown, "{p:?} {input:?}");
        // What is shown can be written back unchanged.
        set(&s, p, shown.as_bytes()).unwrap();
        assert_eq!(show(&s, p), shown);
    }
}

#[test]
fn a_bare_flag_turns_it_on_and_a_bare_value_is_refused() {
    let s = Settings::new();
    set(&s, Param::Enabled, b"0").unwrap();
    // `insmod nsfilter.ko enabled`: the kernel passes no value at all.
    s.set(Param::Enabled, None, || {}).unwrap();
    assert_eq!(show(&s, Param::Enabled), "Y");
    // `skip_userns` is a flag too.
    s.set(Param::SkipUserns, None, || {}).unwrap();
    assert_eq!(show(&s, Param::SkipUserns), "Y");
    for p in ALL[1..].iter().filter(|p| **p != Param::SkipUserns) {
        let before = show(&s, *p);
        let err = s.set(*p, None, || {}).unwrap_err().to_string();
        assert!(err.contains("needs a value"), "{p:?}: {err}");
        assert_eq!(show(&s, *p), before);
    }
}

#[test]
fn a_list_write_waits_for_readers_after_publishing() {
    let s = Settings::new();
    let dns = summary(&udp4(40000, 53));
    let mut waited = false;
    s.set(Param::Ports, Some(b"53"), || {
        // By the grace period the new list is what readers see.
        assert!(s.wants(&Alone, 1, &dns));
        assert!(!s.wants(&Alone, 1, &summary(&udp4(40000, 80))));
        waited = true;
    })
    .unwrap();
    assert!(waited, "a list write must wait for a grace period");
    // Scalars need none.
    s.set(Param::LogRate, Some(b"5"), || {
        panic!("no grace period for a scalar")
    })
    .unwrap();
}

/// Readers under a stand-in for RCU (a read lock held while reading; the
/// grace period takes the write lock, so it waits for every reader inside)
/// see one whole version of a list, never a mix, while a writer flips it;
/// no reader ever waits for a writer.
///
/// Version A of `ports` is 1..=16, version B 17..=32. A packet from port 1
/// to port 32 matches either version, but not a list torn between them (B's
/// first items written over A's, or A's last items still in place): so
/// `wants` must never say no. Writing into the published copy, or reusing a
/// copy before the grace period, makes it say no.
#[test]
fn readers_see_whole_versions_of_a_list() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, RwLock};
    let s = Arc::new(Settings::new());
    let rcu = Arc::new(RwLock::new(()));
    let stop = Arc::new(AtomicBool::new(false));
    let versions = [
        (1..=16)
            .map(|n: u32| n.to_string())
            .collect::<Vec<_>>()
            .join(","),
        (17..=32)
            .map(|n: u32| n.to_string())
            .collect::<Vec<_>>()
            .join(","),
    ];
    set(&s, Param::Ports, versions[0].as_bytes()).unwrap();
    let probe = summary(&udp4(1, 32));
    let reads = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (s, rcu, stop, reads) = (s.clone(), rcu.clone(), stop.clone(), reads.clone());
            std::thread::spawn(move || {
                let mut torn = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let inside = host_rcu::Locked(rcu.read().unwrap());
                    if !s.wants(&inside, 7, &probe) {
                        torn += 1;
                    }
                    drop(inside);
                    reads.fetch_add(1, Ordering::Relaxed);
                }
                torn
            })
        })
        .collect();
    // At least 20,000 writes, and on until the readers have read 1,000
    // times (a loaded machine may not run them for a while), within a bound.
    let bound = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut i = 0usize;
    while i < 20_000 || (reads.load(Ordering::Relaxed) <= 1000 && std::time::Instant::now() < bound)
    {
        s.set(Param::Ports, Some(versions[(i + 1) % 2].as_bytes()), || {
            drop(rcu.write())
        })
        .unwrap();
        i += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let torn: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert_eq!(torn, 0, "readers saw a list torn between two versions");
    assert!(
        reads.load(Ordering::Relaxed) > 1000,
        "the readers hardly ran"
    );
}

#[test]
fn invalid_values_are_refused_and_change_nothing() {
    let s = Settings::new();
    set(&s, Param::Ports, b"22").unwrap();
    set(&s, Param::Protocols, b"tcp").unwrap();
    let many: Vec<u8> = (1..=17)
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(",")
        .into_bytes();
    let long = vec![b'9'; 5000];
    for (p, input, reason) in [
        (Param::Enabled, &b"maybe"[..], "want 1/Y"),
        (Param::Enabled, b"", "want 1/Y"),
        (Param::LogRate, b"0", "from 1 to 1000000"),
        (Param::LogRate, b"1000001", "from 1 to 1000000"),
        (Param::LogRate, b"-5", "from 1 to 1000000"),
        (Param::LogRate, b"12abc", "from 1 to 1000000"),
        (
            Param::LogBurst,
            b"99999999999999999999",
            "from 1 to 1000000",
        ),
        (Param::LogBurst, &long, "from 1 to 1000000"),
        (Param::Protocols, b"tcp,gre", "comma-separated list"),
        (Param::Ports, b"0", "port is a number"),
        (Param::Ports, b"65536", "port is a number"),
        (Param::Ports, b"80,http", "port is a number"),
        (Param::Ports, &many, "at most 16"),
        (Param::Netns, b"-1", "inode number"),
        (Param::Netns, b"4294967296", "inode number"),
        (Param::BudgetRate, b"0", "from 1 to 1000000"),
        (Param::BudgetBurst, b"1000001", "from 1 to 1000000"),
        (Param::SkipUserns, b"2", "want 1/Y"),
    ] {
        let before: Vec<String> = ALL.iter().map(|p| show(&s, *p)).collect();
        let err = set(&s, p, input).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(reason), "{p:?} {input:?}: {msg}");
        assert!(msg.len() < 160, "message too long: {msg}");
        let after: Vec<String> = ALL.iter().map(|p| show(&s, *p)).collect();
        assert_eq!(before, after, "{p:?} {input:?} changed the settings");
    }
    // The offending text is shown escaped and cut.
    let err = set(&s, Param::Ports, b"\x1b[2J").unwrap_err().to_string();
    assert!(err.contains("'\\x1b[2J'"), "{err}");
}

fn udp4(src: u16, dst: u16) -> Vec<u8> {
    let mut p = vec![0u8; 28];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&28u16.to_be_bytes());
    p[9] = 17;
    p[20..22].copy_from_slice(&src.to_be_bytes());
    p[22..24].copy_from_slice(&dst.to_be_bytes());
    p
}

fn summary(p: &[u8]) -> Summary {
    parse(Family::Ipv4, p)
}

#[test]
fn filters_select_packets() {
    let s = Settings::new();
    let dns = summary(&udp4(40000, 53));
    let other = summary(&udp4(40000, 5353));
    let mut icmp = udp4(0, 0);
    icmp[9] = 1;
    let icmp = summary(&icmp);
    let truncated = summary(&[0x45; 10]);
    assert!(s.wants(&Alone, 1, &dns) && s.wants(&Alone, 1, &truncated));

    set(&s, Param::Ports, b"53").unwrap();
    assert!(s.wants(&Alone, 1, &dns));
    assert!(!s.wants(&Alone, 1, &other));
    assert!(
        !s.wants(&Alone, 1, &icmp),
        "no ports: not matched by a port filter"
    );
    assert!(
        s.wants(&Alone, 1, &summary(&udp4(53, 9))),
        "source port matches too"
    );
    set(&s, Param::Ports, b"").unwrap();

    set(&s, Param::Protocols, b"icmp").unwrap();
    assert!(
        s.wants(&Alone, 1, &icmp) && !s.wants(&Alone, 1, &dns) && !s.wants(&Alone, 1, &truncated)
    );
    set(&s, Param::Protocols, b"other").unwrap();
    assert!(
        s.wants(&Alone, 1, &truncated),
        "unreadable protocol counts as other"
    );
    set(&s, Param::Protocols, b"").unwrap();

    set(&s, Param::Netns, b"7,9").unwrap();
    assert!(s.wants(&Alone, 7, &dns) && s.wants(&Alone, 9, &dns) && !s.wants(&Alone, 8, &dns));
}

#[test]
fn counters_count_by_family_protocol_and_outcome() {
    let c = Counters::new(HostCpus::<CpuCounters>::new(1));
    let c1 = c.local();
    c1.seen(Family::Ipv4, &summary(&udp4(1, 2)));
    c1.seen(Family::Ipv4, &summary(&[0x45; 10]));
    c1.seen(Family::Ipv6, &parse(Family::Ipv6, &[0x60u8; 10][..]));
    c1.logged();
    c1.suppressed(Reason::Limit);
    c1.suppressed(Reason::Budget);
    c1.suppressed(Reason::Budget);
    c1.filtered();
    let mut out = String::new();
    c.show(4026531840, &mut out).unwrap();
    assert_eq!(
        out,
        "netns 4026531840\npackets_ipv4 2\npackets_ipv6 1\ntcp 0\nudp 1\nudplite 0\nsctp 0\n\
         icmp 0\nicmpv6 0\nother 2\nmalformed 2\nfiltered 1\nlogged 1\nsuppressed 1\n\
         suppressed_budget 2\n"
    );
}

include!("support/protocols.rs");

/// Every protocol lands in its own counter, and ICMP only counts as such in
/// its own family (ICMPv6 over IPv4, or ICMP over IPv6, is "other").
#[test]
fn counters_count_every_protocol_in_its_own_counter() {
    let cases: [(Family, Vec<u8>, &str); 10] = [
        (Family::Ipv4, ipv4_proto(6), "tcp"),
        (Family::Ipv4, ipv4_proto(17), "udp"),
        (Family::Ipv4, ipv4_proto(136), "udplite"),
        (Family::Ipv4, ipv4_proto(132), "sctp"),
        (Family::Ipv4, ipv4_proto(1), "icmp"),
        (Family::Ipv6, ipv6_proto(58), "icmpv6"),
        (Family::Ipv6, ipv6_proto(6), "tcp"),
        (Family::Ipv4, ipv4_proto(58), "other"),
        (Family::Ipv6, ipv6_proto(1), "other"),
        (Family::Ipv4, ipv4_proto(47), "other"),
    ];
    for (family, bytes, want) in cases {
        let c = Counters::new(HostCpus::<CpuCounters>::new(1));
        c.local().seen(family, &parse(family, &bytes[..]));
        let mut out = String::new();
        c.show(7, &mut out).unwrap();
        let ones: Vec<&str> = out
            .lines()
            .filter(|l| l.ends_with(" 1"))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        let fam = if family == Family::Ipv4 {
            "packets_ipv4"
        } else {
            "packets_ipv6"
        };
        assert_eq!(ones, [fam, want], "{family:?} protocol {bytes:?}");
    }
}

/// The `protocols` filter sorts every protocol into its own bit, ICMP only
/// in its own family.
#[test]
fn protocols_filter_names_every_protocol() {
    let cases: [(Family, Vec<u8>, &str); 9] = [
        (Family::Ipv4, ipv4_proto(6), "tcp"),
        (Family::Ipv4, ipv4_proto(17), "udp"),
        (Family::Ipv4, ipv4_proto(136), "udplite"),
        (Family::Ipv4, ipv4_proto(132), "sctp"),
        (Family::Ipv4, ipv4_proto(1), "icmp"),
        (Family::Ipv6, ipv6_proto(58), "icmpv6"),
        (Family::Ipv4, ipv4_proto(58), "other"),
        (Family::Ipv6, ipv6_proto(1), "other"),
        (Family::Ipv4, ipv4_proto(47), "other"),
    ];
    let names = ["tcp", "udp", "udplite", "sctp", "icmp", "icmpv6", "other"];
    for (family, bytes, want) in &cases {
        let summary = parse(*family, &bytes[..]);
        for name in names {
            let s = Settings::new();
            set(&s, Param::Protocols, name.as_bytes()).unwrap();
            assert_eq!(
                s.wants(&Alone, 1, &summary),
                name == *want,
                "protocols={name}, a {want} packet ({family:?})"
            );
        }
    }
}

/// Each parameter's name, as refusals and modinfo say it.
#[test]
fn parameters_have_their_names() {
    let names: Vec<&str> = ALL.iter().map(|p| p.name()).collect();
    let want = [
        "enabled",
        "log_rate",
        "log_burst",
        "protocols",
        "ports",
        "netns",
        "log_level",
        "budget_rate",
        "budget_burst",
        "skip_userns",
    ];
    assert_eq!(names, want);
}

/// A refused value is shown in full up to 32 bytes, then cut with "...".
#[test]
fn refused_values_are_cut_after_32_bytes() {
    let s = Settings::new();
    let short = "x".repeat(32);
    let err = set(&s, Param::Protocols, short.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(err.ends_with(&format!("(got '{short}')")), "{err}");
    let long = "y".repeat(33);
    let err = set(&s, Param::Protocols, long.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with(&format!("(got '{}...')", &long[..32])),
        "{err}"
    );
}
/// Each CPU counts in its own slot; `/proc/net/nsfilter` shows the sums, and
/// the rate limit's report of suppressed lines counts those of every CPU,
/// each once, whichever CPU logs the next line.
#[test]
fn counters_are_per_cpu_and_summed() {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    let c = Counters::new(HostCpus::<CpuCounters>::new(4));
    let (limit, budget) = (NetLimit::new(), Budget::new());
    let reported = AtomicU64::new(0);
    let now = 1_000_000_000u64;
    let limits = Limits {
        rate: 1,
        burst: 10,
        budget_rate: 1000,
        budget_burst: 1000,
    };
    let admit =
        |now| match limit.admit(&budget, Scope::Shared, now, limits, || c.suppressed_total()) {
            Verdict::Refused(reason) => {
                assert_eq!(reason, Reason::Limit, "a budget of 1000 is never short");
                c.local().suppressed(reason)
            }
            Verdict::Log(summary) => {
                let summary = summary.unwrap_or_default();
                assert_eq!(summary.budget, 0);
                reported.fetch_add(summary.limit, Relaxed);
                c.local().logged();
            }
        };
    std::thread::scope(|s| {
        for cpu in 0..4 {
            let (c, admit) = (&c, &admit);
            s.spawn(move || {
                set_cpu(cpu);
                for _ in 0..1000 {
                    c.local().seen(Family::Ipv4, &summary(&udp4(1, 2)));
                    admit(now);
                }
            });
        }
    });
    set_cpu(3);
    admit(now + 60_000_000_000);
    assert_eq!(reported.load(Relaxed), 3990, "every refusal reported once");
    let mut out = String::new();
    c.show(7, &mut out).unwrap();
    assert!(out.contains("\npackets_ipv4 4000\n"), "{out}");
    assert!(out.contains("\nudp 4000\n"), "{out}");
    assert!(
        out.contains("\nlogged 11\nsuppressed 3990\nsuppressed_budget 0\n"),
        "{out}"
    );
}
