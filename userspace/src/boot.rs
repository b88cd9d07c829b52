//! The kernel, module and VM behind a command: which kernel and module a
//! `--kernel-variant` means, whether they fit each other, and booting the VM
//! with the initramfs and judging what it printed.

use crate::arch::Arch;
use crate::error::{on, Context, Error, Result};
use crate::initramfs::{self, Contents};
use crate::options::{parse_args, Options};
use crate::verdict;
use crate::vm::{self, Accel, VmConfig};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Without `--kernel`: the options of the cached kernel that
/// `--kernel-variant` (else `$NSFILTER_KERNEL`, else `lab`) names, as
/// `scripts/kernel.sh lab-args` of this program's repository prints them.
/// What the command line gives wins.
pub(crate) fn with_variant(o: &Options) -> Result<Options> {
    let mut o = o.clone();
    if o.kernel.is_some() {
        return Ok(o);
    }
    let variant = o
        .kernel_variant
        .clone()
        .or_else(|| std::env::var("NSFILTER_KERNEL").ok())
        .unwrap_or_else(|| "lab".into());
    let exe = std::env::current_exe().ok();
    let cwd = std::env::current_dir().ok();
    let script = exe
        .iter()
        .chain(cwd.iter())
        .flat_map(|p| p.ancestors())
        .map(|dir| dir.join("scripts/kernel.sh"))
        .find(|s| s.is_file())
        .ok_or_else(|| {
            Error::Usage(
                "--kernel is required outside the nsfilter repository (make test and make run pass it)"
                    .into(),
            )
        })?;
    let out = std::process::Command::new(&script)
        .args(["lab-args", &variant])
        .output()
        .step(|| format!("failed to run {}", script.display()))?;
    if !out.status.success() {
        return Err(Error::Setup(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    let mut words = vec![o.command.clone()];
    words.extend(
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(String::from),
    );
    let cached = parse_args(&words)?;
    o.kernel = cached.kernel;
    o.kernel_modules = o.kernel_modules.or(cached.kernel_modules);
    o.guest_root = o.guest_root.or(cached.guest_root);
    o.allow_taint = o.allow_taint.or(cached.allow_taint);
    o.expect_skip = o.expect_skip.or(cached.expect_skip);
    o.time_factor = o.time_factor.or(cached.time_factor);
    o.memory_mb = o.memory_mb.or(cached.memory_mb);
    Ok(o)
}

/// The build products of `make`, unless given on the command line.
pub(crate) fn default_paths(o: &Options) -> Result<(PathBuf, Option<PathBuf>)> {
    let kernel = o.kernel.clone().ok_or_else(|| {
        Error::Usage("--kernel is required (make test and make run pass the lab kernel)".into())
    })?;
    if !kernel.is_file() {
        return Err(Error::Setup(format!(
            "no kernel image at {} (run 'make kernel KERNEL=...')",
            kernel.display()
        )));
    }
    let module = if o.no_module && matches!(o.command.as_str(), "exec" | "shell") {
        None
    } else {
        let m = o
            .module
            .clone()
            .unwrap_or_else(|| PathBuf::from("nsfilter.ko"));
        if !m.is_file() {
            return Err(Error::Setup(format!(
                "no module at {} (run 'make')",
                m.display()
            )));
        }
        check_vermagic(&kernel, &m)?;
        Some(m)
    };
    Ok((kernel, module))
}

/// Refuses a module built for another kernel release than the image's.
pub(crate) fn check_vermagic(kernel: &Path, module: &Path) -> Result<()> {
    let image = std::fs::read(kernel).step(on("read", kernel))?;
    let ko = std::fs::read(module).step(on("read", module))?;
    let release = kernel_release(&image);
    let vermagic = module_vermagic(&ko);
    match (release, vermagic) {
        (Some(r), Some(v)) if v.split_whitespace().next() != Some(r.as_str()) => {
            Err(Error::Setup(format!(
                "{} was built for kernel '{}', but {} is '{r}' (rebuild with 'make KDIR=...')",
                module.display(),
                v.split_whitespace().next().unwrap_or(""),
                kernel.display()
            )))
        }
        (_, None) => Err(Error::Setup(format!(
            "{} is not a kernel module (no vermagic)",
            module.display()
        ))),
        _ => Ok(()),
    }
}

/// What the kernel command line gains to dodge a fault of QEMU's TCG.
///
/// From Linux 7, x86 timekeeping reads the TSC inline once it switches to it:
/// it flips a static key (`clocksource_read_inlined`), patching the timer
/// interrupt's path with `int3` while the other vCPU runs it. Under TCG that
/// vCPU has been seen to execute the `int3` after the patch was complete, an
/// `Oops: int3` in `ktime_get_update_offsets_now` at boot, right after
/// "Switched to clocksource tsc" (seen here once in a `make test
/// KERNEL=debian`). On HPET it never switches, so nothing is patched. KVM
/// and older kernels keep their clock.
pub fn tcg_workaround(accel: Accel, release: Option<&str>) -> &'static str {
    let major = release
        .and_then(|r| r.split('.').next())
        .and_then(|m| m.parse::<u32>().ok());
    match (accel, major) {
        (Accel::Tcg, Some(m)) if m >= 7 => " clocksource=hpet",
        _ => "",
    }
}

/// The release string of a kernel image: a bzImage's header points at its
/// version text; an arm64 `Image` is not compressed, and holds the banner
/// `Linux version RELEASE (...`.
pub fn kernel_release(image: &[u8]) -> Option<String> {
    let at = match Arch::of_image(image)? {
        Arch::X86_64 => {
            usize::from(u16::from_le_bytes([*image.get(0x20e)?, *image.get(0x20f)?])) + 0x200
        }
        Arch::Arm64 => {
            const BANNER: &[u8] = b"Linux version ";
            image
                .windows(BANNER.len() + 1)
                .position(|w| w.starts_with(BANNER) && w[BANNER.len()].is_ascii_digit())?
                + BANNER.len()
        }
    };
    let text = image.get(at..)?;
    let end = text.iter().position(|&b| b == b' ' || b == 0)?;
    Some(String::from_utf8_lossy(&text[..end]).into_owned())
}

/// The `vermagic=` string of a module.
pub fn module_vermagic(ko: &[u8]) -> Option<String> {
    let key = b"vermagic=";
    let at = ko.windows(key.len()).position(|w| w == key)? + key.len();
    let end = ko[at..].iter().position(|&b| b == 0)?;
    Some(String::from_utf8_lossy(&ko[at..at + end]).into_owned())
}

/// Builds the initramfs, boots the VM (KVM, falling back to TCG), judges it.
pub(crate) fn boot(
    o: &Options,
    agent_args: Vec<String>,
    default_timeout: Duration,
    mut on_line: impl FnMut(&str),
) -> Result<(vm::VmOutcome, verdict::Verdict)> {
    let o = &with_variant(o)?;
    let (kernel, module) = default_paths(o)?;
    let allowed_taint = match &o.allow_taint {
        Some(letters) => verdict::taint_mask(letters).map_err(Error::Usage)?,
        None => verdict::TAINT_OUT_OF_TREE,
    };
    let work = std::env::temp_dir().join(format!("nsfilter-lab-{}", std::process::id()));
    std::fs::create_dir_all(&work).step(on("create", &work))?;
    let initrd = work.join("initramfs.cpio");
    let console_log = work.join("console.log");
    let image = std::fs::read(&kernel).step(on("read", &kernel))?;
    let arch = Arch::of_image(&image).ok_or_else(|| {
        Error::Setup(format!(
            "{} is neither an x86 bzImage nor an arm64 Image",
            kernel.display()
        ))
    })?;
    let release = kernel_release(&image);
    drop(image);
    let programs = initramfs::Programs::for_arch(arch, o.guest_root.as_deref())?;
    initramfs::build(
        &Contents {
            programs: &programs,
            module: module.as_deref(),
            agent_args: &agent_args,
            extra: &o.add,
            kernel_modules: o.kernel_modules.as_deref(),
        },
        &initrd,
    )?;
    // A slower kernel (the debug one) stretches the command's default bound.
    let timeout = o
        .timeout
        .unwrap_or_else(|| stretched(default_timeout, o.time_factor));
    let probe = cache_dir().join("kvm-probe");
    let interactive = o.command == "shell";
    // A benchmark runs under TCG with icount (see `vm::qemu_args`), never KVM.
    let mut accel = if o.command == "bench" {
        Accel::Tcg
    } else {
        vm::choose_accel(&probe, interactive, arch)?
    };
    let (outcome, v) = loop {
        let cmdline = format!(
            "loglevel=2 log_buf_len=4M{}",
            match arch {
                Arch::X86_64 => tcg_workaround(accel, release.as_deref()),
                Arch::Arm64 => "",
            }
        );
        // Said as the VM starts, so that a long run shows what it is doing
        // and where its console goes.
        let note = format!(
            "nsfilter-lab: booting {} ({}, {}) under {}; console log: {}{}",
            kernel.display(),
            release.as_deref().unwrap_or("release unknown"),
            arch.name(),
            match accel {
                Accel::Kvm => "KVM",
                Accel::Tcg => "TCG",
            },
            console_log.display(),
            if o.keep {
                ""
            } else {
                " (kept if the run fails)"
            }
        );
        let cfg = VmConfig {
            kernel: &kernel,
            arch,
            initrd: &initrd,
            console_log: &console_log,
            timeout,
            // KVM that cannot run the guest hangs silently: give up on it
            // early. Under TCG the lab kernel reaches user space in ~1 s.
            boot_timeout: if accel == Accel::Kvm {
                Duration::from_secs(15)
            } else {
                timeout
            },
            accel,
            // Emergencies and alerts (panics, BUG, Oops) on the console at
            // once; the agent forwards warnings at the end of the run.
            cmdline: &cmdline,
            interactive,
            icount: o.command == "bench",
            memory_mb: o.memory_mb.unwrap_or(512),
            // A distribution kernel comes with its own modules, and with
            // jump labels (see `VmConfig::tcg_single_thread`).
            tcg_single_thread: o.kernel_modules.is_some(),
            note: &note,
        };
        let outcome = vm::run(&cfg, &mut on_line)?;
        if interactive {
            let _ = std::fs::remove_dir_all(&work);
            let code = outcome.qemu_status.and_then(|s| s.code());
            let v = verdict::Verdict {
                guest_exit: code,
                problems: Vec::new(),
            };
            return Ok((outcome, v));
        }
        if accel == Accel::Kvm && outcome.booted {
            vm::record_kvm(&probe, true);
        }
        if accel == Accel::Kvm && !outcome.booted {
            eprintln!("nsfilter-lab: KVM did not boot the guest; using TCG from now on");
            vm::record_kvm(&probe, false);
            accel = Accel::Tcg;
            continue;
        }
        let v = verdict::judge_allowing(&outcome, timeout.as_secs(), allowed_taint);
        break (outcome, v);
    };
    if o.keep || !v.passed() {
        eprintln!("nsfilter-lab: console log: {}", console_log.display());
        if o.keep {
            eprintln!("nsfilter-lab: initramfs: {}", initrd.display());
        } else {
            let _ = std::fs::remove_file(&initrd);
        }
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
    Ok((outcome, v))
}

/// A command's default bound on a kernel `factor` times slower than the
/// lab's; an unbounded one (`shell`'s) stays unbounded.
pub fn stretched(default: Duration, factor: Option<u32>) -> Duration {
    default.saturating_mul(factor.unwrap_or(1))
}

/// The lab's cache folder (`$NSFILTER_CACHE`, else `~/.cache/nsfilter`).
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("NSFILTER_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("nsfilter")
}
