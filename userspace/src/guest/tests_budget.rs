//! The host-wide budget in the VM: a crowd of namespaces flooding their own
//! loopback cannot flood the kernel log, cannot silence the initial
//! namespace or a quiet namespace, each gets lines, and every refused line
//! is counted under its reason and reported.
//!
//! Each flooding namespace is a process of its own (`unshare -n`, or on a
//! kernel that has Debian's switch for unprivileged user namespaces, uid
//! 65534 with `unshare -rn`: what any local user can do), running
//! `nsfilter-lab guest-flood`.

use super::context::Ctx;
use super::module::{counter, param_read, proc_counters};
use super::net::sh;
use super::tests_controls::summary_count;
use super::GuestResult;
use crate::initramfs::guest_path;
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The file whose creation starts every flood.
const GO: &str = "/run/nsfilter-flood-go";
/// The file whose creation ends them.
const STOP: &str = "/run/nsfilter-flood-stop";
/// The port the flood is sent to, on the namespace's own loopback.
const FLOOD_PORT: u16 = 9999;

/// What one flooding namespace reports when it ends.
#[derive(Debug, Default)]
struct Flooded {
    inode: u64,
    sent: u64,
    counters: Vec<(String, u64)>,
}

/// `nsfilter-lab guest-flood`, in a namespace of its own with its loopback
/// up: waits for [`GO`], sends UDP datagrams to its own loopback until
/// [`STOP`], waits until its hook has counted them, then prints its
/// namespace's inode, what it sent and its `/proc/net/nsfilter`.
pub fn flood() -> i32 {
    match flood_inner() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("guest-flood: {e}");
            1
        }
    }
}

