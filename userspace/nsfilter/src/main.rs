//! The `nsfilter` command: network namespaces by name, and the nsfilter
//! module's log, counters and filters; see `nsfilter --help`.
//!
//! std only, like the lab. Every path it touches comes from a [`Root`], so
//! the tests run each command over a fake `/proc`, `/run/netns`, `/sys` and
//! `/dev/kmsg`.

mod cgroup;
mod cli;
mod error;
mod filter;
mod json;
mod kmsg;
mod log;
mod logline;
mod netns;
mod root;
mod stat;
mod sys;
mod table;

use cli::Command;
use error::{Error, Result};
use root::Root;
use std::io::{self, Write};
use std::process::ExitCode;
use table::{Align, Table};

/// How many processes `nsfilter netns` names for each namespace.
const SHOWN_PROCESSES: usize = 3;

/// `nsfilter netns`: the namespaces as a table.
fn list(root: &Root, out: &mut dyn Write, err: &mut dyn Write) -> Result<()> {
    let machine = netns::discover(root);
    let mut table = Table::new(&[
        ("NETNS", Align::Left),
        ("NAMES", Align::Left),
        ("CONTAINERS", Align::Left),
        ("SERVICES", Align::Left),
        ("PROCESSES", Align::Left),
    ]);
    let or_dash = |v: Vec<String>| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.join(",")
        }
    };
    for ns in &machine.namespaces {
        let mut names = Vec::new();
        if ns.initial {
            names.push("(initial)".to_string());
        }
        names.extend(ns.names.iter().cloned());
        names.extend(ns.mounts.iter().map(|m| m.display().to_string()));
        let containers = ns.containers.iter().map(|c| c.label()).collect();
        let mut procs: Vec<String> = ns
            .processes
            .iter()
            .take(SHOWN_PROCESSES)
            .map(|p| format!("{} {}", p.pid, p.comm))
            .collect();
        if ns.processes.len() > SHOWN_PROCESSES {
            procs.push(format!("+{} more", ns.processes.len() - SHOWN_PROCESSES));
        }
        table.row(vec![
            ns.inode.to_string(),
            or_dash(names),
            or_dash(containers),
            or_dash(ns.services.clone()),
            if procs.is_empty() {
                "-".into()
            } else {
                procs.join(", ")
            },
        ]);
    }
    let mut text = String::new();
    table
        .write(&mut text)
        .map_err(|_| Error::Failed("cannot format the table".into()))?;
    out.write_all(text.as_bytes())
        .map_err(|e| Error::Failed(format!("cannot write the output: {e}")))?;
    if machine.hidden > 0 {
        let _ = writeln!(
            err,
            "nsfilter: note: {} could not be inspected (permission denied; run as root)",
            match machine.hidden {
                1 => "1 process".to_string(),
                n => format!("{n} processes"),
            }
        );
    }
    Ok(())
}

/// Runs the command line `args` (without the program name); returns the
/// exit code. Errors go to `err` as one line.
fn run(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let result = cli::parse(args).and_then(|args| {
        let root = args.root.as_deref().map_or_else(Root::system, Root::under);
        match args.command {
            Command::Help(text) => out
                .write_all(text.as_bytes())
                .map_err(|e| Error::Failed(format!("cannot write the output: {e}"))),
            Command::Netns => list(&root, out, err),
            Command::Log(opts) => log::run(&root, &opts, out, err),
            Command::Stat => stat::run(&root, out, err),
            Command::Filter(opts) => filter::run(&root, &opts, out),
        }
    });
    match result {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(err, "nsfilter: error: {e}");
            e.exit_code()
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = run(&args, &mut io::stdout().lock(), &mut io::stderr().lock());
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use netns::tests::sample;

    fn nsfilter(args: &[&str]) -> (i32, String, String) {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(&args, &mut out, &mut err);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn netns_table() {
        let f = sample();
        let root = f.dir.0.to_str().unwrap();
        let (code, out, err) = nsfilter(&["--root", root, "netns"]);
        assert_eq!((code, err.as_str()), (0, ""));
        assert_eq!(
            out,
            "\
NETNS       NAMES                     CONTAINERS           SERVICES  PROCESSES
4026531840  (initial)                 -                    -         1 systemd, 2 kthreadd, 10 sshd, +1 more
4026532124  blue                      -                    -         300 sleep
4026532200  red                       -                    -         -
4026532300  /run/docker/netns/a1b2c3  docker:3f1c2a9b8d7e  -         400 nginx, 401 nginx
"
        );
    }

    #[test]
    fn errors_are_one_line_with_exit_codes() {
        let f = sample();
        let root = f.dir.0.to_str().unwrap();
        let cases: [(&[&str], i32, &str); 6] = [
            (&["nope"], 2, "nsfilter: error: unknown command 'nope'"),
            (
                &["netns", "-x"],
                2,
                "nsfilter: error: unknown option '-x' for 'netns'",
            ),
            (
                &["--root", root, "log", "--netns", "green"],
                2,
                "nsfilter: error: unknown network namespace 'green'",
            ),
            (
                &["--root", root, "filter", "--netns", "green"],
                2,
                "nsfilter: error: unknown network namespace 'green'",
            ),
            (
                &["--root", root, "filter", "--netns", "blue"],
                1,
                "nsfilter: error: module nsfilter is not loaded (no /sys/module/nsfilter)",
            ),
            (
                &["--root", root, "stat"],
                1,
                "nsfilter: error: module nsfilter is not loaded (no /sys/module/nsfilter)",
            ),
        ];
        for (args, want_code, want_err) in cases {
            let (code, out, err) = nsfilter(args);
            assert_eq!(code, want_code, "{args:?}: {err}");
            assert!(err.starts_with(want_err), "{args:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{err}");
            assert_eq!(out, "");
        }
        let (code, out, _) = nsfilter(&["log", "--help"]);
        assert_eq!(code, 0);
        assert!(out.starts_with("Usage: nsfilter log"));
    }
}
