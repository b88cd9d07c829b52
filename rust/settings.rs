// SPDX-License-Identifier: GPL-2.0

//! nsfilter's runtime settings (module parameters), in safe Rust.
//!
//! Values are parsed and validated here; an invalid value is refused with a
//! reason and leaves the old one in place. The packet path reads the settings
//! without a lock: scalars are atomics, and the two lists sit behind a
//! sequence counter so that a reader never mixes an old list with a new one.
//! Writers are serialised by the kernel's module parameter lock.

use crate::logline::Escaped;
use crate::packet::{proto, Summary};
use core::fmt::{self, Display, Formatter, Write};
use core::sync::atomic::{fence, AtomicBool, AtomicU32, Ordering};

/// The most ports the `ports` filter holds.
pub(crate) const MAX_PORTS: usize = 16;
/// The most namespaces the `netns` filter holds.
pub(crate) const MAX_NETNS: usize = 16;
/// The largest `log_rate` and `log_burst`.
pub(crate) const MAX_RATE: u32 = 1_000_000;
/// Default `log_rate`, lines per second per namespace.
pub(crate) const DEFAULT_RATE: u32 = 100;
/// Default `log_burst`, lines per namespace.
pub(crate) const DEFAULT_BURST: u32 = 200;

/// The module parameters, numbered as `helpers.c` declares them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Param {
    /// `enabled`: log at all.
    Enabled,
    /// `log_rate`: lines per second per namespace.
    LogRate,
    /// `log_burst`: lines a namespace may log at once.
    LogBurst,
    /// `protocols`: which protocols to log (empty: all).
    Protocols,
    /// `ports`: log only packets from or to these ports (empty: all).
    Ports,
    /// `netns`: log only these namespaces, by inode (empty: all).
    Netns,
}

impl Param {
    /// The parameter with number `id` (see `helpers.c`).
    pub(crate) fn from_id(id: usize) -> Option<Self> {
        [
            Self::Enabled,
            Self::LogRate,
            Self::LogBurst,
            Self::Protocols,
            Self::Ports,
            Self::Netns,
        ]
        .get(id)
        .copied()
    }

    /// The parameter's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::LogRate => "log_rate",
            Self::LogBurst => "log_burst",
            Self::Protocols => "protocols",
            Self::Ports => "ports",
            Self::Netns => "netns",
        }
    }
}

/// Protocol names accepted by `protocols`, and their bits.
const PROTOCOLS: [(&str, u32); 7] = [
    ("tcp", 1),
    ("udp", 2),
    ("udplite", 4),
    ("sctp", 8),
    ("icmp", 16),
    ("icmpv6", 32),
    ("other", 64),
];

/// The `protocols` bit of a packet; packets whose protocol could not be read
/// count as `other`.
fn protocol_bit(summary: &Summary) -> u32 {
    match summary.protocol() {
        Some(proto::TCP) => 1,
        Some(proto::UDP) => 2,
        Some(proto::UDPLITE) => 4,
        Some(proto::SCTP) => 8,
        Some(proto::ICMP) if summary.is_ipv4() => 16,
        Some(proto::ICMPV6) if !summary.is_ipv4() => 32,
        _ => 64,
    }
}

/// Why a value was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ParamError<'a> {
    /// What is wrong.
    pub(crate) reason: &'static str,
    /// The part of the value that is wrong.
    pub(crate) token: &'a [u8],
}

impl Display for ParamError<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let shown = &self.token[..self.token.len().min(32)];
        let more = if shown.len() < self.token.len() {
            "..."
        } else {
            ""
        };
        write!(f, "{} (got '{}{more}')", self.reason, Escaped(shown))
    }
}

/// A fixed-capacity list of numbers, as the filters hold them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct List<const N: usize> {
    len: usize,
    items: [u32; N],
}

impl<const N: usize> List<N> {
    const fn empty() -> Self {
        Self {
            len: 0,
            items: [0; N],
        }
    }

    /// The numbers in the list.
    pub(crate) fn as_slice(&self) -> &[u32] {
        &self.items[..self.len]
    }
}

/// A list stored as atomics (see the module documentation).
struct AtomicList<const N: usize> {
    len: AtomicU32,
    items: [AtomicU32; N],
}

impl<const N: usize> AtomicList<N> {
    const fn new() -> Self {
        Self {
            len: AtomicU32::new(0),
            items: [const { AtomicU32::new(0) }; N],
        }
    }