fn flood_inner() -> GuestResult {
    use std::os::unix::fs::MetadataExt;
    let err = |what: &str, e: std::io::Error| format!("{what}: {e}");
    let sink = UdpSocket::bind(("127.0.0.1", FLOOD_PORT)).map_err(|e| err("bind", e))?;
    sink.set_nonblocking(true).map_err(|e| err("sink", e))?;
    let tx = UdpSocket::bind("127.0.0.1:0").map_err(|e| err("bind", e))?;
    let inode = fs::metadata("/proc/self/ns/net")
        .map_err(|e| err("/proc/self/ns/net", e))?
        .ino();
    let bound = Instant::now() + Duration::from_secs(300);
    while !Path::new(GO).exists() {
        if Instant::now() > bound {
            return Err("never told to start".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut sent = 0u64;
    let mut buf = [0u8; 64];
    loop {
        for _ in 0..200 {
            if tx.send_to(b"flood", ("127.0.0.1", FLOOD_PORT)).is_ok() {
                sent += 1;
            }
            // Keep the sink's queue short, so that no datagram is dropped
            // for a full socket (the hook has seen it by then anyway).
            while sink.recv(&mut buf).is_ok() {}
        }
        if Path::new(STOP).exists() || Instant::now() > bound {
            break;
        }
    }
    // Every datagram is counted by the hook once it went through loopback's
    // backlog: wait (bounded) until the counters stop moving.
    let read = || {
        fs::read_to_string("/proc/self/net/nsfilter").map_err(|e| err("/proc/self/net/nsfilter", e))
    };
    let mut text = read()?;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(20));
        let again = read()?;
        if again == text {
            break;
        }
        text = again;
    }
    println!("inode {inode}");
    println!("sent {sent}");
    print!("{text}");
    Ok(())
}

/// Starts one flooding namespace.
fn spawn_flooder(unprivileged: bool) -> GuestResult<Child> {
    let script = format!(
        "{ip} link set lo up && exec {agent} guest-flood",
        ip = guest_path::IP,
        agent = guest_path::AGENT
    );
    let mut cmd = Command::new("/bin/busybox");
    if unprivileged {
        // As nobody, with no supplementary groups (std drops them when a
        // root parent sets the uid), mapped to root in a user namespace of
        // its own: what any local user may do.
        use std::os::unix::process::CommandExt;
        cmd.uid(65534).gid(65534).args(["unshare", "-rn"]);
    } else {
        cmd.args(["unshare", "-n"]);
    }
    cmd.args(["/bin/sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("failed to start a flooding namespace: {e}"))
}

/// Reads what a flooder printed when it ended.
fn collect(child: Child) -> GuestResult<Flooded> {
    let out = child
        .wait_with_output()
        .map_err(|e| format!("a flooding namespace: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "a flooding namespace failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let mut f = Flooded::default();
    for line in BufReader::new(&out.stdout[..]).lines() {
        let line = line.map_err(|e| e.to_string())?;
        let Some((key, value)) = line.split_once(' ') else {
            continue;
        };
        let value: u64 = value
            .trim()
            .parse()
            .map_err(|_| format!("flooder said '{line}'"))?;
        match key {
            "inode" => f.inode = value,
            "sent" => f.sent = value,
            _ => f.counters.push((key.to_string(), value)),
        }
    }
    Ok(f)
}

/// The namespace a packet or summary line is about, if it is one.
fn line_netns(line: &str) -> Option<u64> {
    let rest = line
        .strip_prefix("nsfilter: NETNS=")
        .or_else(|| line.strip_prefix("nsfilter: ratelimit: netns "))?;
    rest.split(' ').next()?.parse().ok()
}

/// A crowd floods the budget twice, nsfilter loaded with its defaults: 100
/// namespaces made by root (`unshare -n`), then 40 made by an unprivileged
/// user through user namespaces (uid 65534, `unshare -rn`), unless this
/// kernel forbids those. See [`crowd`] for what each must show.
pub(super) fn test_budget(ctx: &mut Ctx) -> GuestResult {
    ctx.load()?;
    let _ = fs::remove_file(GO);
    let _ = fs::remove_file(STOP);
    // The initial namespace's loopback is down in the lab VM: up for the
    // test, down again after it.
    sh("ip link set lo up && ip netns add bq && ip -n bq link set lo up")?;
    crowd(ctx, 100, false)?;
    if fs::read_to_string("/proc/sys/kernel/unprivileged_userns_clone")
        .is_ok_and(|v| v.trim() == "0")
    {
        println!("# this kernel forbids unprivileged user namespaces: no unprivileged crowd");
    } else {
        crowd(ctx, 40, true)?;
    }
    sh("ip link set lo down")?;
    ctx.unload()
}

/// `n` namespaces flood their loopback at once; the initial namespace and a
/// quiet one (`bq`) send a probe a second. The lines of all but the initial
/// namespace stay within the budget in every interval of the kernel's log;
/// every probe is logged; every flooding namespace logs lines; each one's
/// counters add up to what its hook saw; summary lines come at most once a
/// second per namespace and never report nothing.
fn crowd(ctx: &mut Ctx, n: usize, unprivileged: bool) -> GuestResult {
    let number = |name: &str| -> GuestResult<u64> {
        param_read(name)?
            .parse()
            .map_err(|_| format!("{name} is not a number"))
    };
    let (rate, burst) = (number("budget_rate")?, number("budget_burst")?);
    let secs = ctx.scale.budget_secs;
    let init = super::net::ns_inode("/proc/1/ns/net")?;
    let quiet = super::net::ns_inode("/run/netns/bq")?;
    let init_sink = UdpSocket::bind("127.0.0.1:7777").map_err(|e| e.to_string())?;
    let quiet_sink = super::net::in_netns(Some("bq"), || UdpSocket::bind("127.0.0.1:7777"))?;
    let quiet_tx = super::net::in_netns(Some("bq"), || UdpSocket::bind("127.0.0.1:0"))?;
    let init_tx = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let quiet_before = proc_counters("bq")?;
    let mut children = Vec::new();
    for _ in 0..n {
        children.push(spawn_flooder(unprivileged)?);
    }
    ctx.mark();
    fs::write(GO, "").map_err(|e| format!("{GO}: {e}"))?;
    let start = Instant::now();
    // A probe a second from each of the two.
    let port = |s: &UdpSocket| s.local_addr().map(|a| a.port()).map_err(|e| e.to_string());
    let probes = (port(&init_tx)?, port(&quiet_tx)?);
    for i in 0..secs {
        let next = start + Duration::from_secs(u64::from(i) + 1);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        init_tx
            .send_to(format!("p{i:03}").as_bytes(), "127.0.0.1:7777")
            .map_err(|e| e.to_string())?;
        quiet_tx
            .send_to(format!("p{i:03}").as_bytes(), "127.0.0.1:7777")
            .map_err(|e| e.to_string())?;
        let _ = ctx.kmsg.poll();
    }
    fs::write(STOP, "").map_err(|e| format!("{STOP}: {e}"))?;
    let flooded: Vec<Flooded> = children
        .into_iter()
        .map(collect)
        .collect::<GuestResult<_>>()?;
    drop((init_sink, quiet_sink));
    let _ = ctx.kmsg.poll();
    let (seen, seen_us) = (ctx.kmsg.seen.clone(), ctx.kmsg.seen_us.clone());
    if ctx.kmsg.lost > 0 {
        return Err(format!(
            "the kernel overwrote {} times records before they were read",
            ctx.kmsg.lost
        ));
    }
    // Every probe is logged: a line from its port, 4 bytes of payload.
    for (who, inode, port) in [("initial", init, probes.0), ("quiet", quiet, probes.1)] {
        let want = format!("nsfilter: NETNS={inode} IN=lo ");
        let tail = format!(" SPT={port} DPT=7777 LEN=12 ");
        let got = seen
            .iter()
            .filter(|l| l.starts_with(&want) && l.contains(&tail))
            .count();
        if got != secs as usize {
            return Err(format!(
                "the {who} namespace's probes: {got} of {secs} logged while {n} namespaces flooded"
            ));
        }
    }
    // The budget: the records of every namespace but the initial one, in
    // any interval of the kernel's log, are at most the burst plus the rate
    // times its length (plus one for the clocks' rounding).
    let shared: Vec<u64> = seen
        .iter()
        .zip(&seen_us)
        .filter(|(l, _)| line_netns(l).is_some_and(|ns| ns != init))
        .map(|(_, us)| *us)
        .collect();
    let mut worst = (0u64, 0u64, 0u64);
    for i in 0..shared.len() {
        for j in i..shared.len() {
            let count = (j - i + 1) as u64;
            let bound = burst + rate * (shared[j] - shared[i]) / 1_000_000 + 1;
            if count > bound {
                return Err(format!(
                    "{count} records of non-initial namespaces within {} us: the budget allows {bound}",
                    shared[j] - shared[i]
                ));
            }
            if count * 1000 / bound > worst.0 {
                worst = (count * 1000 / bound, count, shared[j] - shared[i]);
            }
        }
    }
    // Each flooding namespace: lines, counters that add up, summaries at
    // most once a second that add up to its refused lines.
    let mut by_ns: BTreeMap<u64, (u64, Vec<u64>)> = BTreeMap::new();
    for (line, us) in seen.iter().zip(&seen_us) {
        if let Some(ns) = line_netns(line) {
            let entry = by_ns.entry(ns).or_default();
            if line.starts_with("nsfilter: NETNS=") {
                entry.0 += 1;
            } else {
                let rest = line
                    .split_once(" suppressed ")
                    .map(|(_, r)| r)
                    .unwrap_or("");
                summary_count(rest)
                    .ok_or_else(|| format!("a summary line without lines: {line}"))?;
                entry.1.push(*us);
            }
        }
    }
    let mut refused = (0u64, 0u64);
    for f in &flooded {
        let c = &f.counters;
        let seen_by_hook = counter(c, "packets_ipv4")? + counter(c, "packets_ipv6")?;
        let fates = counter(c, "logged")?
            + counter(c, "suppressed")?
            + counter(c, "suppressed_budget")?
            + counter(c, "filtered")?;
        // Datagrams that loopback's backlog dropped never reached the hook.
        if fates != seen_by_hook || counter(c, "packets_ipv4")? > f.sent {
            return Err(format!(
                "namespace {}: sent {}, counters do not add up: {c:?}",
                f.inode, f.sent
            ));
        }
        refused.0 += counter(c, "suppressed")?;
        refused.1 += counter(c, "suppressed_budget")?;
        let (lines, summaries) = by_ns.get(&f.inode).cloned().unwrap_or_default();
        if lines == 0 || lines != counter(c, "logged")? {
            return Err(format!(
                "namespace {}: {lines} lines in the log, {} logged: {c:?}",
                f.inode,
                counter(c, "logged")?
            ));
        }
        if let Some(w) = summaries
            .windows(2)
            .find(|w| w[1] - w[0] < 1_000_000 - 20_000)
        {
            return Err(format!(
                "namespace {}: two summary lines {} us apart",
                f.inode,
                w[1] - w[0]
            ));
        }
    }
    let quiet_c = proc_counters("bq")?;
    let refused_of = |c: &[(String, u64)]| -> GuestResult<u64> {
        Ok(counter(c, "suppressed")? + counter(c, "suppressed_budget")?)
    };
    if refused_of(&quiet_c)? != refused_of(&quiet_before)? {
        return Err(format!(
            "the quiet namespace had lines refused: {quiet_c:?}"
        ));
    }
    if refused.1 == 0 {
        return Err(format!("{n} namespaces flooding never reached the budget"));
    }
    let elapsed = start.elapsed();
    println!(
        "# {n} {}namespaces flooded for {secs} s ({} datagrams): {} records of theirs in the log ({} ms), \
         closest to the bound: {} in {} us ({}.{}%); refused by their own limit {}, by the budget {}",
        if unprivileged { "unprivileged " } else { "" },
        flooded.iter().map(|f| f.sent).sum::<u64>(),
        shared.len(),
        elapsed.as_millis(),
        worst.1,
        worst.2,
        worst.0 / 10,
        worst.0 % 10,
        refused.0,
        refused.1
    );
    fs::remove_file(GO).map_err(|e| format!("{GO}: {e}"))?;
    fs::remove_file(STOP).map_err(|e| format!("{STOP}: {e}"))?;
    Ok(())
}
