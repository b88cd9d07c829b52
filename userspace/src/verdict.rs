//! The verdict on a VM run, from its console alone.

use crate::initramfs::EXIT_MARKER;
use crate::vm::VmOutcome;

/// Console text that means the kernel went wrong, whatever the guest said.
/// Lockdep, KCSAN, soft lockups and KASAN reports start with `WARNING:` or
/// `BUG:`; RCU stalls and hung tasks are reported as `INFO:` lines.
pub const KERNEL_FAILURES: &[&str] = &[
    "Kernel panic",
    "BUG:",
    "WARNING:",
    "Oops",
    "rust_kernel: panicked",
    "general protection fault",
    "KASAN:",
    "UBSAN:",
    "detected stall",
    "blocked for more than",
    // Lockdep meets a lock it cannot track, says so once, and turns itself
    // off: every later lock bug would go unreported.
    "INFO: trying to register non-static key",
    // kmemleak's background scan: "N new suspected memory leaks".
    "new suspected memory leaks",
];

/// What [`kernel_failure`] names a SLUB report by.
pub const SLUB_REPORT: &str = "BUG <cache> (...):";

/// The pattern of [`KERNEL_FAILURES`] that `line` shows, if any, or
/// [`SLUB_REPORT`] for SLUB's own reports, which have no colon after `BUG`
/// (`BUG kmalloc-64 (Not tainted): Redzone overwritten`).
pub fn kernel_failure(line: &str) -> Option<&'static str> {
    KERNEL_FAILURES
        .iter()
        .find(|p| line.contains(*p))
        .copied()
        .or_else(|| is_slub_report(line).then_some(SLUB_REPORT))
}

/// Whether `line` is the first line of a SLUB report: `BUG `, a cache name
/// (no spaces), ` (`, and `): ` after it (slab_bug() in mm/slub.c).
fn is_slub_report(line: &str) -> bool {
    line.match_indices("BUG ").any(|(at, _)| {
        let before_ok = line[..at]
            .chars()
            .next_back()
            .is_none_or(|c| c == ' ' || c == ']' || c == ';');
        let rest = &line[at + 4..];
        let Some((cache, tail)) = rest.split_once(" (") else {
            return false;
        };
        before_ok && !cache.is_empty() && !cache.contains(' ') && tail.contains("): ")
    })
}

/// The marker before each kernel record of warning level or worse that the
/// agent forwards to the console at the end of a run.
pub const KMSG_MARKER: &str = "@@nsfilter-kmsg ";

/// The marker the agent prints with the kernel's taint before and after.
pub const TAINT_MARKER: &str = "@@nsfilter-taint ";

/// `TAINT_OOT_MODULE`: set by loading any out-of-tree module, nsfilter included.
pub const TAINT_OUT_OF_TREE: u64 = 1 << 12;

/// The kernel's taint letters, bit 0 first, as `Documentation/admin-guide/tainted-kernels.rst`
/// lists them (O is out-of-tree, E an unsigned module).
const TAINT_LETTERS: &str = "PFSRMBUDAWCIOELKXTNJ";

/// The taint bits that the letters in `letters` name (e.g. `OE`).
pub fn taint_mask(letters: &str) -> Result<u64, String> {
    letters.chars().try_fold(0, |mask, c| {
        TAINT_LETTERS
            .find(c)
            .map(|bit| mask | 1 << bit)
            .ok_or_else(|| format!("'{c}' is not a kernel taint letter ({TAINT_LETTERS})"))
    })
}

/// Everything wrong with a run; empty means it passed.
#[derive(Debug, Default)]
pub struct Verdict {
    /// The agent's exit status, if `/init` reported one.
    pub guest_exit: Option<i32>,
    /// Why the run failed, one line each.
    pub problems: Vec<String>,
}

impl Verdict {
    /// Whether the run passed.
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Judges a run: the agent must have exited 0, and the kernel must not have
/// crashed, warned, or picked up a taint other than the out-of-tree one.
pub fn judge(outcome: &VmOutcome, timeout_secs: u64) -> Verdict {
    judge_allowing(outcome, timeout_secs, TAINT_OUT_OF_TREE)
}

/// Judges a run as [`judge`] does, with `allowed_taint` the taint bits the run
/// may add: a distribution kernel also taints itself E (unsigned module).
pub fn judge_allowing(outcome: &VmOutcome, timeout_secs: u64, allowed_taint: u64) -> Verdict {
    let mut v = Verdict::default();
    for line in &outcome.lines {
        if let Some(pattern) = kernel_failure(line) {
            v.problems
                .push(format!("kernel reported '{pattern}': {}", line.trim()));
        }
        if let Some(rest) = after(line, EXIT_MARKER) {
            v.guest_exit = rest.split("@@").next().and_then(|s| s.trim().parse().ok());
        }
        if let Some(rest) = after(line, TAINT_MARKER) {
            if let Some((before, after)) = parse_taint(rest) {
                let new = after & !before & !allowed_taint;
                if new != 0 {
                    v.problems.push(format!(
                        "the kernel was tainted during the run (taint {before:#x} -> {after:#x})"
                    ));
                }
            } else {
                v.problems.push(format!(
                    "the kernel's taint could not be read: {}",
                    line.trim()
                ));
            }
        }
    }
    if !outcome.booted {
        v.problems
            .push("the guest never reached user space (no start marker on the console)".into());
    } else if outcome.timed_out {
        v.problems.push(format!(
            "the VM did not finish within {timeout_secs} s and was stopped"
        ));
    }
    match v.guest_exit {
        Some(0) => {}
        Some(code) => v
            .problems
            .push(format!("the guest's command exited with status {code}")),
        None if outcome.booted && !outcome.timed_out => v
            .problems
            .push("the guest stopped without reporting an exit status".into()),
        None => {}
    }
    v
}

fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.find(marker).map(|at| &line[at + marker.len()..])
}

