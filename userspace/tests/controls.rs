//! Host tests of the module's controls: settings (module parameters), the
//! per-namespace rate limit and counters; the files the module is built from.

#![allow(dead_code)]

#[path = "../../rust/counters.rs"]
mod counters;
#[path = "../../rust/logline.rs"]
mod logline;
#[path = "../../rust/packet.rs"]
mod packet;
#[path = "../../rust/ratelimit.rs"]
mod ratelimit;
#[path = "../../rust/settings.rs"]
mod settings;

use counters::Counters;
use packet::{parse, Family, Summary};
use ratelimit::{Admit, RateLimit};
use settings::{Param, Settings};

fn show(s: &Settings, p: Param) -> String {
    let mut out = String::new();
    s.show(p, &mut out)
        .expect("writing to a String cannot fail");
    out
}

const ALL: [Param; 6] = [
    Param::Enabled,
    Param::LogRate,
    Param::LogBurst,
    Param::Protocols,
    Param::Ports,
    Param::Netns,
];

#[test]
fn defaults() {
    let s = Settings::new();
    let shown: Vec<String> = ALL.iter().map(|p| show(&s, *p)).collect();
    assert_eq!(shown, ["Y", "100", "200", "", "", ""]);
    for (i, p) in ALL.iter().enumerate() {
        assert_eq!(Param::from_id(i), Some(*p));
    }
    assert_eq!(Param::from_id(6), None);
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
    ] {
        s.set(p, input).unwrap();
        assert_eq!(show(&s, p), shown, "{p:?} {input:?}");
        // What is shown can be written back unchanged.
        s.set(p, shown.as_bytes()).unwrap();
        assert_eq!(show(&s, p), shown);
    }
}

#[test]
fn invalid_values_are_refused_and_change_nothing() {
    let s = Settings::new();
    s.set(Param::Ports, b"22").unwrap();
    s.set(Param::Protocols, b"tcp").unwrap();
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
    ] {
        let before: Vec<String> = ALL.iter().map(|p| show(&s, *p)).collect();
        let err = s.set(p, input).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(reason), "{p:?} {input:?}: {msg}");
        assert!(msg.len() < 160, "message too long: {msg}");
        let after: Vec<String> = ALL.iter().map(|p| show(&s, *p)).collect();
        assert_eq!(before, after, "{p:?} {input:?} changed the settings");
    }
    // The offending text is shown escaped and cut.
    let err = s.set(Param::Ports, b"\x1b[2J").unwrap_err().to_string();
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
    assert!(s.wants(1, &dns) && s.wants(1, &truncated));

    s.set(Param::Ports, b"53").unwrap();
    assert!(s.wants(1, &dns));
    assert!(!s.wants(1, &other));
    assert!(!s.wants(1, &icmp), "no ports: not matched by a port filter");
    assert!(
        s.wants(1, &summary(&udp4(53, 9))),
        "source port matches too"
    );
    s.set(Param::Ports, b"").unwrap();

    s.set(Param::Protocols, b"icmp").unwrap();
    assert!(s.wants(1, &icmp) && !s.wants(1, &dns) && !s.wants(1, &truncated));
    s.set(Param::Protocols, b"other").unwrap();
    assert!(
        s.wants(1, &truncated),
        "unreadable protocol counts as other"
    );
    s.set(Param::Protocols, b"").unwrap();

    s.set(Param::Netns, b"7,9").unwrap();
    assert!(s.wants(7, &dns) && s.wants(9, &dns) && !s.wants(8, &dns));
}

#[test]
fn bucket_allows_a_burst_then_the_rate() {
    let limit = RateLimit::new();
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
    let limit = RateLimit::new();
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
    // Every refused line is reported, except those since the last admitted one.
    assert!(reported <= refused && refused - reported < 100_000);
    assert!(admitted > u64::from(burst), "the rate refills the bucket");
}

#[test]
fn bucket_is_exact_under_concurrent_callers() {
    let limit = std::sync::Arc::new(RateLimit::new());
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
fn counters_count_by_family_protocol_and_outcome() {
    let c = Counters::new();
    c.seen(Family::Ipv4, &summary(&udp4(1, 2)));
    c.seen(Family::Ipv4, &summary(&[0x45; 10]));
    c.seen(Family::Ipv6, &parse(Family::Ipv6, &[0x60u8; 10][..]));
    c.logged();
    c.suppressed();
    c.filtered();
    let mut out = String::new();
    c.show(4026531840, &mut out).unwrap();
    assert_eq!(
        out,
        "netns 4026531840\npackets_ipv4 2\npackets_ipv6 1\ntcp 0\nudp 1\nudplite 0\nsctp 0\n\
         icmp 0\nicmpv6 0\nother 2\nmalformed 2\nfiltered 1\nlogged 1\nsuppressed 1\n"
    );
}
