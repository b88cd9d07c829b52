//! Boots the lab VM in QEMU, captures its serial console, enforces a timeout.
//!
//! The VM has no network device: every packet the labs send stays inside the
//! guest's own namespaces.

use crate::arch::Arch;
use crate::error::{on, Context, Error, Result};
use crate::initramfs::START_MARKER;
use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How QEMU executes guest code.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Accel {
    /// Hardware virtualisation.
    Kvm,
    /// Software emulation (always works, slower).
    Tcg,
}

/// One VM run.
pub struct VmConfig<'a> {
    /// The kernel image (`bzImage`, arm64's `Image`).
    pub kernel: &'a Path,
    /// Its architecture, which QEMU emulates.
    pub arch: Arch,
    /// The initramfs.
    pub initrd: &'a Path,
    /// Where the serial console is written.
    pub console_log: &'a Path,
    /// The longest the VM may run.
    pub timeout: Duration,
    /// The longest it may take to reach user space (the start marker).
    pub boot_timeout: Duration,
    /// How guest code is executed.
    pub accel: Accel,
    /// Extra kernel command line.
    pub cmdline: &'a str,
    /// Wire the terminal to the serial console (interactive shell).
    pub interactive: bool,
    /// One CPU, and guest time tied to instructions executed (TCG icount):
    /// repeatable timing for benchmarks.
    pub icount: bool,
    /// Guest memory in MiB (a distribution kernel wants more than the lab's).
    pub memory_mb: u32,
    /// Under TCG, run both vCPUs on one host thread (`thread=single`). A
    /// kernel built with jump labels (a distribution's) rewrites its own code
    /// while it runs, e.g. netfilter's static key when the first hook of a
    /// namespace comes or the last goes; with one host thread per vCPU, QEMU
    /// let a vCPU execute the INT3 of a patch already finished ("Oops: int3"
    /// in `ip_rcv`, Debian's 7.3 kernel, insmod/rmmod under a flood). The lab
    /// kernels have no jump labels and keep a thread per vCPU.
    pub tcg_single_thread: bool,
    /// Said on stderr once QEMU has started (what boots, where the console
    /// goes); nothing if empty.
    pub note: &'a str,
}

/// What happened to a VM run.
pub struct VmOutcome {
    /// Every console line, in order.
    pub lines: Vec<String>,
    /// Whether the guest reached user space.
    pub booted: bool,
    /// Whether the timeout ended the run.
    pub timed_out: bool,
    /// QEMU's exit status, if it exited by itself.
    pub qemu_status: Option<std::process::ExitStatus>,
}

/// Kills QEMU on every exit path, including a panic or an early return.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The QEMU binary for `arch`, from `$QEMU` or `PATH`.
pub fn qemu_binary(arch: Arch) -> PathBuf {
    std::env::var_os("QEMU").map_or_else(|| PathBuf::from(arch.qemu()), PathBuf::from)
}

/// Two CPUs on x86, as two sockets of one core each. The lab kernels have no ACPI,
/// so they learn their CPUs from the BIOS's MP table, and SeaBIOS lists one
/// CPU per socket there: with QEMU's default for `-smp 2` (one socket, two
/// cores) they saw one CPU, and every concurrency test on them ran on it.
/// Kernels with ACPI (Debian's) read QEMU's own table and see both either way.
pub const TWO_CPUS: &str = "2,sockets=2,cores=1,threads=1";

/// QEMU's arguments for `cfg`, apart from the serial console's wiring.
///
/// With `cfg.icount` the run is a measurement: TCG whatever `cfg.accel`
/// says (icount exists only there), `-icount shift=0,sleep=off` (guest time
/// advances 1 ns per instruction executed and never waits for the host's
/// clock) and one CPU. Otherwise two CPUs, so that tests see concurrency.
pub fn qemu_args(cfg: &VmConfig<'_>) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["-nodefaults", "-nographic", "-no-reboot", "-nic", "none"]
        .into_iter()
        .map(OsString::from)
        .collect();
    args.extend(cfg.arch.machine().iter().map(OsString::from));
    args.extend(["-m".into(), cfg.memory_mb.to_string().into()]);
    // arm64's `virt` machine describes its CPUs in a device tree, read
    // whatever the topology.
    let two = match cfg.arch {
        Arch::X86_64 => TWO_CPUS,
        Arch::Arm64 => "2",
    };
    let timing: &[&str] = if cfg.icount {
        &["-smp", "1", "-accel", "tcg", "-icount", "shift=0,sleep=off"]
    } else if cfg.accel == Accel::Kvm {
        &["-smp", two, "-accel", "kvm"]
    } else if cfg.tcg_single_thread {
        &["-smp", two, "-accel", "tcg,thread=single"]
    } else {
        &["-smp", two, "-accel", "tcg"]
    };
    args.extend(timing.iter().map(OsString::from));
    args.push("-kernel".into());
    args.push(cfg.kernel.into());
    args.push("-initrd".into());
    args.push(cfg.initrd.into());
    args.push("-append".into());
    args.push(format!("console={} panic=-1 {}", cfg.arch.console(), cfg.cmdline).into());
    args
}

