// SPDX-License-Identifier: GPL-2.0

//! What each namespace counts, shown in `/proc/net/nsfilter`; safe Rust.
//!
//! Counters are atomics in the namespace's own state: exact, updated without
//! a lock, and never shared between namespaces.

use crate::packet::{proto, Family, Summary};
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU64, Ordering};

/// One namespace's counters.
pub(crate) struct Counters {
    ipv4: AtomicU64,
    ipv6: AtomicU64,
    tcp: AtomicU64,
    udp: AtomicU64,
    udplite: AtomicU64,
    sctp: AtomicU64,
    icmp: AtomicU64,
    icmpv6: AtomicU64,
    other: AtomicU64,
    malformed: AtomicU64,
    filtered: AtomicU64,
    logged: AtomicU64,
    suppressed: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    /// All zero.
    pub(crate) const fn new() -> Self {
        Self {
            ipv4: AtomicU64::new(0),
            ipv6: AtomicU64::new(0),
            tcp: AtomicU64::new(0),
            udp: AtomicU64::new(0),
            udplite: AtomicU64::new(0),
            sctp: AtomicU64::new(0),
            icmp: AtomicU64::new(0),
            icmpv6: AtomicU64::new(0),
            other: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            filtered: AtomicU64::new(0),
            logged: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Counts a packet of `family` that parsed to `summary`.
    pub(crate) fn seen(&self, family: Family, summary: &Summary) {
        bump(match family {
            Family::Ipv4 => &self.ipv4,
            Family::Ipv6 => &self.ipv6,
        });
        bump(match (summary.protocol(), family) {
            (Some(proto::TCP), _) => &self.tcp,
            (Some(proto::UDP), _) => &self.udp,
            (Some(proto::UDPLITE), _) => &self.udplite,
            (Some(proto::SCTP), _) => &self.sctp,
            (Some(proto::ICMP), Family::Ipv4) => &self.icmp,
            (Some(proto::ICMPV6), Family::Ipv6) => &self.icmpv6,
            _ => &self.other,
        });
        if summary.is_malformed() {
            bump(&self.malformed);
        }
    }

    /// Counts a packet the settings did not let be logged.
    pub(crate) fn filtered(&self) {
        bump(&self.filtered);
    }

    /// Counts a logged line.
    pub(crate) fn logged(&self) {
        bump(&self.logged);
    }

    /// Counts a line the rate limit suppressed.
    pub(crate) fn suppressed(&self) {
        bump(&self.suppressed);
    }

    /// Writes the counters of namespace `netns`, one `name value` per line.
    pub(crate) fn show(&self, netns: u32, out: &mut dyn Write) -> fmt::Result {
        writeln!(out, "netns {netns}")?;
        for (name, counter) in [
            ("packets_ipv4", &self.ipv4),
            ("packets_ipv6", &self.ipv6),
            ("tcp", &self.tcp),
            ("udp", &self.udp),
            ("udplite", &self.udplite),
            ("sctp", &self.sctp),
            ("icmp", &self.icmp),
            ("icmpv6", &self.icmpv6),
            ("other", &self.other),
            ("malformed", &self.malformed),
            ("filtered", &self.filtered),
            ("logged", &self.logged),
            ("suppressed", &self.suppressed),
        ] {
            writeln!(out, "{name} {}", counter.load(Ordering::Relaxed))?;
        }
        Ok(())
    }
}
