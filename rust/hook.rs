// SPDX-License-Identifier: GPL-2.0

//! What nsfilter does with each packet, and its module parameters.
//!
//! Safe code only: this is the leaf that implements [`crate::sys`]'s traits.

use crate::budget::{Budget, NetLimit, Scope, Verdict};
use crate::counters::{Counters, CpuCounters};
use crate::logline::{Dialect, LogLine};
use crate::packet;
use crate::settings::{Param, SETTINGS};
use crate::sys::{self, Level, Net, NetHook, Packet, Params, RcuReader};
use core::fmt::{self, Write};
use kernel::prelude::*;

/// The `LOG` format of the kernel nsfilter is built for.
const DIALECT: Dialect = Dialect {
    tcp_reserved: sys::TCP_RESERVED_BYTE12,
};

/// The host-wide budget of every namespace but the initial one.
static BUDGET: Budget = Budget::new();

/// The hook that logs every packet.
pub(crate) struct Logger;

/// What nsfilter keeps for each namespace.
pub(crate) struct NetState {
    counters: Counters<sys::PerCpu<CpuCounters>>,
    limit: NetLimit,
    /// Whether its lines come out of the host-wide budget.
    scope: Scope,
    /// Whether a user namespace other than the initial one owns it (what
    /// `skip_userns` leaves out).
    in_userns: bool,
}

impl NetHook for Logger {
    type NetState = NetState;

    fn init_net(net: &Net) -> Result<Self::NetState> {
        Ok(NetState {
            counters: Counters::new(sys::PerCpu::new()?),
            limit: NetLimit::new(),
            scope: if net.is_initial() {
                Scope::Initial
            } else {
                Scope::Shared
            },
            in_userns: !net.in_initial_userns(),
        })
    }

    fn packet(state: &Self::NetState, pkt: &Packet<'_>, rcu: &RcuReader) {
        let Some(family) = pkt.family() else {
            return;
        };
        let counters = state.counters.local();
        let summary = packet::parse(family, pkt);
        counters.seen(family, &summary);
        let netns = pkt.net().inode();
        if !SETTINGS.enabled()
            || (state.in_userns && SETTINGS.skip_userns())
            || !SETTINGS.wants(rcu, netns, &summary)
        {
            counters.filtered();
            return;
        }
        let verdict = state.limit.admit(
            &BUDGET,
            state.scope,
            sys::now_ns(),
            SETTINGS.limits(),
            || state.counters.suppressed_total(),
        );
        match verdict {
            Verdict::Refused(reason) => counters.suppressed(reason),
            Verdict::Log(suppressed) => {
                let level = Level::from_number(SETTINGS.log_level());
                if let Some(s) = suppressed {
                    // No `NETNS=` or `IN=`: no reader takes it for a packet.
                    sys::print(
                        level,
                        format_args!(
                            "ratelimit: netns {netns} suppressed {} lines (limit {}, budget {})",
                            s.total(),
                            s.limit,
                            s.budget
                        ),
                    );
                    state.limit.summary_printed(sys::now_ns());
                }
                let in_dev = pkt.in_dev_name();
                let line = LogLine {
                    netns,
                    in_dev: in_dev.as_bytes(),
                    family,
                    packet: pkt,
                    dialect: DIALECT,
                };
                sys::print(level, format_args!("{line}"));
                counters.logged();
            }
        }
    }

    fn show(state: &Self::NetState, net: &Net, out: &mut dyn Write) -> fmt::Result {
        state.counters.show(net.inode(), out)
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
