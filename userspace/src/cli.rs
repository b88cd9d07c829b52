//! The host side: command line, VM preparation, output and verdict.

use crate::boot::boot;
use crate::error::{on, Context, Error, Result};
use crate::initramfs::EXIT_MARKER;
use crate::verdict;
use crate::{guest, ktap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const USAGE: &str = "\
nsfilter-lab: the nsfilter lab VM

Usage: nsfilter-lab <COMMAND> [OPTIONS]   (nsfilter-lab <COMMAND> --help for one)

Commands:
  run                     the lesson: five labs in the VM, nsfilter's lines by namespace
  test [--filter NAME]    run the VM test suite (KTAP), or the tests whose name contains NAME
                          (NAME,NAME...: any of them);
                          --stress runs the reliability tests at full size
  exec [OPTIONS] -- CMD   run CMD in the VM with nsfilter loaded; exit with its status
  exec --script FILE      run a shell script in the VM the same way
  shell                   an interactive shell in the VM, nsfilter loaded; Ctrl-D leaves
  bench                   per-packet cost (icount): nsfilter, the C twin, nft, a floor (make bench)
  help                    print this text

Options:
  --kernel-variant NAME   boot the cached kernel NAME (lab, lab-7.3, debian...: scripts/kernel.sh);
                          the default when no --kernel is given: $NSFILTER_KERNEL, else lab
  --kernel PATH           kernel image to boot (bzImage)
  --kernel-modules DIR    a distribution kernel's modules, loaded in the order DIR/load lists
  --allow-taint LETTERS   taints the run may add (default O: out-of-tree; Debian's kernel: OE)
  --expect-skip NAME,...  tests this kernel cannot run (test): any other SKIP fails the run;
                          --kernel-variant gives the cached kernel's list (scripts/kernel.sh)
  --memory MB             guest memory (default 512)
  --module PATH           nsfilter.ko to load
  --no-module             do not load the module (exec)
  --add HOST[:GUEST]      copy a file or folder into the VM (repeatable)
  --timeout SECONDS       stop the VM after this long (default: test 600, --stress 14400, exec 120)
  --keep                  keep the console log and initramfs, and print their paths

Environment: NSFILTER_ACCEL=kvm|tcg forces the accelerator; QEMU names the
QEMU binary. KVM is used when /dev/kvm works, TCG otherwise.
";

/// The help of one command.
pub(crate) fn command_help(command: &str) -> Option<&'static str> {
    Some(match command {
        "run" => "Usage: nsfilter-lab run [--kernel PATH] [--module PATH] [--timeout S] [--keep]\n\n\
                  Boots the lab VM, loads nsfilter and runs five labs, one after the other:\n\
                  two namespaces joined by a veth pair; the initial namespace and netns1;\n\
                  netns1 reaches the outside world through NAT; two namespaces on a bridge;\n\
                  an IPIP tunnel between two namespaces. For each it prints the lines\n\
                  nsfilter logged, grouped by namespace, and each namespace's\n\
                  /proc/net/nsfilter. docs/labs.md walks through them by hand.\n",
        "test" => "Usage: nsfilter-lab test [--filter NAME[,NAME...]] [--stress] [--kernel PATH] [--module PATH] [--timeout S] [--keep]\n\n\
                   Runs the VM test suite, or the tests whose name contains NAME (any of\n\
                   them, comma-separated). Prints KTAP\n\
                   and a summary; exits non-zero if a test failed or crashed or never reported.\n\
                   --stress runs the reliability tests at full size (100,000 fuzzed packets,\n\
                   1,000 namespaces, 100 load/unload cycles) instead of the quick sizes.\n",
        "exec" => "Usage: nsfilter-lab exec [--no-module] [--add HOST[:GUEST]]... [--kernel PATH] [--module PATH] -- CMD...\n       \
                   nsfilter-lab exec --script FILE [same options]\n\n\
                   Runs CMD (a shell command line) or the shell script FILE in the VM with\n\
                   nsfilter loaded (in the guest, `ip` is iproute2's), streams its output and\n\
                   exits with its status. Kernel trouble (panic, BUG, WARNING, taint) fails it.\n",
        "shell" => "Usage: nsfilter-lab shell [--no-module] [--add HOST[:GUEST]]... [--kernel PATH] [--module PATH]\n\n\
                    An interactive shell on the VM's serial console, nsfilter loaded. Ctrl-D or\n\
                    'exit' leaves and stops the VM (Ctrl-A X stops it at once).\n",
        "bench" => "Usage: nsfilter-lab bench --add TWIN.ko:/lib/nsfilter/nsfilter_c.ko --add NULL.ko:/lib/nsfilter/nsfilter_null.ko [--rounds N] [--window-ms MS] [--workflow NAME=SECONDS]... [--host-scale FILE] [--out FILE] [--kernel PATH] [--module PATH]\n\n\
                    Measures what nsfilter costs per packet in the VM under TCG with\n\
                    -icount shift=0,sleep=off and one CPU (guest time tied to instructions):\n\
                    UDP datagrams/s between two namespaces with (a) no module, (b) nsfilter\n\
                    filtering everything out, (c) nsfilter logging under the rate limit, (d) the\n\
                    C twin, (e) a hook that only accepts, (f) nft logging under the same limit,\n\
                    (g) nft with a rule that never matches; N alternating rounds (default 5) of\n\
                    MS guest milliseconds (default 1000); then the fast path with 1 to 1,000\n\
                    namespaces. Prints medians, spreads, own costs (x - e) and ratios, adds the\n\
                    host scaling figures in FILE, and writes it all as JSON to --out. Fails when\n\
                    a configuration's spread across rounds exceeds 0.5%.\n",
        "help" => USAGE,
        _ => return None,
    })
}

/// What the user asked for.
#[derive(Debug, PartialEq, Clone)]
pub struct Options {
    /// The subcommand.
    pub command: String,
    /// Kernel image.
    pub kernel: Option<PathBuf>,
    /// The cached kernel to boot, by its `KERNEL=` name.
    pub kernel_variant: Option<String>,
    /// A distribution kernel's modules for the guest.
    pub kernel_modules: Option<PathBuf>,
    /// Taint letters the run may add (`O` unless given).
    pub allow_taint: Option<String>,
    /// `test`: the tests this kernel cannot run; any other skip fails.
    pub expect_skip: Option<Vec<String>>,
    /// Guest memory in MiB.
    pub memory_mb: Option<u32>,
    /// Module.
    pub module: Option<PathBuf>,
    /// Load no module.
    pub no_module: bool,
    /// Extra files: host path, guest path.
    pub add: Vec<(PathBuf, String)>,
    /// Timeout override.
    pub timeout: Option<Duration>,
    /// Keep the work files.
    pub keep: bool,
    /// Test name filter.
    pub filter: String,
    /// The command for `exec`.
    pub exec: Vec<String>,
    /// The script for `exec --script`.
    pub script: Option<PathBuf>,
    /// `--help` was given.
    pub help: bool,
    /// Run the reliability tests at full size.
    pub stress: bool,
    /// `bench`: rounds of the four configurations.
    pub rounds: usize,
    /// `bench`: measured window of guest time, in milliseconds.
    pub window_ms: u64,
    /// `bench`: workflow timings measured outside, `name=seconds`.
    pub workflow: Vec<(String, f64)>,
    /// `bench`: where to write the JSON report.
    pub out: Option<PathBuf>,
    /// `bench`: the host scaling benchmark's output, to report with the rest.
    pub host_scale: Option<PathBuf>,
}

/// Parses the command line (without the program name).
pub fn parse_args(args: &[String]) -> Result<Options> {
    let mut it = args.iter();
    let command = it
        .next()
        .cloned()
        .ok_or_else(|| Error::Usage("no command given".into()))?;
    let mut o = Options {
        command,
        kernel: None,
        kernel_variant: None,
        kernel_modules: None,
        allow_taint: None,
        expect_skip: None,
        memory_mb: None,
        module: None,
        no_module: false,
        add: Vec::new(),
        timeout: None,
        keep: false,
        filter: String::new(),
        exec: Vec::new(),
        script: None,
        help: false,
        stress: false,
        rounds: 5,
        window_ms: 1000,
        workflow: Vec::new(),
        out: None,
        host_scale: None,
    };
    let value = |flag: &str, v: Option<&String>| {
        v.cloned()
            .ok_or_else(|| Error::Usage(format!("{flag} needs a value")))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--kernel" => o.kernel = Some(value(arg, it.next())?.into()),
            "--kernel-variant" => o.kernel_variant = Some(value(arg, it.next())?),
            "--kernel-modules" => o.kernel_modules = Some(value(arg, it.next())?.into()),
            "--allow-taint" => {
                let v = value(arg, it.next())?;
                verdict::taint_mask(&v).map_err(|e| Error::Usage(format!("--allow-taint: {e}")))?;
                o.allow_taint = Some(v);
            }
            "--memory" => {
                let v = value(arg, it.next())?;
                let mb = v.parse().ok().filter(|mb| *mb >= 128).ok_or_else(|| {
                    Error::Usage(format!("--memory wants MiB (at least 128), not '{v}'"))
                })?;
                o.memory_mb = Some(mb);
            }
            "--expect-skip" => {
                let v = value(arg, it.next())?;
                let names: Vec<String> = v
                    .split(',')
                    .filter(|n| !n.is_empty())
                    .map(String::from)
                    .collect();
                if let Some(bad) = names.iter().find(|n| !guest::is_test(n)) {
                    return Err(Error::Usage(format!(
                        "--expect-skip: no test is named '{bad}'"
                    )));
                }
                o.expect_skip = Some(names);
            }
            "--module" => o.module = Some(value(arg, it.next())?.into()),
            "--no-module" => o.no_module = true,
            "--help" | "-h" => o.help = true,
            "--stress" => o.stress = true,
            "--rounds" | "--window-ms" => {
                let v = value(arg, it.next())?;
                let n: u64 = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    Error::Usage(format!("{arg} wants a positive number, not '{v}'"))
                })?;
                if arg == "--rounds" {
                    o.rounds = usize::try_from(n).unwrap_or(usize::MAX);
                } else {
                    o.window_ms = n;
                }
            }
            "--workflow" => {
                let v = value(arg, it.next())?;
                let (name, secs) = v
                    .rsplit_once('=')
                    .and_then(|(n, s)| Some((n.to_string(), s.parse::<f64>().ok()?)))
                    .ok_or_else(|| {
                        Error::Usage(format!("--workflow wants NAME=SECONDS, not '{v}'"))
                    })?;
                o.workflow.push((name, secs));
            }
            "--out" => o.out = Some(value(arg, it.next())?.into()),
            "--host-scale" => o.host_scale = Some(value(arg, it.next())?.into()),
            "--script" => o.script = Some(value(arg, it.next())?.into()),
            "--keep" => o.keep = true,
            "--filter" => o.filter = value(arg, it.next())?,
            "--timeout" => {
                let v = value(arg, it.next())?;
                let secs: u64 = v.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                    Error::Usage(format!("--timeout wants a number of seconds, not '{v}'"))
                })?;
                o.timeout = Some(Duration::from_secs(secs));
            }
            "--add" => {
                let v = value(arg, it.next())?;
                let (host, guest) = match v.split_once(':') {
                    Some((h, g)) => (h.to_string(), g.to_string()),
                    None => {
                        let name = Path::new(&v)
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .ok_or_else(|| Error::Usage(format!("--add: no file name in '{v}'")))?;
                        (v.clone(), format!("/root/{name}"))
                    }
                };
                if !guest.starts_with('/') {
                    return Err(Error::Usage(format!(
                        "--add: guest path '{guest}' must be absolute"
                    )));
                }
                o.add.push((PathBuf::from(host), guest));
            }
            "--" => {
                o.exec = it.by_ref().cloned().collect();
            }
            other => return Err(Error::Usage(format!("unknown option '{other}'"))),
        }
    }
    Ok(o)
}

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
        println!("{n:<4} {:<40} MISSING", "(never reported)");
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
    fn options_parse() {
        let o = parse_args(&args(
            "exec --kernel k --timeout 9 --add /x/tool --add a:/b -- ip netns",
        ))
        .unwrap();
        assert_eq!(o.command, "exec");
        assert_eq!(o.kernel, Some(PathBuf::from("k")));
        assert_eq!(o.timeout, Some(Duration::from_secs(9)));
        assert_eq!(
            o.add,
            vec![
                (PathBuf::from("/x/tool"), "/root/tool".to_string()),
                (PathBuf::from("a"), "/b".to_string())
            ]
        );
        assert_eq!(o.exec, args("ip netns"));
    }

    #[test]
    fn expected_skips_name_tests_of_the_suite() {
        let o = parse_args(&args(
            "test --expect-skip fault_injection_netns_and_insmod,load_unload",
        ))
        .unwrap();
        assert_eq!(
            o.expect_skip,
            Some(vec![
                "fault_injection_netns_and_insmod".to_string(),
                "load_unload".to_string()
            ])
        );
        // "," is the empty list: nothing may skip.
        let o = parse_args(&args("test --expect-skip ,")).unwrap();
        assert_eq!(o.expect_skip, Some(vec![]));
        assert_eq!(parse_args(&args("test")).unwrap().expect_skip, None);
        for bad in ["test --expect-skip fault_injection", "test --expect-skip"] {
            assert!(
                matches!(parse_args(&args(bad)), Err(Error::Usage(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn kernel_options_parse() {
        let o = parse_args(&args(
            "test --kernel-variant debian --kernel-modules /m --allow-taint OE --memory 1024",
        ))
        .unwrap();
        assert_eq!(o.kernel_variant.as_deref(), Some("debian"));
        assert_eq!(o.kernel_modules, Some(PathBuf::from("/m")));
        assert_eq!(o.allow_taint.as_deref(), Some("OE"));
        assert_eq!(o.memory_mb, Some(1024));
        for bad in [
            "test --allow-taint Q",
            "test --memory 12",
            "test --memory x",
        ] {
            assert!(
                matches!(parse_args(&args(bad)), Err(Error::Usage(_))),
                "{bad}"
            );
        }
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

    #[test]
    fn vermagic_and_release_are_read() {
        let mut image = vec![0u8; 0x400];
        image[0x202..0x206].copy_from_slice(b"HdrS");
        image[0x20e..0x210].copy_from_slice(&0x100u16.to_le_bytes());
        image[0x300..0x310].copy_from_slice(b"6.12.117 (root@x");
        assert_eq!(kernel_release(&image).as_deref(), Some("6.12.117"));
        let ko = b"\0license=GPL\0vermagic=6.12.117 SMP mod_unload \0";
        assert_eq!(
            module_vermagic(ko).as_deref(),
            Some("6.12.117 SMP mod_unload ")
        );
        assert_eq!(module_vermagic(b"no"), None);
    }
}
