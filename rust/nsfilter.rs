// SPDX-License-Identifier: GPL-2.0

//! nsfilter: logs every packet that enters any network namespace.
//!
//! A netfilter hook at `NF_INET_PRE_ROUTING`, priority `NF_IP_PRI_FIRST`, is
//! registered in every namespace, present and future; each packet becomes one
//! line in the kernel log with the namespace's inode number, the input device,
//! addresses, ports and the fields of the kernel's `LOG` target. Each
//! namespace has its own rate limit and counters (`/proc/net/nsfilter`), and
//! module parameters filter what is logged.

use kernel::prelude::*;

mod bindings;
mod budget;
mod counters;
mod decision;
mod hook;
mod logline;
mod packet;
mod ratelimit;
mod rcu;
mod settings;
mod sys;
mod textbuf;

sys::module_params!(hook::Parameters);

/// The module: nsfilter's hook, registered in every namespace while it is
/// loaded (see [`sys::Registration`], which also says why it cannot leak).
type NsFilter = sys::Registration<hook::Logger>;

module! {
    type: NsFilter,
    name: "nsfilter",
    description: "Logs every packet entering any network namespace",
    license: "GPL",
}
