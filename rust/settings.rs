// SPDX-License-Identifier: GPL-2.0

//! nsfilter's runtime settings (module parameters), in safe Rust.
//!
//! Values are parsed and validated here; an invalid value is refused with a
//! reason and leaves the old one in place. Writers are serialised by the
//! kernel's module parameter lock.
//!
//! The packet path reads the settings without a lock and never waits for a
//! writer. The scalars are atomics. The two lists are published the way RCU
//! publishes a pointer, without allocating: there are two copies, readers
//! read the one `current` names, and a writer fills the other copy, switches
//! `current` to it, then waits for a grace period (the `wait_for_readers` it
//! is given: `synchronize_rcu()` in the kernel). Every reader runs inside an
//! RCU read-side critical section (the hook does, inside `nf_hook()`), so once
//! the grace period has passed none can still be reading the old copy, and
//! the next writer may overwrite it. A reader therefore sees one whole
//! version of the lists, never a mix, and never spins. A reader proves that
//! it runs inside RCU by the [`ReadSide`] value it passes to
//! [`Settings::wants`]. The lists are atomics all the same, so even a
//! reader outside RCU could see a stale or mixed version but never cause
//! undefined behaviour.

use crate::budget::Limits;
use crate::logline::Escaped;
use crate::packet::{proto, Summary};
use crate::rcu::ReadSide;
use core::fmt::{self, Display, Formatter, Write};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

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
/// Default `budget_rate`: lines per second of all namespaces but the
/// initial one together. With the initial namespace's own 100, nsfilter
/// then writes at most about 300 records (some 70 KB) a second: the 128 KiB
/// ring buffer of a default kernel (`CONFIG_LOG_BUF_SHIFT=17`, Debian's
/// too) still holds the last 1.5 seconds of messages under the worst flood
/// nsfilter lets through, which journald or syslog read continuously, and
/// an unprivileged user's namespaces together log at most twice what one
/// namespace may (see `budget.rs`).
pub(crate) const DEFAULT_BUDGET_RATE: u32 = 200;
/// Default `budget_burst`: two seconds of the budget.
pub(crate) const DEFAULT_BUDGET_BURST: u32 = 400;

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
    /// `log_level`: the kernel log level of the lines.
    LogLevel,
    /// `budget_rate`: lines per second of all namespaces but the initial one.
    BudgetRate,
    /// `budget_burst`: lines they may log at once, together.
    BudgetBurst,
    /// `skip_userns`: do not log namespaces owned by a user namespace other
    /// than the initial one (unprivileged containers).
    SkipUserns,
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
            Self::LogLevel,
            Self::BudgetRate,
            Self::BudgetBurst,
            Self::SkipUserns,
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
            Self::LogLevel => "log_level",
            Self::BudgetRate => "budget_rate",
            Self::BudgetBurst => "budget_burst",
            Self::SkipUserns => "skip_userns",
        }
    }
}

/// Default `log_level`: `KERN_WARNING`, as the kernel's `LOG` target.
pub(crate) const DEFAULT_LOG_LEVEL: u32 = 4;

/// The names of the kernel log levels, 0 to 7, as `log_level` takes them.
const LEVELS: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

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

/// One version of the two filter lists.
struct Lists {
    ports: AtomicList<MAX_PORTS>,
    netns: AtomicList<MAX_NETNS>,
}

impl Lists {
    const fn new() -> Self {
        Self {
            ports: AtomicList::new(),
            netns: AtomicList::new(),
        }
    }
}

