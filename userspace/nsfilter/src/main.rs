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

/// A namespace as a JSON object (`nsfilter netns --json`).
fn netns_json(ns: &netns::Namespace) -> json::Value {
    use json::Value;
    let strings = |v: Vec<String>| Value::Arr(v.into_iter().map(Value::Str).collect());
    let mut o = Value::object();
    o.insert("netns", Value::Num(ns.inode));
    o.insert("initial", Value::Bool(ns.initial));
    o.insert("names", strings(ns.names.clone()));
    o.insert(
        "mounts",
        strings(ns.mounts.iter().map(|m| m.display().to_string()).collect()),
    );
    o.insert(
        "containers",
        strings(ns.containers.iter().map(|c| c.label()).collect()),
    );
    o.insert("services", strings(ns.services.clone()));
    o.insert(
        "processes",
        Value::Arr(
            ns.processes
                .iter()
                .map(|p| {
                    let mut o = Value::object();
                    o.insert("pid", Value::Num(u64::from(p.pid)));
                    o.insert("comm", Value::str(p.comm.clone()));
                    o
                })
                .collect(),
        ),
    );
    o
}

/// `nsfilter netns`: the namespaces as a table, or as JSON lines.
fn list(root: &Root, json: bool, out: &mut dyn Write, err: &mut dyn Write) -> Result<()> {
    let machine = netns::discover(root);
    if json {
        for ns in &machine.namespaces {
            writeln!(out, "{}", netns_json(ns))
                .map_err(|e| Error::Failed(format!("cannot write the output: {e}")))?;
        }
        return hidden_note(&machine, err);
    }
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
    hidden_note(&machine, err)
}

/// Says on `err` how many processes could not be inspected, if any.
fn hidden_note(machine: &netns::Machine, err: &mut dyn Write) -> Result<()> {
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
            Command::Version => out
                .write_all(concat!("nsfilter ", env!("CARGO_PKG_VERSION"), "\n").as_bytes())
                .map_err(|e| Error::Failed(format!("cannot write the output: {e}"))),
            Command::Netns { json } => list(&root, json, out, err),
            Command::Log(opts) => log::run(&root, &opts, out, err),
            Command::Stat(opts) => stat::run(&root, &opts, out, err),
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
    fn netns_json_and_version() {
        let f = sample();
        let root = f.dir.0.to_str().unwrap();
        let (code, out, err) = nsfilter(&["--root", root, "netns", "--json"]);
        assert_eq!((code, err.as_str()), (0, ""));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert_eq!(
            lines[1],
            "{\"netns\":4026532124,\"initial\":false,\"names\":[\"blue\"],\"mounts\":[],\
             \"containers\":[],\"services\":[],\"processes\":[{\"pid\":300,\"comm\":\"sleep\"}]}"
        );
        assert!(
            lines[3].contains("\"mounts\":[\"/run/docker/netns/a1b2c3\"],\"containers\":[\"docker:3f1c2a9b8d7e\"]"),
            "{}",
            lines[3]
        );
        let (code, out, _) = nsfilter(&["--version"]);
        assert_eq!((code, out.as_str()), (0, "nsfilter 0.1.0\n"));
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
