// SPDX-License-Identifier: GPL-2.0

//! What nsfilter does with each packet: parse it and log one line.
//!
//! Safe code only; the kernel is reached through [`crate::netfilter`].

use crate::logline::LogLine;
use crate::netfilter::{Net, NetHook, Packet};
use crate::packet;
use kernel::prelude::*;

/// The hook that logs every packet.
pub(crate) struct Logger;

impl NetHook for Logger {
    type NetState = ();

    fn init_net(_net: &Net) -> Result<Self::NetState> {
        Ok(())
    }

    fn packet(_state: &Self::NetState, pkt: &Packet<'_>) {
        let Some(family) = pkt.family() else {
            return;
        };
        let summary = packet::parse(family, pkt);
        let line = LogLine {
            netns: pkt.net().inode(),
            in_dev: pkt.in_dev_name(),
            summary: &summary,
        };
        pr_info!("{line}\n");
    }
}
