//! The command line: subcommands, their options and their `--help` texts.

use crate::error::{usage, Result};
use crate::{filter, log, stat};
use std::path::PathBuf;

/// What the user asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Print this help text.
    Help(&'static str),
    /// `nsfilter --version`.
    Version,
    /// `nsfilter netns`, as JSON lines if true.
    Netns {
        /// `--json`.
        json: bool,
    },
    /// `nsfilter log`.
    Log(log::Options),
    /// `nsfilter stat`.
    Stat(stat::Options),
    /// `nsfilter filter`.
    Filter(filter::Options),
}

/// The parsed command line.
#[derive(Debug, PartialEq, Eq)]
pub struct Args {
    /// `--root DIR`, for tests.
    pub root: Option<PathBuf>,
    /// The subcommand.
    pub command: Command,
}

/// `nsfilter --help`.
pub const HELP: &str = "\
nsfilter: network namespaces by name, and the nsfilter module's log, counters and filters

Usage: nsfilter [--root DIR] COMMAND [OPTIONS]

Commands:
  netns     every network namespace: inode, 'ip netns' names, containers, services, processes
  log       nsfilter's kernel log lines, with the names of their namespace
  stat      each namespace's /proc/net/nsfilter counters, and the total
  filter    set which namespaces, ports and protocols the module logs

A namespace (NAME below) is an 'ip netns' name, an inode number (NETNS= in
the log), a container as 'nsfilter netns' shows it (docker:3f1c2a9b8d7e) or
a unique prefix of its id, a systemd service (NAME.service), or the path of
a namespace mount.

Options:
  --root DIR     read proc/, run/netns/, sys/ and dev/kmsg under DIR, not / (tests)
  -h, --help     this text; 'nsfilter COMMAND --help' for a command's
  -V, --version  the version

Exit status: 0 done, 1 failed (the module is not loaded, no permission, ...),
2 usage error (unknown command, option or namespace).
Errors are one line on stderr starting with 'nsfilter: error: '.
";

const NETNS_HELP: &str = "\
Usage: nsfilter netns [--json]