/// Boots the VM and streams each console line to `on_line` as it arrives.
pub fn run(cfg: &VmConfig<'_>, mut on_line: impl FnMut(&str)) -> Result<VmOutcome> {
    let qemu = qemu_binary(cfg.arch);
    let mut cmd = Command::new(&qemu);
    cmd.args(qemu_args(cfg))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    crate::sys::die_with_parent(&mut cmd);
    if cfg.interactive {
        // The terminal is the serial console: QEMU puts a terminal in raw
        // mode itself, and a pipe works too. Nothing is captured.
        cmd.args(["-serial", "mon:stdio"])
            .stdin(Stdio::inherit())
            .stdout(Stdio::inherit());
    } else {
        cmd.args(["-serial", "stdio"]).stdin(Stdio::null());
    }
    let child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::Setup(format!(
            "QEMU not found ({}): install {} (run 'make setup')",
            qemu.display(),
            cfg.arch.qemu_package()
        )),
        _ => Error::Io {
            step: "failed to spawn QEMU".into(),
            source: e,
        },
    })?;
    let mut guard = ChildGuard(child);
    if !cfg.note.is_empty() {
        eprintln!("{}", cfg.note);
    }
    if cfg.interactive {
        let status = guard.0.wait().step(|| "failed to wait for QEMU".into())?;
        return Ok(VmOutcome {
            lines: Vec::new(),
            booted: true,
            timed_out: false,
            qemu_status: Some(status),
        });
    }
    let mut log = File::create(cfg.console_log).step(on("create", cfg.console_log))?;

    // One reader thread per pipe; lines come back over a channel so that the
    // wait below is bounded by the deadline, not by QEMU.
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = guard.0.stdout.take();
    let stderr = guard.0.stderr.take();
    for pipe in [
        stdout.map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        stderr.map(|s| Box::new(s) as _),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut buf = Vec::new();
            while matches!(reader.read_until(b'\n', &mut buf), Ok(n) if n > 0) {
                let line = String::from_utf8_lossy(&buf);
                let line = line.trim_end_matches(['\n', '\r']).to_string();
                if tx.send(line).is_err() {
                    break;
                }
                buf.clear();
            }
        });
    }
    drop(tx);

    let start = Instant::now();
    let deadline = start + cfg.timeout;
    let boot_deadline = start + cfg.boot_timeout.min(cfg.timeout);
    let mut lines = Vec::new();
    let mut timed_out = false;
    let mut booted = false;
    loop {
        let until = if booted { deadline } else { boot_deadline };
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                writeln!(log, "{line}").step(on("write", cfg.console_log))?;
                if booted {
                    on_line(&line);
                }
                booted |= line.contains(START_MARKER);
                lines.push(line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                timed_out = true;
                break;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let qemu_status = if timed_out { None } else { guard.0.wait().ok() };
    Ok(VmOutcome {
        lines,
        booted,
        timed_out,
        qemu_status,
    })
}

/// Chooses KVM when `/dev/kvm` can be opened and no earlier run found it
/// broken (recorded in `probe_file`); TCG otherwise. With `proven_only`, KVM
/// only once a run has booted with it (an interactive run cannot fall back).
/// `NSFILTER_ACCEL=kvm|tcg` overrides.
pub fn choose_accel(probe_file: &Path, proven_only: bool, arch: Arch) -> Result<Accel> {
    let forced = match std::env::var("NSFILTER_ACCEL").as_deref() {
        Ok("kvm") => Some(Accel::Kvm),
        Ok("tcg") => Some(Accel::Tcg),
        Ok(other) => {
            return Err(Error::Usage(format!(
                "NSFILTER_ACCEL must be kvm or tcg, not '{other}'"
            )))
        }
        Err(_) => None,
    };
    // KVM runs only the host's own architecture.
    if arch != Arch::host() {
        return Ok(Accel::Tcg);
    }
    if let Some(accel) = forced {
        return Ok(accel);
    }
    let usable = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    let known = std::fs::read_to_string(probe_file).unwrap_or_default();
    let allowed = if proven_only {
        known.trim() == "works"
    } else {
        known.trim() != "broken"
    };
    Ok(if usable && allowed {
        Accel::Kvm
    } else {
        Accel::Tcg
    })
}

/// Records whether KVM booted the guest on this machine, so later runs go
/// straight to TCG where it does not.
pub fn record_kvm(probe_file: &Path, works: bool) {
    if let Some(dir) = probe_file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(probe_file, if works { "works\n" } else { "broken\n" });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(icount: bool, accel: Accel) -> VmConfig<'static> {
        VmConfig {
            kernel: Path::new("/k/bzImage"),
            arch: Arch::X86_64,
            initrd: Path::new("/w/initramfs.cpio"),
            console_log: Path::new("/w/console.log"),
            timeout: Duration::from_secs(60),
            boot_timeout: Duration::from_secs(60),
            accel,
            cmdline: "loglevel=2",
            interactive: false,
            icount,
            memory_mb: 512,
            tcg_single_thread: false,
            note: "",
        }
    }

    fn joined(cfg: &VmConfig<'_>) -> String {
        qemu_args(cfg)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// What `bench` runs is what its report and `docs/performance.md` say it runs: one
    /// CPU, TCG, guest time counted in instructions; even where KVM works.
    #[test]
    fn a_bench_run_is_tcg_with_icount_on_one_cpu() {
        for accel in [Accel::Tcg, Accel::Kvm] {
            let args = joined(&config(true, accel));
            assert!(
                args.contains(" -smp 1 -accel tcg -icount shift=0,sleep=off "),
                "{args}"
            );
            assert!(!args.contains("-smp 2") && !args.contains("kvm"), "{args}");
        }
        let args = joined(&config(false, Accel::Tcg));
        assert!(
            args.contains(&format!(" -smp {TWO_CPUS} -accel tcg ")) && !args.contains("icount"),
            "{args}"
        );
        let args = joined(&config(false, Accel::Kvm));
        assert!(
            args.contains(&format!(" -smp {TWO_CPUS} -accel kvm ")),
            "{args}"
        );
        assert!(
            args.ends_with("-append console=ttyS0 panic=-1 loglevel=2"),
            "{args}"
        );
    }

    /// A distribution kernel (jump labels) runs its two vCPUs on one host
    /// thread under TCG; the lab kernels and KVM are left alone.
    #[test]
    fn single_thread_tcg_only_where_asked_and_only_under_tcg() {
        let mut cfg = config(false, Accel::Tcg);
        cfg.tcg_single_thread = true;
        assert!(joined(&cfg).contains(&format!(" -smp {TWO_CPUS} -accel tcg,thread=single ")));
        cfg.accel = Accel::Kvm;
        assert!(joined(&cfg).contains(&format!(" -smp {TWO_CPUS} -accel kvm ")));
        cfg.icount = true;
        assert!(joined(&cfg).contains(" -smp 1 -accel tcg -icount "));
    }

    /// arm64 boots on QEMU's `virt` machine, two CPUs from its device tree,
    /// its console on the PL011.
    #[test]
    fn arm64_runs_on_virt_with_its_own_console() {
        let mut cfg = config(false, Accel::Tcg);
        cfg.arch = Arch::Arm64;
        let args = joined(&cfg);
        assert!(
            args.contains(" -M virt -cpu max,pauth-impdef=on -m 512 -smp 2 -accel tcg "),
            "{args}"
        );
        assert!(
            args.ends_with("-append console=ttyAMA0 panic=-1 loglevel=2"),
            "{args}"
        );
        assert!(!joined(&config(false, Accel::Tcg)).contains("virt"));
    }
}
