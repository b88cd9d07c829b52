//! VM test of the `nsfilter` command in the guest, against the real module:
//! namespaces made three ways (`ip netns add`, `unshare -n` by a long-lived
//! process, a holder in a cgroup named like a Docker container's) resolved
//! to the right names, `stat` equal to each namespace's `/proc/net/nsfilter`,
//! `filter --netns NAME` making only that namespace log, and `log --json`
//! equal in content to the text lines.

use super::context::Ctx;
use super::module::{param_read, proc_counters};
use super::net::{ns_inode, sh, udp_exchange, v4, LOG_WAIT};
use super::GuestResult;
use crate::initramfs::guest_path::NSFILTER;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command};
use std::time::Instant;

/// The container id the cgroup holder pretends to have (64 hex digits).
const DOCKER_ID: &str = "3f1c2a9b8d7e4f60a1b2c3d4e5f60718293a4b5c6d7e8f901a2b3c4d5e6f7081";
const CGROUP: &str = "/sys/fs/cgroup";

/// A process that holds a namespace of its own; killed when dropped.
struct Holder(Child);

impl Holder {
    /// Starts `unshare -n sleep 600` and waits (bounded) until it sits in a
    /// namespace other than `initial`; returns it with that namespace's inode.
    fn start(initial: u64) -> GuestResult<(Self, u64)> {
        let child = Command::new("/bin/busybox")
            .args(["unshare", "-n", "sleep", "600"])
            .spawn()
            .map_err(|e| format!("failed to start unshare: {e}"))?;
        let holder = Holder(child);
        let path = format!("/proc/{}/ns/net", holder.pid());
        let start = Instant::now();
        while start.elapsed() < LOG_WAIT {
            if let Ok(m) = fs::metadata(&path) {
                let comm =
                    fs::read_to_string(format!("/proc/{}/comm", holder.pid())).unwrap_or_default();
                if m.ino() != initial && comm.trim() == "sleep" {
                    return Ok((holder, m.ino()));
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Err(format!(
            "unshare -n (pid {}) never left the initial namespace",
            holder.pid()
        ))
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the `nsfilter` command; its stdout, or its stderr and status.
fn nsfilter(args: &[&str]) -> Result<String, (i32, String)> {
    let out = Command::new(NSFILTER)
        .args(args)
        .output()
        .map_err(|e| (-1, format!("failed to run {NSFILTER}: {e}")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }
}

/// `nsfilter ARGS` that must succeed.
fn run(args: &[&str]) -> GuestResult<String> {
    nsfilter(args).map_err(|(code, err)| {
        format!(
            "nsfilter {} failed ({code}): {}",
            args.join(" "),
            err.trim()
        )
    })
}

/// The row of a table whose first column is `first`.
fn row<'a>(table: &'a str, first: &str) -> GuestResult<Vec<&'a str>> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.first() == Some(&first))
        .ok_or_else(|| format!("no row for {first} in:\n{table}"))
}

/// Checks that the `nsfilter netns` row of `ino` holds every one of `want`.
fn names_row(table: &str, ino: u64, want: &[&str]) -> GuestResult {
    let text = row(table, &ino.to_string())?.join(" ");
    match want.iter().find(|w| !text.contains(**w)) {
        None => Ok(()),
        Some(w) => Err(format!("namespace {ino}: '{w}' missing in its row: {text}")),
    }
}

/// The exact line of a 8-byte datagram between the two namespaces.
fn udp_line(ino: u64, dev: &str, (src, dst): (&str, &str), (spt, dpt): (u16, u16)) -> String {
    format!(
        "nsfilter: NETNS={ino} IN={dev} OUT= MAC=* SRC={src} DST={dst} LEN=36 TOS=0x00 \
         PREC=0x00 TTL=64 ID=# DF PROTO=UDP SPT={spt} DPT={dpt} LEN=16 "
    )
}

/// The `nsfilter` command names and counts namespaces as they are.
pub(super) fn test_names(ctx: &mut Ctx) -> GuestResult {
    ctx.load()?;
    let initial = ns_inode("/proc/1/ns/net")?;
    // IPv6 off in both, so that no packet of its own (MLD, DAD) changes the
    // counters between two readings.
    sh("ip netns add nblue && ip netns add nred && \
        for n in nblue nred; do ip netns exec $n sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
          net.ipv6.conf.default.disable_ipv6=1 || exit 1; done && \
        ip link add nbv type veth peer name nrv && \
        ip link set nbv netns nblue && ip link set nrv netns nred && \
        ip netns exec nblue ip addr add 10.86.0.1/24 dev nbv && \
        ip netns exec nred ip addr add 10.86.0.2/24 dev nrv && \
        ip netns exec nblue ip link set nbv up && ip netns exec nred ip link set nrv up")?;
    let blue = ns_inode("/run/netns/nblue")?;
    let red = ns_inode("/run/netns/nred")?;
    let (plain, plain_ino) = Holder::start(initial)?;
    let scope = format!("{CGROUP}/system.slice/docker-{DOCKER_ID}.scope");
    sh(&format!(
        "mkdir -p {CGROUP} && (grep -q ' {CGROUP} cgroup2 ' /proc/mounts || \
         mount -t cgroup2 none {CGROUP}) && mkdir -p {scope}"
    ))?;
    let (boxed, boxed_ino) = Holder::start(initial)?;
    fs::write(format!("{scope}/cgroup.procs"), boxed.pid().to_string())
        .map_err(|e| format!("failed to move {} into {scope}: {e}", boxed.pid()))?;

    let table = run(&["netns"])?;
    names_row(&table, initial, &["(initial)"])?;
    names_row(&table, blue, &["nblue"])?;
    names_row(&table, red, &["nred"])?;
    names_row(&table, plain_ino, &[&format!("{} sleep", plain.pid())])?;
    names_row(
        &table,
        boxed_ino,
        &[
            &format!("docker:{}", &DOCKER_ID[..12]),
            &format!("{} sleep", boxed.pid()),
        ],
    )?;
    // A name resolves as `netns` shows it.
    for (name, ino) in [("nblue", blue), (&DOCKER_ID[..12], boxed_ino)] {
        let shown = run(&["filter", "--netns", name])?;
        let set = param_read("netns")?;
        if set.trim() != ino.to_string() {
            return Err(format!(
                "filter --netns {name} set netns={set:?}, want {ino}: {shown}"
            ));
        }
    }
    run(&["filter", "--clear"])?;

    // Traffic both ways; then `stat` against each /proc/net/nsfilter,
    // read before and after it and equal (bounded: nothing else flows).
    ctx.mark();
    udp_exchange(
        "nblue",
        v4([10, 86, 0, 1], 48600),
        "nred",
        v4([10, 86, 0, 2], 7000),
    )?;
    udp_exchange(
        "nred",
        v4([10, 86, 0, 2], 48601),
        "nblue",
        v4([10, 86, 0, 1], 7001),
    )?;
    ctx.expect(&[
        &udp_line(red, "nrv", ("10.86.0.1", "10.86.0.2"), (48600, 7000)),
        &udp_line(blue, "nbv", ("10.86.0.2", "10.86.0.1"), (48601, 7001)),
    ])?;
    for (name, ino) in [("nblue", blue), ("nred", red)] {
        let before = proc_counters(name)?;
        let stat = run(&["stat", "--all"])?;
        let json = run(&["stat", "--json"])?;
        let after = proc_counters(name)?;
        if before != after {
            return Err(format!("{name}'s counters moved while nothing was sent"));
        }
        let header = stat.lines().next().unwrap_or_default();
        let columns: Vec<&str> = header.split_whitespace().collect();
        let cells = row(&stat, &ino.to_string())?;
        for (counter, value) in before.iter().filter(|(k, _)| k != "netns") {
            let at = columns
                .iter()
                .position(|c| c == counter)
                .ok_or_else(|| format!("nsfilter stat has no column {counter}: {header}"))?;
            // NETNS NAMES counters...: the names are one word here.
            if cells.get(at) != Some(&value.to_string().as_str()) {
                return Err(format!(
                    "nsfilter stat says {counter}={:?} for {name}, /proc/net/nsfilter {value}",
                    cells.get(at)
                ));
            }
        }
        // The same counters in the namespace's JSON line, in the file's order.
        let counters: Vec<String> = before
            .iter()
            .filter(|(k, _)| k != "netns")
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect();
        let want = format!(
            "{{\"netns\":{ino},\"initial\":false,\"names\":[\"{name}\"],\"counters\":{{{}}}}}",
            counters.join(",")
        );
        if !json.lines().any(|l| l == want) {
            return Err(format!("nsfilter stat --json has no line {want}:\n{json}"));
        }
    }
    let listed = run(&["netns", "--json"])?;
    let blue_line = format!("{{\"netns\":{blue},\"initial\":false,\"names\":[\"nblue\"],");
    if !listed.lines().any(|l| l.starts_with(&blue_line)) {
        return Err(format!(
            "nsfilter netns --json has no line for nblue:\n{listed}"
        ));
    }
    let version = run(&["--version"])?;
    if version.trim() != concat!("nsfilter ", env!("CARGO_PKG_VERSION")) {
        return Err(format!("nsfilter --version says {version:?}"));
    }
    if row(&run(&["stat"])?, "total").is_err() {
        return Err("nsfilter stat printed no total row".into());
    }

    // `log`, text and JSON: the same lines, with the names.
    let text = run(&["log", "--netns", "nblue", "--netns", "nred"])?;
    let json = run(&["log", "--netns", "nblue", "--netns", "nred", "--json"])?;
    // The kernel log holds earlier tests' lines too, and inodes are
    // recycled: keep this test's datagrams (source ports 48600 and 48601).
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" NETNS=") && l.contains(" SPT=4860"))
        .collect();
    let objects: Vec<&str> = json
        .lines()
        .filter(|l| l.contains("\"kind\":\"packet\"") && l.contains("\"SPT\":4860"))
        .collect();
    if lines.len() != 2 || objects.len() != 2 {
        return Err(format!(
            "log gave {} lines and {} JSON packets:\n{text}\n{json}",
            lines.len(),
            objects.len()
        ));
    }
    for (line, object) in lines.iter().zip(&objects) {
        let (ino, name) = if line.contains(&format!("NETNS={blue} ")) {
            (blue, "nblue")
        } else {
            (red, "nred")
        };
        if !line.contains(&format!("NETNS={ino} NAME={name} IN=")) {
            return Err(format!("no NAME={name} after NETNS={ino}: {line}"));
        }
        let body = line.split_once("] nsfilter: ").map_or(*line, |(_, b)| b);
        for word in body.split_whitespace() {
            // A value is a JSON number or string, whichever the tool chose.
            let want = match word.split_once('=') {
                Some(("NAME", _)) => vec![format!("\"names\":[\"{name}\"]")],
                Some((k, v)) => vec![format!("\"{k}\":{v},"), format!("\"{k}\":\"{v}\"")],
                None => vec![format!("\"{word}\":true")],
            };
            if !want
                .iter()
                .any(|w| object.contains(w.as_str()) || object.contains(&w.replace(',', "}")))
            {
                return Err(format!(
                    "JSON lacks {word} of the line:\n  {line}\n  {object}"
                ));
            }
        }
    }

    // `filter --netns nred`: only nred logs.
    run(&["filter", "--netns", "nred"])?;
    ctx.mark();
    udp_exchange(
        "nblue",
        v4([10, 86, 0, 1], 48610),
        "nred",
        v4([10, 86, 0, 2], 7000),
    )?;
    udp_exchange(
        "nred",
        v4([10, 86, 0, 2], 48611),
        "nblue",
        v4([10, 86, 0, 1], 7001),
    )?;
    ctx.expect(&[&udp_line(
        red,
        "nrv",
        ("10.86.0.1", "10.86.0.2"),
        (48610, 7000),
    )])?;
    if let Some(l) = ctx
        .nsfilter_lines()
        .iter()
        .find(|l| !l.contains(&format!("NETNS={red} ")))
    {
        return Err(format!(
            "filter --netns nred, yet another namespace logged: {l}"
        ));
    }
    run(&["filter", "--clear"])?;

    // Errors that scripts rely on.
    match nsfilter(&["filter", "--netns", "ngreen"]) {
        Err((2, e)) if e.contains("ngreen") => {}
        other => {
            return Err(format!(
                "filter --netns ngreen (unknown): {other:?}, want exit 2"
            ))
        }
    }
    drop((plain, boxed));
    ctx.unload()?;
    match nsfilter(&["stat"]) {
        Err((1, e)) if e.contains("not loaded") => Ok(()),
        other => Err(format!(
            "stat with no module: {other:?}, want exit 1 and 'not loaded'"
        )),
    }
}
