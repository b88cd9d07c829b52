//! `nsfilter stat`: each namespace's `/proc/net/nsfilter` counters in one
//! table, with its names, and their total.
//!
//! A namespace's file is read as `/proc/PID/net/nsfilter` through a process
//! in it; a namespace that only a mount holds (`ip netns add` with nothing
//! running in it) is entered by a short-lived thread (`setns(2)`), which
//! reads `/proc/thread-self/net/nsfilter`.

use crate::error::{Error, Result};
use crate::json::Value;
use crate::netns::{self, Namespace};
use crate::root::Root;
use crate::table::{Align, Table};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// The options of `nsfilter stat`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Every counter, even those that are 0 everywhere.
    pub all: bool,
    /// One JSON object per namespace and line.
    pub json: bool,
}

/// The counters shown even when they are 0 everywhere: a table without
/// them would not say whether anything was seen at all.
const ALWAYS: [&str; 3] = ["packets_ipv4", "packets_ipv6", "logged"];

/// One namespace's counters, as `/proc/net/nsfilter` lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counters {
    /// The `netns` line: whose counters these are.
    pub netns: u64,
    /// `name value`, in the file's order.
    pub values: Vec<(String, u64)>,
}

/// Reads the text of `/proc/net/nsfilter`.
pub fn parse(text: &str) -> Option<Counters> {
    let mut lines = text.lines();
    let netns = lines.next()?.strip_prefix("netns ")?.trim().parse().ok()?;
    let mut values = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let (name, value) = line.split_once(' ')?;
        values.push((name.to_string(), value.trim().parse().ok()?));
    }
    Some(Counters { netns, values })
}

/// Reads `path` from inside the namespace mounted at `ns`, in a thread of
/// its own that enters it and then ends.
fn read_inside(ns: &Path, path: std::path::PathBuf) -> io::Result<String> {
    let file = File::open(ns)?;
    std::thread::spawn(move || {
        crate::sys::enter_netns(&file)?;
        fs::read_to_string(path)
    })
    .join()
    .map_err(|_| io::Error::other("the thread that entered the namespace failed"))?
}

/// Namespace `ns`'s counters, or why they could not be read.
fn counters(root: &Root, ns: &Namespace) -> Result<Counters, String> {
    let mut why = String::from("no process or mount to read it through");
    let check = |text: io::Result<String>| -> Result<Counters, String> {
        let text = text.map_err(|e| crate::error::describe(&e))?;
        match parse(&text) {
            // A process may have moved to another namespace meanwhile.
            Some(c) if c.netns == ns.inode => Ok(c),
            Some(c) => Err(format!("read namespace {}'s instead", c.netns)),
            None => Err("not in the format of /proc/net/nsfilter".into()),
        }
    };
    for p in &ns.processes {
        let path = root.proc.join(p.pid.to_string()).join("net/nsfilter");
        match check(fs::read_to_string(path)) {
            Ok(c) => return Ok(c),
            Err(e) => why = format!("through pid {}: {e}", p.pid),
        }
    }
    let inside = root.proc.join("thread-self/net/nsfilter");
    let mounts = ns.names.iter().map(|n| root.run_netns.join(n));
    for mount in mounts.chain(ns.mounts.iter().cloned()) {
        match check(read_inside(&mount, inside.clone())) {
            Ok(c) => return Ok(c),
            Err(e) => why = format!("through {}: {e}", mount.display()),
        }
    }
    Err(why)
}

/// One namespace's counters as a JSON object: `netns`, `initial`, `names`,
/// and `counters` by name, or `error`.
fn json(ns: &Namespace, counters: &Result<Counters, String>) -> Value {
    let mut o = Value::object();
    o.insert("netns", Value::Num(ns.inode));
    o.insert("initial", Value::Bool(ns.initial));
    o.insert(
        "names",
        Value::Arr(ns.labels().into_iter().map(Value::Str).collect()),
    );
    match counters {
        Ok(c) => o.insert(
            "counters",
            Value::Obj(
                c.values
                    .iter()
                    .map(|(n, v)| (n.clone(), Value::Num(*v)))
                    .collect(),
            ),
        ),
        Err(why) => o.insert("error", Value::str(why.clone())),
    }
    o
}

