//! The kernel's own reports (warnings, lockdep, KASAN, KCSAN, stalls), read
//! from `/dev/kmsg` continuously from boot on, so that none is lost when a
//! test floods the log, and so that the test during which one appeared can
//! be named and failed.

use crate::kmsg::Kmsg;
use crate::verdict::kernel_failure;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

/// How often the watcher reads the log in the background: often enough that
/// a flood of lines cannot wrap the log buffer (booted with `log_buf_len=4M`)
/// in between.
const PERIOD: Duration = Duration::from_millis(20);

/// The log reader and what it has collected.
struct Watch {
    kmsg: Kmsg,
    /// Kernel records that match a failure pattern, in order.
    reports: Vec<String>,
    /// What the kernel said about taint ("loading out-of-tree module taints
    /// kernel.") and nsfilter's load line, each once: a long run pushes
    /// them out of the log before its end.
    taint: Vec<String>,
    /// Each time the log could not be read completely, why, in order.
    broken: Vec<String>,
}

impl Watch {
    /// Reads every record logged by now and keeps the reports.
    fn catch_up(&mut self) {
        if let Err(e) = self.kmsg.poll() {
            self.broken.push(format!("failed to read /dev/kmsg: {e}"));
        }
        for (_, line) in self.kmsg.take() {
            if kernel_failure(&line).is_some() {
                self.reports.push(line);
            } else if (line.contains("taint") || line.starts_with("nsfilter: loaded"))
                && !self.taint.contains(&line)
            {
                self.taint.push(line);
            }
        }
        let lost = std::mem::take(&mut self.kmsg.lost);
        if lost > 0 {
            self.broken.push(format!(
                "{lost} kernel log records were overwritten before they were read"
            ));
        }
    }
}

/// The watcher, started once by the agent.
static WATCH: OnceLock<Mutex<Watch>> = OnceLock::new();

fn watch() -> Option<MutexGuard<'static, Watch>> {
    WATCH
        .get()
        .map(|w| w.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Starts reading the kernel log, from its oldest record on, in the
/// background. The agent calls it first thing.
pub(super) fn start() -> Result<(), String> {
    let kmsg = Kmsg::open_from_start().map_err(|e| format!("failed to open /dev/kmsg: {e}"))?;
    let fresh = Mutex::new(Watch {
        kmsg,
        reports: Vec::new(),
        taint: Vec::new(),
        broken: Vec::new(),
    });
    if WATCH.set(fresh).is_err() {
        return Ok(());
    }
    std::thread::spawn(|| {
        // The lowest real-time priority, above every ordinary thread: a
        // test's flooders (several busy threads on the VM's two CPUs) would
        // otherwise leave the watcher a fraction of a CPU, too little to
        // read ten thousand records a second, and the log would overrun it.
        // It sleeps between reads, so it takes only what reading needs.
        if let Err(e) = crate::sys::set_realtime(1) {
            println!("# the kernel report watcher keeps its normal priority: {e}");
        }
        loop {
            if let Some(mut w) = watch() {
                w.catch_up();
            }
            std::thread::sleep(PERIOD);
        }
    });
    Ok(())
}

/// A point in the stream of reports (and of failures to read the log), to
/// ask later what came after it.
pub(super) struct Mark {
    reports: usize,
    broken: usize,
}

impl Mark {
    /// Before the first report.
    pub(super) const START: Mark = Mark {
        reports: 0,
        broken: 0,
    };
}

/// The current point, after reading everything the kernel has logged.
pub(super) fn mark() -> Mark {
    watch().map_or(Mark::START, |mut w| {
        w.catch_up();
        Mark {
            reports: w.reports.len(),
            broken: w.broken.len(),
        }
    })
}

/// Every report the kernel logged after `mark`, up to this call; a log that
/// could not be read completely in that time counts as a report (one of
/// them may be among the records lost).
pub(super) fn since(mark: &Mark) -> Vec<String> {
    let Some(mut w) = watch() else {
        return vec!["the kernel report watcher is not running".into()];
    };
    w.catch_up();
    let mut out: Vec<String> = w.reports.iter().skip(mark.reports).cloned().collect();
    out.extend(w.broken.iter().skip(mark.broken).cloned());
    out
}

/// Holds the watcher off the log while it lives (for the lost-record
/// self-test: records written meanwhile can overrun it).
pub(super) struct Held(#[allow(dead_code)] Option<MutexGuard<'static, Watch>>);

/// Holds the watcher off the log until the result is dropped.
pub(super) fn hold() -> Held {
    Held(watch())
}

/// What the kernel said about taint during the run, and nsfilter's load
/// line, each message once.
pub(super) fn taint_messages() -> Vec<String> {
    watch().map_or_else(Vec::new, |mut w| {
        w.catch_up();
        w.taint.clone()
    })
}
