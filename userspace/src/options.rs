//! The lab's command line: its commands, their options and help texts.
//! `cli` runs what it describes; `boot` reads the options too.

use crate::error::{Error, Result};
use crate::{guest, verdict};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) const USAGE: &str = "\
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
  --kernel PATH           kernel image to boot (bzImage, or an arm64 Image)
  --kernel-modules DIR    a distribution kernel's modules, loaded in the order DIR/load lists
  --guest-root DIR        for a kernel of another architecture than the host's: a root of its
                          Debian packages with busybox, ip and nft (scripts/guest-root.sh)
  --allow-taint LETTERS   taints the run may add (default O: out-of-tree; Debian's kernel: OE)
  --expect-skip NAME,...  tests this kernel cannot run (test): any other SKIP fails the run;
                          --kernel-variant gives the cached kernel's list (scripts/kernel.sh)
  --time-factor N         the kernel runs N times slower than the lab's (the debug kernel):
                          default bounds are N times longer
  --memory MB             guest memory (default 512)
  --module PATH           nsfilter.ko to load
  --no-module             do not load the module (exec)
  --add HOST[:GUEST]      copy a file or folder into the VM (repeatable)
  --timeout SECONDS       stop the VM after this long (default: test 600, --stress 14400, exec 120)
  --keep                  keep the console log and initramfs, and print their paths

Options apply to the commands that use them; any other is refused. Both
--opt VALUE and --opt=VALUE are accepted.

Environment: NSFILTER_ACCEL=kvm|tcg forces the accelerator; QEMU names the
QEMU binary. KVM is used when /dev/kvm works, TCG otherwise.

Exit status: 0 passed; 1 failed (a test, or the VM's verdict: a kernel report,
a new taint, a timeout); 2 usage error; 3 the lab could not run (no kernel
image, no QEMU, an I/O error). exec exits with the command's own status when
the VM's verdict is clean.
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
    /// The guest's programs, for another architecture than the host's.
    pub guest_root: Option<PathBuf>,
    /// Taint letters the run may add (`O` unless given).
    pub allow_taint: Option<String>,
    /// `test`: the tests this kernel cannot run; any other skip fails.
    pub expect_skip: Option<Vec<String>>,
    /// How many times slower than the lab kernel this kernel runs: the
    /// default bounds are that many times longer.
    pub time_factor: Option<u32>,
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
        guest_root: None,
        allow_taint: None,
        expect_skip: None,
        time_factor: None,
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
    while let Some(whole) = it.next() {
        // `--name=value` is `--name value`.
        let (arg, inline) = match whole.split_once('=') {
            Some((flag, v)) if flag.starts_with("--") => (flag, Some(v.to_string())),
            _ => (whole.as_str(), None),
        };
        if !EVERY.contains(&arg) && !SOME.contains(&arg) {
            return Err(Error::Usage(format!("unknown option '{arg}'")));
        }
        if !applies(&o.command, arg) {
            return Err(Error::Usage(format!(
                "option '{arg}' does not apply to '{}' (see 'nsfilter-lab {} --help')",
                o.command, o.command
            )));
        }
        let given = inline.clone();
        let value = |flag: &str, next: Option<&String>| {
            given
                .clone()
                .or_else(|| next.cloned())
                .ok_or_else(|| Error::Usage(format!("{flag} needs a value")))
        };
        let takes_value = !matches!(
            arg,
            "--no-module" | "--help" | "-h" | "--stress" | "--keep" | "--"
        );
        if !takes_value && inline.is_some() {
            return Err(Error::Usage(format!("{arg} takes no value ('{whole}')")));
        }
        match arg {
            "--kernel" => {
                o.kernel = Some(value(arg, if inline.is_some() { None } else { it.next() })?.into())
            }
            "--kernel-variant" => {
                o.kernel_variant =
                    Some(value(arg, if inline.is_some() { None } else { it.next() })?)
            }
            "--kernel-modules" => {
                o.kernel_modules =
                    Some(value(arg, if inline.is_some() { None } else { it.next() })?.into())
            }
            "--guest-root" => {
                o.guest_root =
                    Some(value(arg, if inline.is_some() { None } else { it.next() })?.into())
            }
            "--allow-taint" => {
                let v = value(arg, if inline.is_some() { None } else { it.next() })?;
                verdict::taint_mask(&v).map_err(|e| Error::Usage(format!("--allow-taint: {e}")))?;
                o.allow_taint = Some(v);
            }
            "--memory" => {
                let v = value(arg, if inline.is_some() { None } else { it.next() })?;
                let mb = v.parse().ok().filter(|mb| *mb >= 128).ok_or_else(|| {
                    Error::Usage(format!("--memory wants MiB (at least 128), not '{v}'"))
                })?;
                o.memory_mb = Some(mb);
            }
            "--expect-skip" => {
                let v = value(arg, if inline.is_some() { None } else { it.next() })?;
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
            "--time-factor" => {
                let v = value(arg, if inline.is_some() { None } else { it.next() })?;
                let n = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or_else(|| {
                        Error::Usage(format!(
                            "--time-factor wants a whole number from 1 to 100, not '{v}'"
                        ))
                    })?;
                o.time_factor = Some(n);
            }
            "--module" => {
                o.module = Some(value(arg, if inline.is_some() { None } else { it.next() })?.into())
            }
            "--no-module" => o.no_module = true,
            "--help" | "-h" => o.help = true,
            "--stress" => o.stress = true,
            "--rounds" | "--window-ms" => {
                let v = value(arg, if inline.is_some() { None } else { it.next() })?;
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
                let v = value(arg, if inline.is_some() { None } else { it.next() })?;
                let (name, secs) = v
                    .rsplit_once('=')
                    .and_then(|(n, s)| Some((n.to_string(), s.parse::<f64>().ok()?)))
                    .ok_or_else(|| {
                        Error::Usage(format!("--workflow wants NAME=SECONDS, not '{v}'"))
                    })?;
                o.workflow.push((name, secs));
            }
            "--out" => {
                o.out = Some(value(arg, if inline.is_some() { None } else { it.next() })?.into())
            }
            "--host-scale" => {
                o.host_scale =
                    Some(value(arg, if inline.is_some() { None } else { it.next() })?.into())
            }
            "--script" => {
                o.script = Some(value(arg, if inline.is_some() { None } else { it.next() })?.into())
            }
            "--keep" => o.keep = true,
            "--filter" => o.filter = value(arg, if inline.is_some() { None } else { it.next() })?,
            "--timeout" => {
                let v = value(arg, if inline.is_some() { None } else { it.next() })?;
                let secs: u64 = v.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                    Error::Usage(format!("--timeout wants a number of seconds, not '{v}'"))
                })?;
                o.timeout = Some(Duration::from_secs(secs));
            }
            "--add" => {
                let v = value(arg, if inline.is_some() { None } else { it.next() })?;
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

/// The options of every command that boots the VM: the kernel's (`scripts/
/// kernel.sh lab-args` gives them for every command), the module's,
/// `--timeout`, `--keep` and `--help`.
const EVERY: &[&str] = &[
    "--kernel-variant",
    "--kernel",
    "--kernel-modules",
    "--guest-root",
    "--allow-taint",
    "--expect-skip",
    "--time-factor",
    "--memory",
    "--module",
    "--timeout",
    "--keep",
    "--help",
    "-h",
];

/// The options of some commands only (see [`applies`]).
const SOME: &[&str] = &[
    "--filter",
    "--stress",
    "--no-module",
    "--add",
    "--script",
    "--",
    "--rounds",
    "--window-ms",
    "--workflow",
    "--out",
    "--host-scale",
];

/// Whether option `flag` applies to `command`: those of [`EVERY`] to every
/// command that boots the VM, the rest to the commands that use them.
/// Unknown commands are refused later, by name.
fn applies(command: &str, flag: &str) -> bool {
    EVERY.contains(&flag)
        || match command {
            "test" => matches!(flag, "--filter" | "--stress"),
            "exec" => matches!(flag, "--no-module" | "--add" | "--script" | "--"),
            "shell" => matches!(flag, "--no-module" | "--add"),
            "bench" => matches!(
                flag,
                "--add" | "--rounds" | "--window-ms" | "--workflow" | "--out" | "--host-scale"
            ),
            "run" | "help" => false,
            _ => true,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
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
    fn options_apply_to_their_commands_only() {
        for bad in [
            "run --filter x",
            "run --stress",
            "shell --script s",
            "test --add /x",
            "test --rounds 3",
            "bench --filter x",
            "exec --stress -- true",
        ] {
            match parse_args(&args(bad)) {
                Err(Error::Usage(msg)) => {
                    assert!(msg.contains("does not apply to"), "{bad}: {msg}")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        // The kernel's options go with every command (make passes them).
        for good in [
            "run --kernel k --expect-skip load_unload --allow-taint OE --memory 256",
            "shell --no-module --add /x",
            "bench --rounds 2 --add /x --out o",
            "test --filter a --stress --timeout 9",
        ] {
            assert!(parse_args(&args(good)).is_ok(), "{good}");
        }
    }

    #[test]
    fn equals_form_and_exit_codes() {
        let o = parse_args(&args("test --filter=load --timeout=9 --kernel=k")).unwrap();
        assert_eq!(o.filter, "load");
        assert_eq!(o.timeout, Some(Duration::from_secs(9)));
        assert_eq!(o.kernel, Some(PathBuf::from("k")));
        // The value is not taken from the next argument when given inline.
        let o = parse_args(&args("exec --add=/x/tool -- ip netns")).unwrap();
        assert_eq!(
            o.add,
            vec![(PathBuf::from("/x/tool"), "/root/tool".to_string())]
        );
        assert_eq!(o.exec, args("ip netns"));
        for bad in ["test --stress=1", "test --frob=1", "test --filter="] {
            let e = parse_args(&args(bad));
            assert!(
                matches!(e, Err(Error::Usage(_))) || bad == "test --filter=",
                "{bad}"
            );
        }
        let usage = parse_args(&args("test --frob")).unwrap_err();
        assert_eq!(usage.exit_code(), 2);
        assert!(
            usage.to_string().ends_with("(try 'nsfilter-lab --help')"),
            "{usage}"
        );
        assert_eq!(Error::Verdict("x".into()).exit_code(), 1);
        assert_eq!(Error::Setup("x".into()).exit_code(), 3);
    }
}