/// The settings; one static instance, [`SETTINGS`].
pub(crate) struct Settings {
    enabled: AtomicBool,
    rate: AtomicU32,
    burst: AtomicU32,
    /// Bits of [`PROTOCOLS`]; zero means every protocol.
    protocols: AtomicU32,
    /// Two versions of the lists; readers read `lists[current]`.
    lists: [Lists; 2],
    /// Which of `lists` is published: 0 or 1.
    current: AtomicUsize,
    /// The kernel log level of the lines, 0-7.
    log_level: AtomicU32,
    budget_rate: AtomicU32,
    budget_burst: AtomicU32,
    skip_userns: AtomicBool,
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
            lists: [Lists::new(), Lists::new()],
            current: AtomicUsize::new(0),
            log_level: AtomicU32::new(DEFAULT_LOG_LEVEL),
            budget_rate: AtomicU32::new(DEFAULT_BUDGET_RATE),
            budget_burst: AtomicU32::new(DEFAULT_BUDGET_BURST),
            skip_userns: AtomicBool::new(false),
        }
    }

    /// The limits of the rate limit and the budget (see `budget.rs`).
    pub(crate) fn limits(&self) -> Limits {
        Limits {
            rate: self.rate(),
            burst: self.burst(),
            budget_rate: self.budget_rate.load(Ordering::Relaxed),
            budget_burst: self.budget_burst.load(Ordering::Relaxed),
        }
    }

    /// Whether namespaces owned by a user namespace other than the initial
    /// one are left out.
    pub(crate) fn skip_userns(&self) -> bool {
        self.skip_userns.load(Ordering::Relaxed)
    }

    /// The kernel log level of the lines: 0 (`KERN_EMERG`) to 7 (`KERN_DEBUG`).
    pub(crate) fn log_level(&self) -> u32 {
        self.log_level.load(Ordering::Relaxed)
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

    /// The published version of the lists. The caller is a reader in the
    /// sense of the module documentation (inside RCU), or a writer.
    fn published(&self) -> &Lists {
        // Acquire pairs with the writer's Release: the items of the version
        // named are visible before the name is.
        &self.lists[self.current.load(Ordering::Acquire) & 1]
    }

    /// Whether the filters let this packet, seen in namespace `netns`, be
    /// logged (`enabled` aside). This runs for every packet, inside RCU (the
    /// caller's `_rcu` proves it): it reads the published lists in place,
    /// copies nothing and never waits.
    pub(crate) fn wants(&self, _rcu: &impl ReadSide, netns: u32, summary: &Summary) -> bool {
        let protocols = self.protocols.load(Ordering::Relaxed);
        if protocols != 0 && protocols & protocol_bit(summary) == 0 {
            return false;
        }
        let lists = self.published();
        let ports = summary.ports().map(|(s, d)| (u32::from(s), u32::from(d)));
        lists.netns.allows(|n| n == netns)
            && lists
                .ports
                .allows(|p| ports.is_some_and(|(s, d)| p == s || p == d))
    }

    /// Sets `param` from the text `value`, or refuses it and keeps the old
    /// value. `None` is a parameter given bare (`insmod nsfilter.ko enabled`):
    /// it turns a flag on and is refused for the others. Callers serialise
    /// writes (the kernel's parameter lock does). A list is published, then
    /// `wait_for_readers` waits until no reader can still see the old one:
    /// when `set` returns, the next packet on any CPU sees the new value.
    pub(crate) fn set<'a>(
        &self,
        param: Param,
        value: Option<&'a [u8]>,
        wait_for_readers: impl FnOnce(),
    ) -> Result<(), ParamError<'a>> {
        let Some(value) = value else {
            return match param {
                Param::Enabled => {
                    self.enabled.store(true, Ordering::Relaxed);
                    Ok(())
                }
                Param::SkipUserns => {
                    self.skip_userns.store(true, Ordering::Relaxed);
                    Ok(())
                }
                _ => Err(ParamError {
                    reason: "this parameter needs a value (NAME=VALUE)",
                    token: b"",
                }),
            };
        };
        let value = trim(value);
        match param {
            Param::Enabled => self.enabled.store(parse_bool(value)?, Ordering::Relaxed),
            Param::LogRate => self.rate.store(parse_rate(value)?, Ordering::Relaxed),
            Param::LogBurst => self.burst.store(parse_rate(value)?, Ordering::Relaxed),
            Param::Protocols => self
                .protocols
                .store(parse_protocols(value)?, Ordering::Relaxed),
            Param::LogLevel => self.log_level.store(parse_level(value)?, Ordering::Relaxed),
            Param::BudgetRate => self
                .budget_rate
                .store(parse_rate(value)?, Ordering::Relaxed),
            Param::BudgetBurst => self
                .budget_burst
                .store(parse_rate(value)?, Ordering::Relaxed),
            Param::SkipUserns => self
                .skip_userns
                .store(parse_bool(value)?, Ordering::Relaxed),
            Param::Ports => {
                let ports = parse_list::<MAX_PORTS>(
                    value,
                    1,
                    65535,
                    "a port is a number from 1 to 65535",
                    "at most 16 ports",
                )?;
                self.publish(|next| next.ports.store(&ports), wait_for_readers);
            }
            Param::Netns => {
                let netns = parse_list::<MAX_NETNS>(
                    value,
                    1,
                    u32::MAX,
                    "a namespace is its inode number, as in 'ls -iL /proc/self/ns/net'",
                    "at most 16 namespaces",
                )?;
                self.publish(|next| next.netns.store(&netns), wait_for_readers);
            }
        }
        Ok(())
    }

    /// Publishes a new version of the lists: the published one with `change`
    /// applied, written into the unpublished copy (which no reader sees: the
    /// previous writer waited for them), then named, then a grace period.
    fn publish(&self, change: impl FnOnce(&Lists), wait_for_readers: impl FnOnce()) {
        let now = self.current.load(Ordering::Relaxed) & 1;
        let (old, next) = (&self.lists[now], &self.lists[now ^ 1]);
        next.ports.store(&old.ports.load());
        next.netns.store(&old.netns.load());
        change(next);
        self.current.store(now ^ 1, Ordering::Release);
        wait_for_readers();
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
            Param::BudgetRate => write!(out, "{}", self.budget_rate.load(Ordering::Relaxed)),
            Param::BudgetBurst => write!(out, "{}", self.budget_burst.load(Ordering::Relaxed)),
            Param::SkipUserns => out.write_str(if self.skip_userns() { "Y" } else { "N" }),
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
            Param::Ports => list(out, self.published().ports.load().as_slice()),
            Param::Netns => list(out, self.published().netns.load().as_slice()),
            Param::LogLevel => {
                let level = self.log_level() as usize;
                out.write_str(LEVELS.get(level).copied().unwrap_or("debug"))
            }
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

/// A log level: its number, 0-7, or its name (`warn` for `warning`).
fn parse_level(v: &[u8]) -> Result<u32, ParamError<'_>> {
    let named = LEVELS
        .iter()
        .position(|name| name.as_bytes().eq_ignore_ascii_case(v))
        .or_else(|| v.eq_ignore_ascii_case(b"warn").then_some(4));
    named
        // CAST: A position in `LEVELS`, below 8.
        .map(|n| n as u32)
        .or_else(|| parse_number(v, 0, 7))
        .ok_or(ParamError {
            reason: "want a level 0-7 or emerg, alert, crit, err, warning, notice, info, debug",
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
