//! What a VM test or lab runs with: `Ctx`, the kernel log since it began,
//! with nsfilter's load and unload checked; `Scale`, the sizes of the
//! reliability tests; and `udp_logged`, the check many tests make.

use super::module::{insmod_with, rmmod, LOADED_LINE, UNLOADED_LINE};
use super::net::{udp_exchange, v4, LOG_WAIT};
use super::GuestResult;
use crate::kmsg::{self, Kmsg};

/// The sizes of the reliability tests.
pub(super) struct Scale {
    /// Packets the fuzz test injects.
    pub(super) fuzz_packets: usize,
    /// Namespaces the churn test creates and destroys.
    pub(super) churn_namespaces: usize,
    /// insmod/rmmod cycles under a flood.
    pub(super) load_cycles: usize,
    /// Seconds of parameter writes under a flood.
    pub(super) param_write_secs: u32,
    /// Renames of a device that packets enter through.
    pub(super) renames: usize,
    /// Corpus packets the LOG-format test compares with the kernel's LOG.
    pub(super) logformat_packets: usize,
    /// Namespaces that die under a flood while others are born.
    pub(super) death_rounds: usize,
    /// Seconds that a crowd of namespaces floods the host-wide budget.
    pub(super) budget_secs: u32,
    /// The sizes of the crowds of unprivileged namespaces that flood it.
    pub(super) unprivileged_crowds: &'static [usize],
    /// Fault injection fails allocation 1, 1 + this, 1 + 2 x this, ... of
    /// each operation: 1 tries every one (on the debug kernel, namespace
    /// creation alone has about 2,000, a minute per 50 under TCG).
    pub(super) fault_stride: u32,
}

/// `make test`: well inside CI's time.
pub(super) const QUICK: Scale = Scale {
    fuzz_packets: 20_000,
    churn_namespaces: 200,
    load_cycles: 20,
    param_write_secs: 5,
    renames: 2_000,
    logformat_packets: 20_000,
    death_rounds: 10,
    budget_secs: 5,
    unprivileged_crowds: &[40],
    fault_stride: 20,
};

/// `make stress`: the full sizes.
pub(super) const STRESS: Scale = Scale {
    fuzz_packets: 100_000,
    churn_namespaces: 1000,
    load_cycles: 100,
    param_write_secs: 30,
    renames: 10_000,
    logformat_packets: 100_000,
    death_rounds: 50,
    budget_secs: 30,
    unprivileged_crowds: &[1, 10, 40],
    fault_stride: 1,
};

/// The state a test runs with: the kernel log since the test began.
pub(super) struct Ctx {
    pub(super) kmsg: Kmsg,
    pub(super) scale: &'static Scale,
}

impl Ctx {
    pub(super) fn new(scale: &'static Scale) -> GuestResult<Self> {
        Ok(Self {
            kmsg: Kmsg::open().map_err(|e| format!("failed to open /dev/kmsg: {e}"))?,
            scale,
        })
    }

    /// Loads nsfilter and checks its exact load line.
    pub(super) fn load(&mut self) -> GuestResult {
        self.load_with("")
    }

    /// Loads nsfilter with module parameters `params`.
    pub(super) fn load_with(&mut self, params: &str) -> GuestResult {
        insmod_with(params)?;
        self.expect(&[LOADED_LINE])
    }

    /// Unloads nsfilter and checks its exact unload line.
    pub(super) fn unload(&mut self) -> GuestResult {
        rmmod()?;
        self.expect(&[UNLOADED_LINE])
    }

    /// Waits (bounded) until every pattern matches a distinct new log line;
    /// `#` in a pattern stands for a number the test cannot know (an IP ID).
    pub(super) fn expect(&mut self, patterns: &[&str]) -> GuestResult {
        let mut missing = Vec::new();
        let found = self
            .kmsg
            .wait_until(LOG_WAIT, |seen| {
                // Each pattern takes a line of its own: two patterns for
                // the same packet need two lines.
                let mut used = vec![false; seen.len()];
                missing = patterns
                    .iter()
                    .filter(|p| {
                        match (0..seen.len()).find(|&i| !used[i] && kmsg::matches(p, &seen[i])) {
                            Some(i) => {
                                used[i] = true;
                                false
                            }
                            None => true,
                        }
                    })
                    .map(|p| p.to_string())
                    .collect();
                missing.is_empty()
            })
            .map_err(|e| format!("failed to read /dev/kmsg: {e}"))?;
        if found {
            return Ok(());
        }
        let mut msg = String::from("expected log lines did not appear:");
        if self.kmsg.lost > 0 {
            msg.push_str(&format!(
                " ({} records overwritten by the kernel before they were read)",
                self.kmsg.lost
            ));
        }
        for p in &missing {
            msg.push_str(&format!("\n  want: {p}"));
        }
        for l in self.nsfilter_lines() {
            msg.push_str(&format!("\n  seen: {l}"));
        }
        Err(msg)
    }

    /// The nsfilter lines logged since the test began (or the last `mark`).
    pub(super) fn nsfilter_lines(&mut self) -> Vec<String> {
        let _ = self.kmsg.poll();
        self.kmsg
            .seen
            .iter()
            .filter(|l| l.starts_with("nsfilter: NETNS="))
            .cloned()
            .collect()
    }

    /// Forgets the lines seen so far.
    pub(super) fn mark(&mut self) {
        let _ = self.kmsg.poll();
        self.kmsg.clear();
    }
}

/// Sends one UDP datagram 10.N.0.1:`sport` -> 10.N.0.2:`dport` and says
/// whether nsfilter logged it. The line, if any, is printed in the hook,
/// before the datagram reaches the socket, so no wait is needed.
pub(super) fn udp_logged(
    ctx: &mut Ctx,
    (a, b, n): (&str, &str, u8),
    sport: u16,
    dport: u16,
) -> GuestResult<bool> {
    ctx.mark();
    udp_exchange(a, v4([10, n, 0, 1], sport), b, v4([10, n, 0, 2], dport))?;
    let tail = format!(
        "SRC=10.{n}.0.1 DST=10.{n}.0.2 LEN=36 TOS=0x00 PREC=0x00 TTL=64 ID=# DF PROTO=UDP SPT={sport} DPT={dport} LEN=16 "
    );
    Ok(ctx
        .nsfilter_lines()
        .iter()
        .any(|l| kmsg::matches(&format!("nsfilter: NETNS=# IN={b}v OUT= MAC=* {tail}"), l)))
}
