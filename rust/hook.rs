// SPDX-License-Identifier: GPL-2.0

//! What nsfilter does with each packet, and its module parameters.
//!
//! Safe code only; the kernel is reached through [`crate::sys`].

use crate::counters::Counters;
use crate::logline::LogLine;
use crate::packet;
use crate::ratelimit::{Admit, RateLimit};
use crate::settings::{Param, SETTINGS};
use crate::sys::{Net, NetHook, Packet};
use core::fmt::{self, Write};
use kernel::prelude::*;
use kernel::time::Ktime;

/// The hook that logs every packet.
pub(crate) struct Logger;

/// What nsfilter keeps for each namespace.
pub(crate) struct NetState {
    counters: Counters,
    limit: RateLimit,
}

impl NetHook for Logger {
    type NetState = NetState;

    fn init_net(_net: &Net) -> Result<Self::NetState> {
        Ok(NetState {
            counters: Counters::new(),
            limit: RateLimit::new(),
        })
    }

    fn packet(state: &Self::NetState, pkt: &Packet<'_>) {
        let Some(family) = pkt.family() else {
            return;
        };
        let summary = packet::parse(family, pkt);
        state.counters.seen(family, &summary);
        let netns = pkt.net().inode();
        if !SETTINGS.enabled() || !SETTINGS.wants(netns, &summary) {
            state.counters.filtered();
            return;
        }
        // CAST: Monotonic time since boot is never negative.
        let now = Ktime::ktime_get().to_ns() as u64;
        match state.limit.admit(now, SETTINGS.rate(), SETTINGS.burst()) {
            Admit::No => state.counters.suppressed(),
            Admit::Yes { suppressed } => {
                if suppressed > 0 {
                    pr_info!("NETNS={netns} suppressed {suppressed} lines\n");
                }
                let line = LogLine {
                    netns,
                    in_dev: pkt.in_dev_name(),
                    summary: &summary,
                };
                pr_info!("{line}\n");
                state.counters.logged();
            }
        }
    }

    fn show(state: &Self::NetState, net: &Net, out: &mut dyn Write) -> fmt::Result {
        state.counters.show(net.inode(), out)
    }
}

/// Sets module parameter number `id` from `value`; an invalid value is
/// refused with one line saying why, and the old value stays.
pub(crate) fn param_set(id: usize, value: &[u8]) -> Result {
    let param = Param::from_id(id).ok_or(EINVAL)?;
    SETTINGS.set(param, value).map_err(|e| {
        pr_warn!("invalid value for parameter {}: {e}\n", param.name());
        EINVAL
    })
}

/// Writes the value of module parameter number `id`.
pub(crate) fn param_show(id: usize, out: &mut dyn Write) -> fmt::Result {
    let param = Param::from_id(id).ok_or(fmt::Error)?;
    SETTINGS.show(param, out)
}
