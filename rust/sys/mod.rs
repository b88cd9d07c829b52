// SPDX-License-Identifier: GPL-2.0

//! Safe wrappers over the kernel's C API.
//!
//! This is the only module of nsfilter that calls C or holds `unsafe` code
//! (apart from the generated [`crate::bindings`]), and it knows nothing of
//! what nsfilter does with a packet: the logic implements the traits below.
//!
//! - [`net`]: [`Net`], a network namespace, and [`Packet`], a read-only
//!   view of one packet and where it was seen, read with bounds checks only;
//! - [`pernet`]: [`NetHook`], the trait a hook implements (per-namespace
//!   state, a per-packet callback, the text of `/proc/net/nsfilter`), and
//!   [`Registration`], which hooks `NF_INET_PRE_ROUTING` at `NF_IP_PRI_FIRST`
//!   in every network namespace while it lives;
//! - [`params`]: [`Params`], the trait the module parameters declared in
//!   `helpers.c` are handed to, and [`module_params!`] that binds it;
//! - [`print`]: lines for the kernel log at a level chosen at run time;
//! - [`percpu`]: [`PerCpu`], one value for each CPU in the kernel's
//!   per-CPU areas;
//! - [`layout`]: the struct layouts the bindings assume, checked against
//!   the kernel's own compiler's before anything is registered;
//! - the clock and the RCU grace period, below.
//!
//! No code here assumes that bottom halves are disabled or that the caller
//! stays on one CPU: on `PREEMPT_RT` (Debian's `rt-amd64` kernel,
//! `KERNEL=debian-rt` in the lab) the packet path runs in preemptible
//! softirq threads. The per-CPU storage hands out slots that stay valid
//! whichever CPU ends up using them, the counters in them are atomic
//! read-modify-writes, every other shared value is an atomic, and the one
//! lock-free publication (the filter lists) relies on RCU grace periods,
//! which on RT wait for preempted readers too.
//!
//! Every kernel nsfilter supports (6.12 LTS and 7.x) is reached through the
//! same code here: what differs between their `kernel` crates (the clock
//! type, `pr_*!`'s formatting trait, `module!`'s keys) is avoided by calling
//! the C functions that have not changed, through nsfilter's own bindings.

mod layout;
mod net;
pub(crate) mod params;
mod percpu;
mod pernet;
mod print;

pub(crate) use net::{Net, Packet};
pub(crate) use params::{module_params, Params};
pub(crate) use percpu::PerCpu;
pub(crate) use pernet::{NetHook, RcuReader, Registration};
pub(crate) use print::{print, print_str, Level};

use crate::bindings;

/// The bits of a TCP header's byte 12 that the kernel's `TCP_RESERVED_BITS`
/// marks reserved: `0x0f` before TCP's `AE` flag existed, `0x0e` since.
// CAST: The constant is a `__be32` whose first byte in memory is byte 12 of
// the header. Its Rust type is bindgen's for the anonymous enum, `u32` here
// but not promised, hence the cast clippy finds unnecessary on 6.12.
#[allow(clippy::unnecessary_cast)]
pub(crate) const TCP_RESERVED_BYTE12: u8 = (bindings::TCP_RESERVED_BITS as u32).to_ne_bytes()[0];

/// Monotonic time since boot, in nanoseconds.
pub(crate) fn now_ns() -> u64 {
    // SAFETY: `ktime_get()` takes no arguments and may be called in any
    // context once timekeeping is up (long before modules load).
    let now = unsafe { bindings::ktime_get() };
    // CAST: Monotonic time since boot is never negative.
    now as u64
}

/// Waits for an RCU grace period: every RCU read-side critical section that
/// began before the call (every running hook call among them) has ended.
///
/// Sleeps: process context only.
pub(crate) fn synchronize_rcu() {
    // SAFETY: `synchronize_rcu()` takes no arguments and may be called from
    // any sleepable context; nsfilter calls it only from module parameter
    // writes and pernet callbacks, which run in process context.
    unsafe { bindings::synchronize_rcu() }
}
