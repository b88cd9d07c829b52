//! Everything the agent does inside the lab VM, one room per file, each
//! using only rooms listed below it:
//!
//! - `agent`: what `/init` runs: reads the task, dispatches it, reports the
//!   kernel's taint and warnings.
//! - `suite`: the VM tests in order, and the runner that prints KTAP.
//! - `tests_core`, `tests_controls`, `tests_counters`, `tests_budget`,
//!   `tests_reliability`, `tests_concurrency`, `tests_logformat`,
//!   `tests_names` (the `nsfilter` command): the VM tests, grouped by what
//!   they prove.
//! - `lesson`: the lesson behind `make run`.
//! - `bench`: the guest's half of `make bench`; `crate::bench` reads it.
//! - `labs`: the five labs, shared by the lesson and the tests.
//! - `context`: what a test or lab runs with (`Ctx`) and the test sizes.
//! - `reports`: the kernel's own reports, read continuously from boot on.
//! - `module`: nsfilter as the guest sees it: insmod/rmmod, parameters,
//!   counters.
//! - `net`: namespaces, veth pairs, UDP/TCP exchanges, background traffic.

mod agent;
pub(crate) mod bench;
mod context;
mod labs;
mod lesson;
mod module;
mod net;
mod reports;
mod suite;
mod tests_budget;
mod tests_concurrency;
mod tests_controls;
mod tests_core;
mod tests_counters;
mod tests_logformat;
mod tests_names;
mod tests_reliability;

pub use agent::main;
pub(crate) use suite::is_test;
pub use tests_budget::flood;

/// A failed step inside the guest.
type GuestResult<T = ()> = Result<T, String>;

/// The start of a test's error that means "skipped", with the reason after
/// it: the test cannot run on this kernel (KTAP `ok N name # SKIP reason`).
const SKIP: &str = "SKIP: ";

/// Skips the test that returns this, saying why.
fn skip(reason: &str) -> String {
    format!("{SKIP}{reason}")
}