Lists every network namespace that a process is in or a mount holds, one per
line: its inode (NETNS= in the log; '(initial)' marks pid 1's), its names
('ip netns' names from /run/netns, other mounts such as Docker's), the
containers of its processes (Docker, Podman, containerd, CRI-O, Kubernetes,
from /proc/PID/cgroup), the systemd services that run in it (a service with
PrivateNetwork=yes has a namespace of its own; the initial namespace lists
none) and its first processes. Run as root to see them all.

Options:
  --json       one JSON object per namespace and line: \"netns\", \"initial\",
               \"names\", \"mounts\", \"containers\", \"services\", and
               \"processes\" (every one, as {\"pid\",\"comm\"})
  -h, --help   this text
";

const LOG_HELP: &str = "\
Usage: nsfilter log [--follow] [--netns NAME]... [--json] [--kmsg FILE]

Prints nsfilter's lines from /dev/kmsg (other lines are left out) with the
kernel's timestamp, as dmesg does, and NAME= with the names of the line's
namespace ('ip netns' names, then containers, then services, comma-separated)
inserted right after NETNS=<inode>; the rest of the line is unchanged, so
readers of the kernel LOG format still parse it:

  [    3.000001] nsfilter: NETNS=4026532124 NAME=blue IN=vnet1 OUT= MAC=...

A rate limit notice gets NAME= after its inode too. A line that does not
parse is printed unchanged, never dropped.

Options:
  -f, --follow       after the lines the kernel holds, wait for new ones
  -n, --netns NAME   only this namespace's lines (repeat, or NAME,NAME);
                     notices without a namespace are then left out
  --json             one JSON object per line: \"kind\" (packet, ratelimit,
                     notice, raw), \"timestamp_us\", \"seq\", \"netns\", \"names\";
                     a packet's fields under their own keys (flags as true,
                     numbers as numbers), the transport header's from PROTO=
                     on in \"transport\", an ICMP error's packet in
                     \"transport\".\"inner\"; a line that does not parse as
                     {\"kind\":\"raw\",\"raw\":\"...\"}
  --kmsg FILE        read records saved from /dev/kmsg (dd if=/dev/kmsg
                     iflag=nonblock of=FILE) instead of the live log
  -h, --help         this text

Reading /dev/kmsg needs root where kernel.dmesg_restrict is 1.
";

const STAT_HELP: &str = "\
Usage: nsfilter stat [--all] [--json]

One row per network namespace with its names and the counters of its
/proc/net/nsfilter (read through a process in it, or by entering it, which
needs root), then their total. A counter that is 0 in every namespace is
left out (a note on stderr says which), but for packets_ipv4, packets_ipv6
and logged. Fails if the module is not loaded.

Options:
  -a, --all    every counter, 0 or not
  --json       one JSON object per namespace and line: \"netns\", \"initial\",
               \"names\", and \"counters\" (every one, by its name), or
               \"error\" when they could not be read
  -h, --help   this text
";

const FILTER_HELP: &str = "\
Usage: nsfilter filter [--netns NAME]... [--ports LIST] [--protocols LIST] [--clear]

Sets the module's filters in /sys/module/nsfilter/parameters/ (needs root):
only packets that match every non-empty list are logged. Namespace names
are written as their inodes. Without options, shows the lists.

Options:
  -n, --netns NAME     log only these namespaces (repeat, or NAME,NAME; up to 16)
  -p, --ports LIST     log only packets from or to these ports: 53,80 (up to 16)
  --protocols LIST     log only these: tcp, udp, udplite, sctp, icmp, icmpv6, other
  --clear              empty the lists not given (all namespaces, ports, protocols)
  -h, --help           this text

An empty LIST (--ports '') empties that list.
";

/// The value of option `name`, from `--name=VALUE` or the next argument.
fn value(
    name: &str,
    inline: Option<&str>,
    rest: &mut std::slice::Iter<'_, String>,
) -> Result<String> {
    match inline {
        Some(v) => Ok(v.to_string()),
        None => rest
            .next()
            .cloned()
            .ok_or_else(|| usage(format!("option {name} needs a value"))),
    }
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Args> {
    let mut rest = args.iter();
    let mut root = None;
    let command = loop {
        let Some(arg) = rest.next() else {
            return Err(usage("no command given (try 'nsfilter --help')"));
        };
        let (flag, inline) = split(arg);
        match flag {
            "-h" | "--help" | "help" => return Ok(Args { root, command: Command::Help(HELP) }),
            "-V" | "--version" if inline.is_none() => return Ok(Args { root, command: Command::Version }),
            "--root" => root = Some(PathBuf::from(value("--root", inline, &mut rest)?)),
            "netns" | "log" | "stat" | "filter" => break flag,
            f if f.starts_with('-') => return Err(usage(format!("unknown option '{f}' (try 'nsfilter --help')"))),
            other => {
                return Err(usage(format!(
                    "unknown command '{other}': want netns, log, stat or filter (try 'nsfilter --help')"
                )))
            }
        }
    };
    let help = match command {
        "netns" => NETNS_HELP,
        "log" => LOG_HELP,
        "stat" => STAT_HELP,
        _ => FILTER_HELP,
    };
    let mut log = log::Options::default();
    let mut filter = filter::Options::default();
    let mut stat = stat::Options::default();
    let mut netns_json = false;
    while let Some(arg) = rest.next() {
        let (flag, inline) = split(arg);
        match (command, flag) {
            (_, "-h" | "--help") => {
                return Ok(Args {
                    root,
                    command: Command::Help(help),
                })
            }
            ("log", "-f" | "--follow") if inline.is_none() => log.follow = true,
            ("log", "--json") if inline.is_none() => log.json = true,
            ("log", "--kmsg") => log.kmsg = Some(value(flag, inline, &mut rest)?.into()),
            ("log", "-n" | "--netns") => log.netns.push(value(flag, inline, &mut rest)?),
            ("netns", "--json") if inline.is_none() => netns_json = true,
            ("stat", "--json") if inline.is_none() => stat.json = true,
            ("stat", "-a" | "--all") if inline.is_none() => stat.all = true,
            ("filter", "-n" | "--netns") => filter.netns.push(value(flag, inline, &mut rest)?),
            ("filter", "-p" | "--ports") => filter.ports = Some(value(flag, inline, &mut rest)?),
            ("filter", "--protocols") => filter.protocols = Some(value(flag, inline, &mut rest)?),
            ("filter", "--clear") if inline.is_none() => filter.clear = true,
            (_, f) if f.starts_with('-') => {
                return Err(usage(format!(
                    "unknown option '{arg}' for '{command}' (try 'nsfilter {command} --help')"
                )))
            }
            (_, _) => {
                return Err(usage(format!(
                    "unexpected argument '{arg}' for '{command}' (try 'nsfilter {command} --help')"
                )))
            }
        }
    }
    let command = match command {
        "netns" => Command::Netns { json: netns_json },
        "log" => Command::Log(log),
        "stat" => Command::Stat(stat),
        _ => Command::Filter(filter),
    };
    Ok(Args { root, command })
}

/// `--name=value` into `--name` and `value`; other arguments as they are.
fn split(arg: &str) -> (&str, Option<&str>) {
    match arg.split_once('=') {
        Some((flag, v)) if flag.starts_with("--") => (flag, Some(v)),
        _ => (arg, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Result<Args> {
        parse(&s.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn subcommands_and_options() {
        assert_eq!(
            args(&["netns"]).unwrap().command,
            Command::Netns { json: false }
        );
        assert_eq!(
            args(&["netns", "--json"]).unwrap().command,
            Command::Netns { json: true }
        );
        assert_eq!(
            args(&["stat"]).unwrap().command,
            Command::Stat(stat::Options::default())
        );
        assert_eq!(
            args(&["stat", "-a", "--json"]).unwrap().command,
            Command::Stat(stat::Options {
                all: true,
                json: true
            })
        );
        assert_eq!(args(&["--version"]).unwrap().command, Command::Version);
        assert_eq!(args(&["-V"]).unwrap().command, Command::Version);
        let a = args(&[
            "--root",
            "/tmp/x",
            "log",
            "-f",
            "--netns",
            "blue",
            "--netns=red",
            "--json",
        ])
        .unwrap();
        assert_eq!(a.root, Some(PathBuf::from("/tmp/x")));
        assert_eq!(
            a.command,
            Command::Log(log::Options {
                follow: true,
                netns: vec!["blue".into(), "red".into()],
                json: true,
                kmsg: None,
            })
        );
        let a = args(&[
            "filter",
            "-n",
            "blue",
            "--ports=53,80",
            "--protocols",
            "udp",
            "--clear",
        ])
        .unwrap();
        assert_eq!(
            a.command,
            Command::Filter(filter::Options {
                netns: vec!["blue".into()],
                ports: Some("53,80".into()),
                protocols: Some("udp".into()),
                clear: true
            })
        );
    }

    #[test]
    fn help_everywhere() {
        assert_eq!(args(&["--help"]).unwrap().command, Command::Help(HELP));
        assert_eq!(args(&["-h"]).unwrap().command, Command::Help(HELP));
        assert_eq!(args(&["help"]).unwrap().command, Command::Help(HELP));
        assert_eq!(
            args(&["netns", "--help"]).unwrap().command,
            Command::Help(NETNS_HELP)
        );
        assert_eq!(
            args(&["log", "-h"]).unwrap().command,
            Command::Help(LOG_HELP)
        );
        assert_eq!(
            args(&["stat", "--help"]).unwrap().command,
            Command::Help(STAT_HELP)
        );
        assert_eq!(
            args(&["filter", "-n", "x", "--help"]).unwrap().command,
            Command::Help(FILTER_HELP)
        );
        assert!(HELP.contains("Exit status: 0 done, 1 failed"));
    }

    #[test]
    fn usage_errors() {
        let cases: [(&[&str], &str); 9] = [
            (&[], "no command given (try 'nsfilter --help')"),
            (&["frobnicate"], "unknown command 'frobnicate': want netns, log, stat or filter (try 'nsfilter --help')"),
            (&["--verbose", "netns"], "unknown option '--verbose' (try 'nsfilter --help')"),
            (&["netns", "--all"], "unknown option '--all' for 'netns' (try 'nsfilter netns --help')"),
            (&["stat", "extra"], "unexpected argument 'extra' for 'stat' (try 'nsfilter stat --help')"),
            (&["log", "--netns"], "option --netns needs a value"),
            (&["log", "--follow=yes"], "unknown option '--follow=yes' for 'log' (try 'nsfilter log --help')"),
            (&["filter", "--ports"], "option --ports needs a value"),
            (&["--root"], "option --root needs a value"),
        ];
        for (a, msg) in cases {
            let e = args(a).unwrap_err();
            assert_eq!(e.to_string(), msg, "{a:?}");
            assert_eq!(e.exit_code(), 2);
        }
    }
}
