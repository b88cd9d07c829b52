//! nsfilter as the guest sees it: loading and unloading it, the lines that
//! say so, its parameters in sysfs and its counters in `/proc/net/nsfilter`.

use super::net::sh;
use super::GuestResult;
use crate::initramfs::guest_path;
use std::fs;

/// The exact line nsfilter logs when it is loaded.
pub(super) const LOADED_LINE: &str =
    "nsfilter: loaded: logging PRE_ROUTING in every network namespace";
/// The exact line nsfilter logs when it is unloaded.
pub(super) const UNLOADED_LINE: &str = "nsfilter: unloaded";

pub(super) fn insmod() -> GuestResult {
    insmod_with("")
}

/// Loads the module at `path` in the guest with `params`.
pub(super) fn insmod_path(path: &str, params: &str) -> GuestResult {
    sh(&format!("insmod {path} {params}")).map(drop)
}

pub(super) fn insmod_with(params: &str) -> GuestResult {
    sh(&format!("insmod {} {params}", guest_path::MODULE)).map(drop)
}

pub(super) fn rmmod() -> GuestResult {
    sh("rmmod nsfilter").map(drop)
}

/// Writes a module parameter through sysfs as `echo VALUE > FILE` does
/// (with a newline: sysfs ignores an empty write); `Err` has the errno text.
pub(super) fn param_write(name: &str, value: &str) -> Result<(), String> {
    let path = format!("/sys/module/nsfilter/parameters/{name}");
    fs::write(&path, format!("{value}\n")).map_err(|e| e.to_string())
}

pub(super) fn param_read(name: &str) -> GuestResult<String> {
    let path = format!("/sys/module/nsfilter/parameters/{name}");
    fs::read_to_string(&path)
        .map(|v| v.trim_end().to_string())
        .map_err(|e| format!("failed to read {path}: {e}"))
}

/// `/proc/net/nsfilter` as seen from namespace `ns`, as `name value` pairs.
pub(super) fn proc_counters(ns: &str) -> GuestResult<Vec<(String, u64)>> {
    proc_counters_in(Some(ns))
}

/// `/proc/net/nsfilter` as seen from namespace `ns` (the initial one for
/// `None`), as `name value` pairs.
pub(super) fn proc_counters_in(ns: Option<&str>) -> GuestResult<Vec<(String, u64)>> {
    counters_of(ns, "nsfilter")
}

/// `/proc/net/FILE` (nsfilter's or the benchmark's C twin's, in the same
/// format) as seen from namespace `ns`.
pub(super) fn proc_counters_file(ns: &str, file: &str) -> GuestResult<Vec<(String, u64)>> {
    counters_of(Some(ns), file)
}

fn counters_of(ns: Option<&str>, file: &str) -> GuestResult<Vec<(String, u64)>> {
    let exec = ns.map_or_else(String::new, |n| format!("ip netns exec {n} "));
    let text = sh(&format!("{exec}cat /proc/net/{file}"))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(k, v)| Some((k.to_string(), v.trim().parse().ok()?)))
        .collect())
}

pub(super) fn counter(counters: &[(String, u64)], name: &str) -> GuestResult<u64> {
    counters
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| *v)
        .ok_or_else(|| format!("no '{name}' in /proc/net/nsfilter: {counters:?}"))
}

/// The parameters' values, in order, as sysfs shows them.
pub(super) fn all_params() -> GuestResult<Vec<String>> {
    [
        "enabled",
        "log_rate",
        "log_burst",
        "protocols",
        "ports",
        "netns",
        "log_level",
        "budget_rate",
        "budget_burst",
        "skip_userns",
    ]
    .iter()
    .map(|p| param_read(p))
    .collect()
}