/// Runs `nsfilter stat`.
pub fn run(root: &Root, opts: &Options, out: &mut dyn Write, err: &mut dyn Write) -> Result<()> {
    crate::filter::require_module(root)?;
    let machine = netns::discover(root);
    let rows: Vec<(&Namespace, Result<Counters, String>)> = machine
        .namespaces
        .iter()
        .map(|ns| (ns, counters(root, ns)))
        .collect();
    let Some(first) = rows.iter().find_map(|(_, c)| c.as_ref().ok()) else {
        let why = rows
            .first()
            .and_then(|(_, c)| c.as_ref().err().cloned())
            .unwrap_or_else(|| "no network namespace found".into());
        return Err(Error::Failed(format!(
            "cannot read any namespace's /proc/net/nsfilter ({why})"
        )));
    };
    let write_err = |e: io::Error| Error::Failed(format!("cannot write the output: {e}"));
    if opts.json {
        for (ns, counters) in &rows {
            writeln!(out, "{}", json(ns, counters)).map_err(write_err)?;
        }
        return Ok(());
    }
    let all: Vec<String> = first.values.iter().map(|(n, _)| n.clone()).collect();
    let sum = |name: &str| -> u64 {
        rows.iter()
            .filter_map(|(_, c)| c.as_ref().ok())
            .filter_map(|c| c.values.iter().find(|(n, _)| n == name))
            .fold(0u64, |a, (_, v)| a.wrapping_add(*v))
    };
    let (names, zero): (Vec<String>, Vec<String>) = all
        .into_iter()
        .partition(|n| opts.all || ALWAYS.contains(&n.as_str()) || sum(n) != 0);
    let mut columns = vec![("NETNS", Align::Left), ("NAMES", Align::Left)];
    columns.extend(names.iter().map(|n| (n.as_str(), Align::Right)));
    let mut table = Table::new(&columns);
    let mut total = vec![0u64; names.len()];
    let mut missing = Vec::new();
    for (ns, counters) in &rows {
        let mut labels = ns.labels();
        if ns.initial {
            labels.insert(0, "(initial)".into());
        }
        let mut row = vec![ns.inode.to_string(), labels.join(",")];
        match counters {
            Ok(c) => {
                for (i, name) in names.iter().enumerate() {
                    let v = c.values.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
                    total[i] = total[i].wrapping_add(v.unwrap_or(0));
                    row.push(v.map_or("-".into(), |v| v.to_string()));
                }
            }
            Err(why) => {
                row.extend(names.iter().map(|_| "-".to_string()));
                missing.push(format!("{}: {why}", ns.inode));
            }
        }
        table.row(row);
    }
    let mut row = vec!["total".to_string(), String::new()];
    row.extend(total.iter().map(u64::to_string));
    table.row(row);
    let mut text = String::new();
    table
        .write(&mut text)
        .map_err(|_| Error::Failed("cannot format the table".into()))?;
    out.write_all(text.as_bytes()).map_err(write_err)?;
    if !zero.is_empty() {
        let _ = writeln!(
            err,
            "nsfilter: note: 0 in every namespace, not shown (--all shows them): {}",
            zero.join(", ")
        );
    }
    for m in missing {
        let _ = writeln!(err, "nsfilter: note: no counters for namespace {m}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netns::tests::sample;

    fn proc_file(netns: u64, base: u64) -> String {
        let mut s = format!("netns {netns}\n");
        for (i, name) in ["packets_ipv4", "packets_ipv6", "tcp", "udp", "logged"]
            .iter()
            .enumerate()
        {
            s.push_str(&format!("{name} {}\n", base + i as u64));
        }
        s
    }

    /// Root only, on a real namespace: `NSFILTER_TEST_NETNS=/run/netns/NAME
    /// cargo test --bin nsfilter -- --ignored`. Reads `/proc/net/dev`
    /// inside it: a new namespace has only `lo`.
    #[test]
    #[ignore]
    fn reads_inside_a_real_namespace() {
        let ns = std::env::var("NSFILTER_TEST_NETNS").expect("NSFILTER_TEST_NETNS");
        let text = read_inside(Path::new(&ns), "/proc/thread-self/net/dev".into()).unwrap();
        let devices: Vec<&str> = text
            .lines()
            .skip(2)
            .filter_map(|l| l.split(':').next())
            .collect();
        assert_eq!(devices, ["    lo"], "{text}");
        // The calling thread stayed where it was.
        let here = fs::read_to_string("/proc/thread-self/net/dev").unwrap();
        assert_ne!(here, text);
    }

    #[test]
    fn parses_the_proc_file() {
        let c = parse(&proc_file(4026532075, 1)).unwrap();
        assert_eq!(c.netns, 4026532075);
        assert_eq!(c.values[0], ("packets_ipv4".into(), 1));
        assert_eq!(c.values.len(), 5);
        assert_eq!(parse("netns x\n"), None);
        assert_eq!(parse("tcp 1\n"), None);
        assert_eq!(parse("netns 1\ntcp many\n"), None);
    }

    #[test]
    fn one_row_per_namespace_and_a_total() {
        let f = sample();
        fs::create_dir_all(f.root.module_dir()).unwrap();
        for (pid, netns, base) in [(1, 4026531840, 10), (300, 4026532124, 100)] {
            let dir = f.root.proc.join(format!("{pid}/net"));
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("nsfilter"), proc_file(netns, base)).unwrap();
        }
        // pid 400 gives the wrong namespace's file, pid 401 the right one.
        for (pid, netns) in [(400, 4026531840), (401, 4026532300)] {
            let dir = f.root.proc.join(format!("{pid}/net"));
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("nsfilter"), proc_file(netns, 1000)).unwrap();
        }
        let (mut out, mut err) = (Vec::new(), Vec::new());
        run(&f.root, &Options::default(), &mut out, &mut err).unwrap();
        let out = String::from_utf8(out).unwrap();
        let expected = "\
NETNS       NAMES                packets_ipv4  packets_ipv6   tcp   udp  logged
4026531840  (initial)                      10            11    12    13      14
4026532124  blue                          100           101   102   103     104
4026532200  red                             -             -     -     -       -
4026532300  docker:3f1c2a9b8d7e          1000          1001  1002  1003    1004
total                                    1110          1113  1116  1119    1122
";
        assert_eq!(out, expected);
        let err = String::from_utf8(err).unwrap();
        assert!(
            err.starts_with("nsfilter: note: no counters for namespace 4026532200: through "),
            "{err}"
        );
    }

    /// A counter that is 0 everywhere is left out, with a note, unless
    /// `--all`; `--json` gives every counter of every namespace.
    #[test]
    fn zero_columns_all_and_json() {
        let f = sample();
        fs::create_dir_all(f.root.module_dir()).unwrap();
        for (pid, netns, udp) in [(1, 4026531840u64, 0), (300, 4026532124, 0)] {
            let dir = f.root.proc.join(format!("{pid}/net"));
            fs::create_dir_all(&dir).unwrap();
            let text = format!(
                "netns {netns}\npackets_ipv4 3\npackets_ipv6 0\nudp {udp}\nsctp 0\nlogged 0\n"
            );
            fs::write(dir.join("nsfilter"), text).unwrap();
        }
        let stat = |opts: Options| {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            run(&f.root, &opts, &mut out, &mut err).unwrap();
            (
                String::from_utf8(out).unwrap(),
                String::from_utf8(err).unwrap(),
            )
        };
        let (out, err) = stat(Options::default());
        assert_eq!(
            out.lines().next().unwrap(),
            "NETNS       NAMES                packets_ipv4  packets_ipv6  logged"
        );
        assert!(
            err.starts_with(
                "nsfilter: note: 0 in every namespace, not shown (--all shows them): udp, sctp\n"
            ),
            "{err}"
        );
        let (out, err) = stat(Options {
            all: true,
            json: false,
        });
        assert_eq!(
            out.lines().next().unwrap(),
            "NETNS       NAMES                packets_ipv4  packets_ipv6  udp  sctp  logged"
        );
        assert!(!err.contains("not shown"), "{err}");
        let (out, _) = stat(Options {
            all: false,
            json: true,
        });
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert_eq!(
            lines[0],
            "{\"netns\":4026531840,\"initial\":true,\"names\":[],\"counters\":\
             {\"packets_ipv4\":3,\"packets_ipv6\":0,\"udp\":0,\"sctp\":0,\"logged\":0}}"
        );
        assert_eq!(
            lines[1],
            "{\"netns\":4026532124,\"initial\":false,\"names\":[\"blue\"],\"counters\":\
             {\"packets_ipv4\":3,\"packets_ipv6\":0,\"udp\":0,\"sctp\":0,\"logged\":0}}"
        );
        assert!(
            lines[2].starts_with(
                "{\"netns\":4026532200,\"initial\":false,\"names\":[\"red\"],\"error\":\""
            ),
            "{}",
            lines[2]
        );
    }

    #[test]
    fn no_module_no_counters() {
        let f = sample();
        let e = run(
            &f.root,
            &Options::default(),
            &mut Vec::new(),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "module nsfilter is not loaded (no /sys/module/nsfilter)"
        );
        assert_eq!(e.exit_code(), 1);
        fs::create_dir_all(f.root.module_dir()).unwrap();
        let e = run(
            &f.root,
            &Options::default(),
            &mut Vec::new(),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot read any namespace's /proc/net/nsfilter ("),
            "{e}"
        );
    }
}
