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
mod hook;
mod logline;
mod packet;
mod ratelimit;
mod settings;
mod sys;

sys::module_params!(hook::Parameters);

module! {
    type: NsFilter,
    name: "nsfilter",
    description: "Logs every packet entering any network namespace",
    license: "GPL",
}

/// The loaded module: the hook, registered in every namespace while it lives.
struct NsFilter {
    hooks: Option<sys::Registration<hook::Logger>>,
}

impl kernel::Module for NsFilter {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let hooks = sys::Registration::register()?;
        sys::print(
            sys::Level::Info,
            format_args!("loaded: logging PRE_ROUTING in every network namespace"),
        );
        Ok(Self { hooks: Some(hooks) })
    }
}

impl Drop for NsFilter {
    fn drop(&mut self) {
        // Unhook every namespace first, so this is the last line nsfilter logs.
        drop(self.hooks.take());
        sys::print(sys::Level::Info, format_args!("unloaded"));
    }
}
