//! The host side: command line, VM preparation, output and verdict.

use crate::boot::boot;
use crate::error::{on, Context, Error, Result};
use crate::initramfs::EXIT_MARKER;
use crate::options::{command_help, parse_args, Options, USAGE};
use crate::{guest, ktap};

use std::time::{Duration, Instant};

/// Runs the program with `args` (without the program name); returns the exit status.
pub fn main(args: &[String]) -> Result<i32> {
    if args.first().map(String::as_str) == Some("guest") {
        return Ok(guest::main());
    }
    // A flooding namespace of the budget test, started by the agent.
    if args.first().map(String::as_str) == Some("guest-flood") {
        return Ok(guest::flood());
    }
    let o = parse_args(args)?;
    if matches!(o.command.as_str(), "--help" | "-h") {
        print!("{USAGE}");
        return Ok(0);
    }
    let help = command_help(&o.command)
        .ok_or_else(|| Error::Usage(format!("unknown command '{}'", o.command)))?;
    if o.help || o.command == "help" {
        print!("{help}");
        return Ok(0);
    }
    match o.command.as_str() {
        "test" => test(&o),
        "exec" => exec(&o),
        "shell" => shell(&o),
        "bench" => bench(&o),
        _ => run(&o),
    }
}

fn test(o: &Options) -> Result<i32> {
    // The cached kernel's options, its expected skips among them.
    let o = &crate::boot::with_variant(o)?;
    let scale = if o.stress { "stress" } else { "quick" };
    let args = vec!["test".to_string(), o.filter.clone(), scale.to_string()];
    let started = Instant::now();
    // A bound, not an estimate: the debug kernel's full-size suite took 2 h
    // on a 2-core machine shared with a second stress run (2026-12-05), and
    // ran into the old 2 h bound two tests before its end.
    let default_timeout = Duration::from_secs(if o.stress { 14_400 } else { 600 });
    let (outcome, v) = boot(o, args, default_timeout, |line| {
        if is_ktap(line) {
            println!("{line}");
        }
    })?;
    let report = ktap::parse(outcome.lines.iter().map(String::as_str));
    print_kernel(&outcome.lines);
    print_summary(&report);
    let mut problems = v.problems;
    let expected = o.expect_skip.clone().unwrap_or_default();
    let unexpected: Vec<String> = report
        .results
        .iter()
        .filter_map(|r| {
            let why = r.skip.as_ref()?;
            (!expected.contains(&r.name)).then(|| format!("{} ({why})", r.name))
        })
        .collect();
    if !unexpected.is_empty() {
        problems.push(format!(
            "skipped, though this kernel is expected to run them: {} \
             (--expect-skip names the tests a kernel cannot run)",
            unexpected.join(", ")
        ));
    }
    if !report.passed() {
        let failed: Vec<_> = report
            .results
            .iter()
            .filter(|r| !r.ok)
            .map(|r| r.name.clone())
            .collect();
        let missing = report.missing();
        if report.plan.is_none() {
            problems.push("the guest printed no KTAP plan".into());
        }
        if !failed.is_empty() {
            problems.push(format!("failed: {}", failed.join(", ")));
        }
        if !missing.is_empty() {
            problems.push(format!("never reported: tests {missing:?}"));
        }
        if let Some(name) = missing.iter().find_map(|n| report.started_name(*n)) {
            problems.push(format!("{name} started and never ended"));
        }
    }
    println!("VM suite: {:.1} s wall", started.elapsed().as_secs_f64());
    finish(problems)
}

fn run(o: &Options) -> Result<i32> {
    let started = Instant::now();
    let (_, v) = boot(
        o,
        vec!["run".into()],
        Duration::from_secs(120),
        guest_printer(),
    )?;
    println!("\n(lesson: {:.1} s wall)", started.elapsed().as_secs_f64());
    finish(v.problems)
}

/// A printer of what the guest prints, without the agent's markers and
/// without the kernel's shutdown after the guest has finished. The kernel
/// writes only emergencies to the console, and those are worth seeing.
fn guest_printer() -> impl FnMut(&str) {
    let mut finished = false;
    move |line: &str| {
        finished |= line.contains(EXIT_MARKER);
        if !finished && !line.contains("@@nsfilter-") {
            println!("{line}");
        }
    }
}

