//! The verdict on a VM run, from its console alone.

use crate::initramfs::EXIT_MARKER;
use crate::vm::VmOutcome;

/// Console text that means the kernel went wrong, whatever the guest said.
pub const KERNEL_FAILURES: &[&str] = &[
    "Kernel panic",
    "BUG:",
    "WARNING:",
    "Oops",
    "rust_kernel: panicked",
    "general protection fault",
    "KASAN:",
    "UBSAN:",
];

/// The marker before each kernel record of warning level or worse that the
/// agent forwards to the console at the end of a run.
pub const KMSG_MARKER: &str = "@@nsfilter-kmsg ";

/// The marker the agent prints with the kernel's taint before and after.
pub const TAINT_MARKER: &str = "@@nsfilter-taint ";

/// `TAINT_OOT_MODULE`: set by loading any out-of-tree module, nsfilter included.
const TAINT_OUT_OF_TREE: u64 = 1 << 12;

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
    let mut v = Verdict::default();
    for line in &outcome.lines {
        if let Some(pattern) = KERNEL_FAILURES.iter().find(|p| line.contains(*p)) {
            v.problems
                .push(format!("kernel reported '{pattern}': {}", line.trim()));
        }
        if let Some(rest) = after(line, EXIT_MARKER) {
            v.guest_exit = rest.split("@@").next().and_then(|s| s.trim().parse().ok());
        }
        if let Some(rest) = after(line, TAINT_MARKER) {
            if let Some((before, after)) = parse_taint(rest) {
                let new = after & !before & !TAINT_OUT_OF_TREE;
                if new != 0 {
                    v.problems.push(format!(
                        "the kernel was tainted during the run (taint {before:#x} -> {after:#x})"
                    ));
                }
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
        ] {
            let v = judge(&outcome(&lines), 10);
            assert!(
                v.problems.iter().any(|p| p.contains(why)),
                "{lines:?} should fail with '{why}', got {:?}",
                v.problems
            );
        }
    }

    #[test]
    fn timeout_is_reported() {
        let mut o = outcome(&[BOOT]);
        o.timed_out = true;
        let v = judge(&o, 7);
        assert!(v.problems.iter().any(|p| p.contains("within 7 s")));
    }
}
