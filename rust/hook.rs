// SPDX-License-Identifier: GPL-2.0

//! nsfilter's hook and module parameters: the kernel's side of each
//! packet's decision (`decision.rs`), and the settings' parameters.
//!
//! Safe code only: this is the leaf that implements [`crate::sys`]'s traits.

use crate::budget::{Budget, Suppressed};
use crate::counters::CpuCounters;
use crate::decision::{self, Output};
use crate::logline::{Dialect, LogLine};
use crate::packet::{self, Family};
use crate::settings::{Param, SETTINGS};
use crate::sys::{self, Level, Net, NetHook, Packet, Params, RcuReader};
use crate::textbuf::LineBuf;
use core::fmt::{self, Write};
use kernel::prelude::*;

/// The `LOG` format of the kernel nsfilter is built for.
const DIALECT: Dialect = Dialect {
    tcp_reserved: sys::TCP_RESERVED_BYTE12,
};

/// The stack buffer a line is formatted into: a line of the traffic this
/// module sees most (IPv4 and IPv6, TCP, UDP, ICMP over Ethernet) is under
/// 400 characters; 512 bytes is a modest frame for a hook in softirq.
const LINE_BUF: usize = 512;

/// The host-wide budget of every namespace but the initial one.
static BUDGET: Budget = Budget::new();

/// The hook that logs every packet.
pub(crate) struct Logger;

/// What nsfilter keeps for each namespace: its counters in the kernel's
/// per-CPU storage.
pub(crate) type NetState = decision::NetState<sys::PerCpu<CpuCounters>>;

/// The kernel's clock and log, for one packet's decision.
struct Printer<'a, 'b> {
    packet: &'a Packet<'b>,
    family: Family,
    netns: u32,
}

impl Output for Printer<'_, '_> {
    fn now_ns(&self) -> u64 {
        sys::now_ns()
    }

    fn summary(&mut self, level: u32, netns: u32, refused: Suppressed) {
        // No `NETNS=` or `IN=`: no reader takes it for a packet.
        sys::print(
            Level::from_number(level),
            format_args!(
                "ratelimit: netns {netns} suppressed {} lines (limit {}, budget {})",
                refused.total(),
                refused.limit,
                refused.budget
            ),
        );
    }

    fn line(&mut self, level: u32) {
        let in_dev = self.packet.in_dev_name();
        let line = LogLine {
            netns: self.netns,
            in_dev: in_dev.as_bytes(),
            family: self.family,
            packet: self.packet,
            dialect: DIALECT,
        };
        let level = Level::from_number(level);
        // Formatted once, here; a line too long for the buffer (a long
        // link-layer header, an ICMP error's inner packet) is formatted by
        // printk, as every line used to be.
        let mut buf = LineBuf::<LINE_BUF>::new();
        match buf.format(format_args!("{line}")) {
            Some(text) => sys::print_str(level, text),
            None => sys::print(level, format_args!("{line}")),
        }
    }
}

impl NetHook for Logger {
    type NetState = NetState;

    fn init_net(net: &Net) -> Result<Self::NetState> {
        Ok(NetState::new(
            sys::PerCpu::new()?,
            net.is_initial(),
            !net.in_initial_userns(),
        ))
    }

    fn packet(state: &Self::NetState, pkt: &Packet<'_>, rcu: &RcuReader) {
        let Some(family) = pkt.family() else {
            return;
        };
        let summary = packet::parse(family, pkt);
        let netns = pkt.net().inode();
        let mut out = Printer {
            packet: pkt,
            family,
            netns,
        };
        state.packet(&SETTINGS, &BUDGET, rcu, netns, family, &summary, &mut out);
    }

    fn show(state: &Self::NetState, net: &Net, out: &mut dyn Write) -> fmt::Result {
        state.counters().show(net.inode(), out)
    }

    fn loaded() {
        sys::print(
            Level::Info,
            format_args!("loaded: logging PRE_ROUTING in every network namespace"),
        );
    }

    fn unloaded() {
        // Every namespace is unhooked by now: this is the last line.
        sys::print(Level::Info, format_args!("unloaded"));
    }
}

/// The module parameters, backed by [`SETTINGS`].
pub(crate) struct Parameters;

impl Params for Parameters {
    fn set(id: usize, value: Option<&[u8]>) -> Result {
        let param = Param::from_id(id).ok_or(EINVAL)?;
        // A list is published with an RCU grace period after it: when the
        // write returns, every CPU's next packet sees the new value.
        SETTINGS
            .set(param, value, sys::synchronize_rcu)
            .map_err(|e| {
                sys::print(
                    Level::Warning,
                    format_args!("invalid value for parameter {}: {e}", param.name()),
                );
                EINVAL
            })
    }

    fn get(id: usize, out: &mut dyn Write) -> fmt::Result {
        let param = Param::from_id(id).ok_or(fmt::Error)?;
        SETTINGS.show(param, out)
    }
}