fn exec(o: &Options) -> Result<i32> {
    let mut args = vec!["exec".to_string()];
    if o.no_module {
        args.push("--no-module".into());
    }
    let with_script;
    let o = match (&o.script, o.exec.is_empty()) {
        (Some(_), false) => {
            return Err(Error::Usage(
                "give either --script FILE or -- CMD, not both".into(),
            ))
        }
        (None, true) => {
            return Err(Error::Usage(
                "exec needs a command after -- or --script FILE".into(),
            ))
        }
        (None, false) => {
            args.extend(o.exec.iter().cloned());
            o
        }
        (Some(script), true) => {
            if !script.is_file() {
                return Err(Error::Setup(format!(
                    "script {} does not exist",
                    script.display()
                )));
            }
            let mut copy = o.clone();
            copy.add.push((script.clone(), SCRIPT_IN_GUEST.into()));
            args.push(format!(". {SCRIPT_IN_GUEST}"));
            with_script = copy;
            &with_script
        }
    };
    let (_, v) = boot(o, args, Duration::from_secs(120), guest_printer())?;
    // The user's command's own status is the result; kernel trouble is not.
    let kernel_trouble: Vec<_> = v
        .problems
        .iter()
        .filter(|p| !p.starts_with("the guest's command exited"))
        .cloned()
        .collect();
    if !kernel_trouble.is_empty() {
        return finish(kernel_trouble);
    }
    Ok(v.guest_exit.unwrap_or(1))
}

/// Where `exec --script` puts the script in the guest.
const SCRIPT_IN_GUEST: &str = "/etc/nsfilter/script.sh";

fn bench(o: &Options) -> Result<i32> {
    let args = vec![
        "bench".to_string(),
        o.rounds.to_string(),
        o.window_ms.to_string(),
    ];
    let started = Instant::now();
    let (outcome, v) = boot(o, args, Duration::from_secs(3600), |line| {
        if line.contains(crate::bench::MARKER) {
            println!("{}", line.trim_start_matches(crate::bench::MARKER));
        }
    })?;
    if !v.passed() {
        return finish(v.problems);
    }
    let samples = crate::bench::parse(&outcome.lines);
    let mut workflow = o.workflow.clone();
    workflow.push((
        "bench VM run (all of the above)".into(),
        started.elapsed().as_secs_f64(),
    ));
    let mut samples = samples;
    if let Some(file) = &o.host_scale {
        let text = std::fs::read_to_string(file).step(on("read", file))?;
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        samples.extend(crate::bench::parse(&lines));
    }
    let report = crate::bench::report(&samples, &workflow).map_err(Error::Verdict)?;
    println!("\n{}", report.text);
    if !report.failures.is_empty() {
        return finish(report.failures);
    }
    let json = report.json;
    if let Some(out) = &o.out {
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir).step(on("create", dir))?;
        }
        std::fs::write(out, json).step(on("write", out))?;
        println!("written to {}", out.display());
    }
    Ok(0)
}

fn shell(o: &Options) -> Result<i32> {
    let mut args = vec!["shell".to_string()];
    if o.no_module {
        args.push("--no-module".into());
    }
    // Interactive: no timeout unless asked for; the user ends it.
    let (_, v) = boot(o, args, Duration::MAX, |_| {})?;
    Ok(v.guest_exit.unwrap_or(0))
}

fn finish(problems: Vec<String>) -> Result<i32> {
    if problems.is_empty() {
        return Ok(0);
    }
    Err(Error::Verdict(format!(
        "FAILED\n  {}",
        problems.join("\n  ")
    )))
}

fn is_ktap(line: &str) -> bool {
    line.starts_with("KTAP ")
        || line.starts_with("1..")
        || line.starts_with("ok ")
        || line.starts_with("not ok ")
        || line.starts_with("# ")
}

/// The guest's kernel release and what the kernel said about taint (e.g.
/// "nsfilter: loading out-of-tree module taints kernel."), as `/init` reported.
fn print_kernel(lines: &[String]) {
    use crate::initramfs::{RELEASE_MARKER, TAINT_LOG_MARKER};
    for line in lines {
        if let Some(at) = line.find(RELEASE_MARKER) {
            let release = &line[at + RELEASE_MARKER.len()..];
            println!(
                "\nguest kernel (uname -r): {}",
                release.trim_end_matches('@')
            );
        } else if let Some(at) = line.find(TAINT_LOG_MARKER) {
            println!("  kernel: {}", &line[at + TAINT_LOG_MARKER.len()..]);
        }
    }
}

