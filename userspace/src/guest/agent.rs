//! The agent: this program run inside the lab VM by `/init`.
//!
//! It reads its task from the initramfs, prints the kernel's taint before and
//! after, and either runs the test suite (KTAP on the console), the lesson, or
//! the user's command with the module loaded.

use super::bench;
use super::context::{QUICK, STRESS};
use super::lesson::lesson;
use super::module::{insmod, rmmod};
use super::reports;
use super::suite::run_suite;
use super::GuestResult;
use crate::initramfs::{guest_path, TAINT_LOG_MARKER};
use crate::verdict::{KMSG_MARKER, TAINT_MARKER};
use std::fs;
use std::process::Command;

/// Runs the agent; returns its exit status.
pub fn main() -> i32 {
    let args = fs::read_to_string(guest_path::ARGS).unwrap_or_default();
    let args: Vec<&str> = args.lines().collect();
    if let Err(e) = reports::start() {
        println!("{KMSG_MARKER}{e}: kernel warnings not checked");
    }
    let before = taint();
    let code = match dispatch(&args) {
        Ok(code) => code,
        Err(e) => {
            println!("nsfilter-lab (guest): {e}");
            1
        }
    };
    forward_kernel_warnings();
    println!("{TAINT_MARKER}before={before} after={}@@", taint());
    code
}

/// Prints every kernel report of the run (a record that matches
/// [`crate::verdict::KERNEL_FAILURES`], read continuously since boot),
/// marked, for the host's verdict: the console itself only shows emergencies
/// (`loglevel=2`), so that it carries what the guest's programs print and
/// little else.
fn forward_kernel_warnings() {
    for report in reports::since(&reports::Mark::START) {
        println!("{KMSG_MARKER}{report}");
    }
    for said in reports::taint_messages() {
        println!("{TAINT_LOG_MARKER}{said}");
    }
}

fn dispatch(args: &[&str]) -> GuestResult<i32> {
    match args.first().copied() {
        Some("test") => {
            let scale = if args.get(2) == Some(&"stress") {
                &STRESS
            } else {
                &QUICK
            };
            Ok(run_suite(args.get(1).copied().unwrap_or(""), scale))
        }
        Some("run") => lesson().map(|()| 0),
        Some("bench") => bench::guest(&args[1..]).map(|()| 0),
        Some("exec") => exec(&args[1..]),
        Some("shell") => shell(&args[1..]),
        other => Err(format!("unknown guest task {other:?}")),
    }
}

/// The kernel's taint, or `?` if it cannot be read (which the host's
/// verdict refuses: an unread taint must not pass as an unchanged one).
fn taint() -> String {
    fs::read_to_string("/proc/sys/kernel/tainted")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map_or_else(|| "?".to_string(), |t| t.to_string())
}

/// `exec [--no-module] -- ARGS...`: the user's command, module loaded.
fn exec(args: &[&str]) -> GuestResult<i32> {
    let (load, rest) = match args.first() {
        Some(&"--no-module") => (false, &args[1..]),
        _ => (true, args),
    };
    if load {
        insmod()?;
    }
    let script = format!(". {} ; {}", guest_path::PROFILE, rest.join(" "));
    let status = Command::new("/bin/sh")
        .args(["-c", &script])
        .status()
        .map_err(|e| format!("failed to start /bin/sh: {e}"))?;
    if load {
        rmmod()?;
    }
    Ok(status.code().unwrap_or(128))
}

/// `shell [--no-module]`: an interactive shell on the console, module loaded.
fn shell(args: &[&str]) -> GuestResult<i32> {
    let load = args.first() != Some(&"--no-module");
    if load {
        insmod()?;
        println!("nsfilter is loaded: 'dmesg | grep nsfilter' shows its lines. Ctrl-D leaves.");
    }
    // cttyhack gives the shell the console as its terminal (Ctrl-C works).
    let status = Command::new("/bin/busybox")
        .args(["setsid", "cttyhack", "sh", "-i"])
        .env("ENV", guest_path::PROFILE)
        .env("PS1", "nsfilter-lab# ")
        .status()
        .map_err(|e| format!("failed to start the shell: {e}"))?;
    if load {
        let _ = rmmod();
    }
    Ok(status.code().unwrap_or(0))
}
