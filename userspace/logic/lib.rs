//! The module's safe logic, the very files `nsfilter.ko` is built from
//! (`rust/`), compiled as a host library so that `make mutants` can find and
//! mutate them. The host tests that judge the mutants (`../tests/`) compile
//! the same files themselves.

#![allow(dead_code, missing_docs)]

#[path = "../../rust/budget.rs"]
mod budget;
#[path = "../../rust/counters.rs"]
mod counters;
#[path = "../../rust/decision.rs"]
mod decision;
#[path = "../../rust/logline.rs"]
mod logline;
#[path = "../../rust/packet.rs"]
mod packet;
#[path = "../../rust/ratelimit.rs"]
mod ratelimit;
#[path = "../../rust/rcu.rs"]
mod rcu;
#[path = "../../rust/settings.rs"]
mod settings;
#[path = "../../rust/textbuf.rs"]
mod textbuf;