fn print_summary(report: &ktap::Report) {
    println!("\n{:<4} {:<40} result", "#", "test");
    for r in &report.results {
        let result = match (&r.skip, r.ok) {
            (Some(why), _) => format!("SKIP ({why})"),
            (None, true) => "ok".to_string(),
            (None, false) => "FAILED".to_string(),
        };
        println!("{:<4} {:<40} {result}", r.number, r.name);
    }
    for n in report.missing() {
        match report.started_name(n) {
            // The one running when the VM stopped or died.
            Some(name) => println!("{n:<4} {name:<40} MISSING (started, never ended)"),
            None => println!("{n:<4} {:<40} MISSING", "(never reported)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::*;
    use crate::vm::Accel;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn tcg_keeps_linux_7_on_hpet_and_nothing_else() {
        let on = " clocksource=hpet";
        assert_eq!(tcg_workaround(Accel::Tcg, Some("7.3.4+deb13-amd64")), on);
        assert_eq!(tcg_workaround(Accel::Tcg, Some("7.3.4")), on);
        assert_eq!(tcg_workaround(Accel::Tcg, Some("10.0.0")), on);
        assert_eq!(tcg_workaround(Accel::Tcg, Some("6.12.117")), "");
        assert_eq!(tcg_workaround(Accel::Tcg, None), "");
        assert_eq!(tcg_workaround(Accel::Tcg, Some("garbage")), "");
        assert_eq!(tcg_workaround(Accel::Kvm, Some("7.3.4")), "");
    }

    #[test]
    fn bad_options_are_refused() {
        for bad in [
            "test --timeout",
            "test --timeout zero",
            "test --timeout 0",
            "test --bogus",
            "exec --add a:rel",
        ] {
            assert!(
                matches!(parse_args(&args(bad)), Err(Error::Usage(_))),
                "{bad}"
            );
        }
        assert!(matches!(main(&args("frobnicate")), Err(Error::Usage(_))));
        assert!(matches!(
            main(&args("exec --kernel /nonexistent -- true")),
            Err(Error::Setup(_))
        ));
    }

    /// `shell` has no bound, on a slower kernel (`--time-factor`) too: it
    /// panicked on an overflow there (lab-arm64's factor 2, the debug one's 4).
    #[test]
    fn bounds_stretch_and_no_bound_stays_none() {
        assert_eq!(
            stretched(Duration::from_secs(600), Some(4)),
            Duration::from_secs(2400)
        );
        assert_eq!(
            stretched(Duration::from_secs(600), None),
            Duration::from_secs(600)
        );
        assert_eq!(stretched(Duration::MAX, Some(2)), Duration::MAX);
    }

    #[test]
    fn vermagic_and_release_are_read() {
        let mut image = vec![0u8; 0x400];
        image[0x202..0x206].copy_from_slice(b"HdrS");
        image[0x20e..0x210].copy_from_slice(&0x100u16.to_le_bytes());
        image[0x300..0x310].copy_from_slice(b"6.12.117 (root@x");
        assert_eq!(kernel_release(&image).as_deref(), Some("6.12.117"));
        // An arm64 Image: its banner, not the first "Linux version " text.
        let mut arm = vec![0u8; 0x200];
        arm[0x38..0x3c].copy_from_slice(b"ARM\x64");
        arm[0x80..0x8e].copy_from_slice(b"Linux version ");
        let banner = b"Linux version 6.12.117 (root@x) #1";
        arm[0x100..0x100 + banner.len()].copy_from_slice(banner);
        assert_eq!(kernel_release(&arm).as_deref(), Some("6.12.117"));
        let ko = b"\0license=GPL\0vermagic=6.12.117 SMP mod_unload \0";
        assert_eq!(
            module_vermagic(ko).as_deref(),
            Some("6.12.117 SMP mod_unload ")
        );
        assert_eq!(module_vermagic(b"no"), None);
    }
}