    fn load(&self) -> List<N> {
        let mut list = List::empty();
        list.len = (self.len.load(Ordering::Relaxed) as usize).min(N);
        for (out, item) in list.items.iter_mut().zip(&self.items).take(list.len) {
            *out = item.load(Ordering::Relaxed);
        }
        list
    }

    /// Whether the list is empty or holds an item for which `matches` holds,
    /// read in place (the packet path copies nothing).
    fn allows(&self, matches: impl Fn(u32) -> bool) -> bool {
        let len = (self.len.load(Ordering::Relaxed) as usize).min(N);
        len == 0
            || self.items[..len]
                .iter()
                .any(|i| matches(i.load(Ordering::Relaxed)))
    }

    fn store(&self, list: &List<N>) {
        for (item, value) in self.items.iter().zip(list.as_slice()) {
            item.store(*value, Ordering::Relaxed);
        }
        // CAST: `list.len <= N`, a small constant.
        self.len.store(list.len as u32, Ordering::Relaxed);
    }
}

/// The settings; one static instance, [`SETTINGS`].
pub(crate) struct Settings {
    enabled: AtomicBool,
    rate: AtomicU32,
    burst: AtomicU32,
    /// Bits of [`PROTOCOLS`]; zero means every protocol.
    protocols: AtomicU32,
    /// Even when the lists are stable, odd while a writer changes them.
    seq: AtomicU32,
    ports: AtomicList<MAX_PORTS>,
    netns: AtomicList<MAX_NETNS>,
}

/// The settings the module parameters read and write.
pub(crate) static SETTINGS: Settings = Settings::new();

impl Settings {
    /// The defaults: enabled, default rate and burst, no filter.
    pub(crate) const fn new() -> Self {
        Self {
            enabled: AtomicBool::new(true),
            rate: AtomicU32::new(DEFAULT_RATE),
            burst: AtomicU32::new(DEFAULT_BURST),
            protocols: AtomicU32::new(0),
            seq: AtomicU32::new(0),
            ports: AtomicList::new(),
            netns: AtomicList::new(),
        }
    }

    /// Whether logging is on.
    pub(crate) fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Lines per second per namespace.
    pub(crate) fn rate(&self) -> u32 {
        self.rate.load(Ordering::Relaxed)
    }

    /// The most lines a namespace may log at once.
    pub(crate) fn burst(&self) -> u32 {
        self.burst.load(Ordering::Relaxed)
    }

    /// Both lists, never a mix of an old and a new one.
    fn lists(&self) -> (List<MAX_PORTS>, List<MAX_NETNS>) {
        loop {
            let before = self.seq.load(Ordering::Acquire);
            let lists = (self.ports.load(), self.netns.load());
            fence(Ordering::Acquire);
            if before & 1 == 0 && self.seq.load(Ordering::Relaxed) == before {
                return lists;
            }
            core::hint::spin_loop();
        }
    }

    /// Whether the filters let this packet, seen in namespace `netns`, be
    /// logged (`enabled` aside). This runs for every packet: it reads the
    /// lists in place, under the sequence counter, and copies nothing.
    pub(crate) fn wants(&self, netns: u32, summary: &Summary) -> bool {
        let protocols = self.protocols.load(Ordering::Relaxed);
        if protocols != 0 && protocols & protocol_bit(summary) == 0 {
            return false;
        }
        let ports = summary.ports().map(|(s, d)| (u32::from(s), u32::from(d)));
        loop {
            let before = self.seq.load(Ordering::Acquire);
            let wanted = self.netns.allows(|n| n == netns)
                && self
                    .ports
                    .allows(|p| ports.is_some_and(|(s, d)| p == s || p == d));
            fence(Ordering::Acquire);
            if before & 1 == 0 && self.seq.load(Ordering::Relaxed) == before {
                return wanted;
            }
            core::hint::spin_loop();
        }
    }