/// Parses `before=N after=M@@`.
fn parse_taint(rest: &str) -> Option<(u64, u64)> {
    let rest = rest.split("@@").next()?;
    let mut before = None;
    let mut after = None;
    for field in rest.split_whitespace() {
        match field.split_once('=') {
            Some(("before", n)) => before = n.parse().ok(),
            Some(("after", n)) => after = n.parse().ok(),
            _ => {}
        }
    }
    Some((before?, after?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::initramfs::START_MARKER;

    fn outcome(lines: &[&str]) -> VmOutcome {
        VmOutcome {
            booted: lines.iter().any(|l| l.contains(START_MARKER)),
            lines: lines.iter().map(|s| s.to_string()).collect(),
            timed_out: false,
            qemu_status: None,
        }
    }

    const BOOT: &str = START_MARKER;

    #[test]
    fn clean_run_passes() {
        let v = judge(
            &outcome(&[
                BOOT,
                "@@nsfilter-taint before=0 after=4096@@",
                "@@nsfilter-guest-exit 0@@",
            ]),
            10,
        );
        assert!(v.passed(), "{:?}", v.problems);
    }

    #[test]
    fn failures_are_caught() {
        let mut missed = Vec::new();
        for (lines, why) in [
            (vec![BOOT, "@@nsfilter-guest-exit 3@@"], "status 3"),
            (vec![BOOT], "without reporting"),
            (vec!["qemu: boom"], "never reached user space"),
            (
                vec![
                    BOOT,
                    "[ 1.0] WARNING: CPU: 0 PID: 1 at x",
                    "@@nsfilter-guest-exit 0@@",
                ],
                "WARNING:",
            ),
            (
                vec![
                    BOOT,
                    "[ 1.0] rust_kernel: panicked at x",
                    "@@nsfilter-guest-exit 0@@",
                ],
                "panicked",
            ),
            (
                vec![
                    BOOT,
                    "@@nsfilter-taint before=0 after=4608@@",
                    "@@nsfilter-guest-exit 0@@",
                ],
                "tainted",
            ),
            (
                vec![
                    BOOT,
                    "@@nsfilter-kmsg [ 2.0] INFO: trying to register non-static key.",
                    "@@nsfilter-guest-exit 0@@",
                ],
                "non-static key",
            ),
            (
                vec![
                    BOOT,
                    "@@nsfilter-kmsg [ 9.0] kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)",
                    "@@nsfilter-guest-exit 0@@",
                ],
                "memory leaks",
            ),
            (
                vec![
                    BOOT,
                    "@@nsfilter-kmsg [ 3.0] BUG kmalloc-64 (Not tainted): Redzone overwritten",
                    "@@nsfilter-guest-exit 0@@",
                ],
                "BUG <cache>",
            ),
            (
                vec![
                    BOOT,
                    "@@nsfilter-taint before=0 after=?@@",
                    "@@nsfilter-guest-exit 0@@",
                ],
                "taint could not be read",
            ),
        ] {
            let v = judge(&outcome(&lines), 10);
            if !v.problems.iter().any(|p| p.contains(why)) {
                missed.push(format!(
                    "{lines:?} should fail with '{why}', got {:?}",
                    v.problems
                ));
            }
        }
        assert!(missed.is_empty(), "{}", missed.join("\n"));
    }

    #[test]
    fn a_slub_report_is_told_from_other_text() {
        for line in [
            "BUG kmalloc-64 (Not tainted): Redzone overwritten",
            "[   12.345678] BUG skbuff_head_cache (Tainted: G O): Poison overwritten",
            "@@nsfilter-kmsg 3,812,2000,-;BUG kmalloc-rnd-01-64 (Tainted: G E): Freepointer corrupt",
        ] {
            assert_eq!(kernel_failure(line), Some(SLUB_REPORT), "{line}");
        }
        for line in [
            "nsfilter: NETNS=4026531840 IN=lo OUT= MAC= SRC=127.0.0.1 DST=127.0.0.1 LEN=84",
            "DEBUG kmalloc (x): y",
            "BUG two words (x): y",
            "BUG kmalloc-64 (no closing colon)",
            "a BUG cache",
        ] {
            assert_eq!(kernel_failure(line), None, "{line}");
        }
    }

    #[test]
    fn allowed_taints_are_exactly_those_given() {
        let oe = taint_mask("OE").unwrap();
        assert_eq!(oe, 4096 + 8192);
        let run = |after: u64| {
            let taint = format!("@@nsfilter-taint before=0 after={after}@@");
            judge_allowing(
                &outcome(&[BOOT, &taint, "@@nsfilter-guest-exit 0@@"]),
                10,
                oe,
            )
        };
        assert!(run(12288).passed());
        // W (a warning, 512) is not allowed on top of O and E.
        assert!(!run(12288 + 512).passed());
        // The default allows O alone.
        let e_only = outcome(&[
            BOOT,
            "@@nsfilter-taint before=0 after=12288@@",
            "@@nsfilter-guest-exit 0@@",
        ]);
        assert!(!judge(&e_only, 10).passed());
        assert!(taint_mask("Oz").is_err());
    }

    #[test]
    fn timeout_is_reported() {
        let mut o = outcome(&[BOOT]);
        o.timed_out = true;
        let v = judge(&o, 7);
        assert!(v.problems.iter().any(|p| p.contains("within 7 s")));
    }
}