    /// Sets `param` from the text `value`, or refuses it and keeps the old
    /// value. Callers serialise writes (the kernel's parameter lock does).
    pub(crate) fn set<'a>(&self, param: Param, value: &'a [u8]) -> Result<(), ParamError<'a>> {
        let value = trim(value);
        match param {
            Param::Enabled => self.enabled.store(parse_bool(value)?, Ordering::Relaxed),
            Param::LogRate => self.rate.store(parse_rate(value)?, Ordering::Relaxed),
            Param::LogBurst => self.burst.store(parse_rate(value)?, Ordering::Relaxed),
            Param::Protocols => self
                .protocols
                .store(parse_protocols(value)?, Ordering::Relaxed),
            Param::Ports => {
                let ports = parse_list::<MAX_PORTS>(
                    value,
                    1,
                    65535,
                    "a port is a number from 1 to 65535",
                    "at most 16 ports",
                )?;
                self.write_lists(|s| s.ports.store(&ports));
            }
            Param::Netns => {
                let netns = parse_list::<MAX_NETNS>(
                    value,
                    1,
                    u32::MAX,
                    "a namespace is its inode number, as in 'ls -iL /proc/self/ns/net'",
                    "at most 16 namespaces",
                )?;
                self.write_lists(|s| s.netns.store(&netns));
            }
        }
        Ok(())
    }

    fn write_lists(&self, write: impl FnOnce(&Self)) {
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        write(self);
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// Writes the current value of `param` as `set` accepts it.
    pub(crate) fn show(&self, param: Param, out: &mut dyn Write) -> fmt::Result {
        let list = |out: &mut dyn Write, items: &[u32]| {
            items
                .iter()
                .enumerate()
                .try_for_each(|(i, n)| write!(out, "{}{n}", if i == 0 { "" } else { "," }))
        };
        match param {
            Param::Enabled => out.write_str(if self.enabled() { "Y" } else { "N" }),
            Param::LogRate => write!(out, "{}", self.rate()),
            Param::LogBurst => write!(out, "{}", self.burst()),
            Param::Protocols => {
                let bits = self.protocols.load(Ordering::Relaxed);
                let mut first = true;
                for (name, bit) in PROTOCOLS {
                    if bits & bit != 0 {
                        write!(out, "{}{name}", if first { "" } else { "," })?;
                        first = false;
                    }
                }
                Ok(())
            }
            Param::Ports => list(out, self.lists().0.as_slice()),
            Param::Netns => list(out, self.lists().1.as_slice()),
        }
    }
}

/// Strips surrounding white space (`echo` adds a newline).
fn trim(mut v: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = v {
        if !first.is_ascii_whitespace() {
            break;
        }
        v = rest;
    }
    while let [rest @ .., last] = v {
        if !last.is_ascii_whitespace() {
            break;
        }
        v = rest;
    }
    v
}

fn parse_bool(v: &[u8]) -> Result<bool, ParamError<'_>> {
    match v {
        b"1" | b"y" | b"Y" | b"yes" | b"on" | b"true" => Ok(true),
        b"0" | b"n" | b"N" | b"no" | b"off" | b"false" => Ok(false),
        _ => Err(ParamError {
            reason: "want 1/Y/yes/on or 0/N/no/off",
            token: v,
        }),
    }
}

/// A decimal number from `min` to `max`, digits only.
fn parse_number(v: &[u8], min: u32, max: u32) -> Option<u32> {
    if v.is_empty() || v.len() > 10 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    u32::try_from(n).ok().filter(|n| (min..=max).contains(n))
}

fn parse_rate(v: &[u8]) -> Result<u32, ParamError<'_>> {
    parse_number(v, 1, MAX_RATE).ok_or(ParamError {
        reason: "want a whole number from 1 to 1000000",
        token: v,
    })
}

fn parse_protocols(v: &[u8]) -> Result<u32, ParamError<'_>> {
    let mut bits = 0;
    for token in v.split(|&b| b == b',').map(trim).filter(|t| !t.is_empty()) {
        let bit = PROTOCOLS
            .iter()
            .find(|(name, _)| name.as_bytes().eq_ignore_ascii_case(token))
            .map(|(_, bit)| *bit)
            .ok_or(ParamError {
                reason:
                    "want a comma-separated list of tcp, udp, udplite, sctp, icmp, icmpv6, other",
                token,
            })?;
        bits |= bit;
    }
    Ok(bits)
}

fn parse_list<'a, const N: usize>(
    v: &'a [u8],
    min: u32,
    max: u32,
    bad_item: &'static str,
    too_many: &'static str,
) -> Result<List<N>, ParamError<'a>> {
    let mut list = List::empty();
    for token in v.split(|&b| b == b',').map(trim).filter(|t| !t.is_empty()) {
        let n = parse_number(token, min, max).ok_or(ParamError {
            reason: bad_item,
            token,
        })?;
        if list.as_slice().contains(&n) {
            continue;
        }
        if list.len == N {
            return Err(ParamError {
                reason: too_many,
                token: v,
            });
        }
        list.items[list.len] = n;
        list.len += 1;
    }
    Ok(list)
}
