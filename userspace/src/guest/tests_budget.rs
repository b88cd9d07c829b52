//! The host-wide budget in the VM: a crowd of namespaces flooding (each
//! through a tap device of its own) cannot flood the kernel log, cannot silence the initial
//! namespace or a quiet namespace, each gets lines, and every refused line
//! is counted under its reason and reported.
//!
//! Each flooding namespace is a process of its own (`unshare -n`, or on a
//! kernel that has Debian's switch for unprivileged user namespaces, uid
//! 65534 with `unshare -rn`: what any local user can do), running
//! `nsfilter-lab guest-flood`.

use super::context::Ctx;
use super::module::{counter, param_read, proc_counters, proc_counters_in};
use super::net::sh;
use super::tests_controls::summary_count;
use super::GuestResult;
use crate::frames;
use crate::initramfs::guest_path;
use crate::sys;
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The file whose creation starts every flood.
const GO: &str = "/run/nsfilter-flood-go";
/// The file whose creation ends them.
const STOP: &str = "/run/nsfilter-flood-stop";
/// The file whose creation lets the flooders exit (and their namespaces go).
const DONE: &str = "/run/nsfilter-flood-done";
/// What a flooder prints, first, once its tap is up.
const READY: &str = "ready";
/// The ports of the flood's datagrams.
const FLOOD_PORT: u16 = 9999;
/// How much later than its token a record may be stamped (us). The budget
/// takes a line's token at the hook's `ktime_get()`; printk stamps the
/// record later, with the `local_clock()` of the CPU that stores it: after
/// the line is formatted, after any interrupt meanwhile, and under TCG after
/// the host has descheduled the vCPU's thread, while the guest's clock runs
/// on; and the CPUs' local clocks may differ by up to a tick. So the first
/// record of an interval of the log may have taken its token before the
/// interval began. Seen: 477 records within 379,135 us where the bound
/// without it was 476 (the lab kernel under TCG, a busy 2-core host). 50 ms
/// is 10 lines at the default budget_rate, 2.5% of its burst: a budget that
/// is not enforced still logs thousands of lines too many.
const STAMP_LAG_US: u64 = 50_000;

/// What one flooding namespace reports when it ends.
#[derive(Debug, Default)]
struct Flooded {
    inode: u64,
    sent: u64,
    counters: Vec<(String, u64)>,
}

/// `nsfilter-lab guest-flood`, in a namespace of its own: makes a tap
/// device there, waits for [`GO`], writes UDP datagrams into the tap until
/// [`STOP`], prints its namespace's inode and how many it wrote, then keeps
/// the namespace alive until [`DONE`], for the test to read its counters.
///
/// The flood comes in through a tap, not the namespace's loopback, so that
/// every datagram sent reaches the hook: loopback hands each to its CPU's
/// backlog queue, which every namespace's loopback shares, and under a crowd
/// that queue overflows; on `PREEMPT_RT` one namespace of 100 had all of its
/// datagrams dropped there, its hook never ran, and nothing could be asked of
/// nsfilter about it. A tap's write runs the hooks before it returns (see
/// `sys::Tap`), so the hook sees exactly what was sent. Any user may do the
/// same: Debian's udev makes `/dev/net/tun` world-writable, and root of a user
/// namespace may make a tap in the network namespace it owns.
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
    let tap = sys::Tap::create("bfl").map_err(|e| format!("tap bfl: {e}"))?;
    sh("ip link set bfl up")?;
    let inode = fs::metadata("/proc/self/ns/net")
        .map_err(|e| format!("/proc/self/ns/net: {e}"))?
        .ino();
    let datagram = frames::udp4_broadcast(
        [0x02, 0, 0, 0, 0x0b, 0x02],
        ([10, 78, 0, 1], FLOOD_PORT),
        ([10, 78, 0, 2], FLOOD_PORT),
        b"flood",
    );
    // The test starts the flood once every flooder is ready: on the debug
    // kernel starting 100 of them takes longer than a quick flood lasts.
    println!("{READY}");
    std::io::Write::flush(&mut std::io::stdout()).map_err(|e| format!("stdout: {e}"))?;
    let bound = Instant::now() + Duration::from_secs(300);
    while !Path::new(GO).exists() {
        if Instant::now() > bound {
            return Err("never told to start".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut sent = 0u64;
    loop {
        // A look at STOP every 20 writes: on the debug kernel a write takes
        // milliseconds, and 100 flooders' batches of 200 kept a 5 s flood
        // going for 170 s.
        for _ in 0..20 {
            tap.receive(&datagram)
                .map_err(|e| format!("a datagram into bfl: {e}"))?;
            sent += 1;
        }
        if Path::new(STOP).exists() || Instant::now() > bound {
            break;
        }
    }
    println!("inode {inode}");
    println!("sent {sent}");
    std::io::Write::flush(&mut std::io::stdout()).map_err(|e| format!("stdout: {e}"))?;
    while !Path::new(DONE).exists() {
        if Instant::now() > bound {
            return Err("never told it was done".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Stops and releases every flooder when dropped, on every path out of a
/// crowd.
struct Release;

impl Drop for Release {
    fn drop(&mut self) {
        let _ = fs::write(STOP, "");
        let _ = fs::write(DONE, "");
    }
}

/// Starts one flooding namespace.
fn spawn_flooder(unprivileged: bool) -> GuestResult<Child> {
    let script = format!("exec {agent} guest-flood", agent = guest_path::AGENT);
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

/// Waits until a flooder says it is ready to flood (it prints nothing else
/// before it floods, so exactly that line is read off its output).
fn ready(child: &mut Child) -> GuestResult {
    use std::io::Read;
    let mut said = [0u8; READY.len() + 1];
    let out = child
        .stdout
        .as_mut()
        .ok_or("a flooding namespace has no standard output")?;
    if out.read_exact(&mut said).is_ok() && said[..READY.len()] == *READY.as_bytes() {
        return Ok(());
    }
    let mut why = String::new();
    if let Some(e) = child.stderr.as_mut() {
        let _ = e.read_to_string(&mut why);
    }
    Err(format!(
        "a flooding namespace did not get ready: said {:?}, {}",
        String::from_utf8_lossy(&said),
        why.trim()
    ))
}

/// Reads what a flooder printed when it stopped: its inode and what it sent.
fn stopped(child: &mut Child) -> GuestResult<Flooded> {
    let out = child
        .stdout
        .as_mut()
        .ok_or("a flooding namespace has no standard output")?;
    let mut f = Flooded::default();
    for line in BufReader::new(out).lines().take(2) {
        let line = line.map_err(|e| e.to_string())?;
        let value = |key: &str| -> Option<u64> { line.strip_prefix(key)?.trim().parse().ok() };
        match (value("inode "), value("sent ")) {
            (Some(inode), _) => f.inode = inode,
            (_, Some(sent)) => f.sent = sent,
            _ => return Err(format!("a flooding namespace said '{line}'")),
        }
    }
    if f.inode == 0 {
        let mut why = String::new();
        if let Some(e) = child.stderr.as_mut() {
            let _ = std::io::Read::read_to_string(e, &mut why);
        }
        return Err(format!("a flooding namespace failed: {}", why.trim()));
    }
    Ok(f)
}

/// The counters of each flooding namespace, read through its process. Each
/// flooder's last write into its tap has returned, so its hook has seen every
/// datagram: the counters are final.
fn counters_of(children: &[Child]) -> GuestResult<Vec<Vec<(String, u64)>>> {
    let texts = children
        .iter()
        .map(|c| {
            let path = format!("/proc/{}/net/nsfilter", c.id());
            fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))
        })
        .collect::<GuestResult<Vec<String>>>()?;
    texts
        .iter()
        .map(|text| {
            text.lines()
                .map(|l| {
                    let (k, v) = l
                        .split_once(' ')
                        .ok_or_else(|| format!("'{l}' in /proc/net/nsfilter"))?;
                    let v = v
                        .trim()
                        .parse()
                        .map_err(|_| format!("'{l}' in /proc/net/nsfilter"))?;
                    Ok((k.to_string(), v))
                })
                .collect()
        })
        .collect()
}

/// Whether the budget has refused a line of any of the flooders' namespaces.
fn budget_refused(children: &[Child]) -> GuestResult<bool> {
    for counters in counters_of(children)? {
        if counter(&counters, "suppressed_budget")? > 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The namespace a packet or summary line is about, if it is one.
fn line_netns(line: &str) -> Option<u64> {
    let rest = line
        .strip_prefix("nsfilter: NETNS=")
        .or_else(|| line.strip_prefix("nsfilter: ratelimit: netns "))?;
    rest.split(' ').next()?.parse().ok()
}

/// Crowds flood the budget, nsfilter loaded with its defaults: 100
/// namespaces made by root (`unshare -n`), then 40 made by an unprivileged
/// user through user namespaces (uid 65534, `unshare -rn`; 1, 10 and 40 in
/// `make stress`), unless this kernel forbids those. See [`crowd`] for what
/// each must show.
pub(super) fn test_budget(ctx: &mut Ctx) -> GuestResult {
    ctx.load()?;
    for f in [GO, STOP, DONE] {
        let _ = fs::remove_file(f);
    }
    sh("ip netns add bq")?;
    crowd(ctx, 100, false)?;
    if fs::read_to_string("/proc/sys/kernel/unprivileged_userns_clone")
        .is_ok_and(|v| v.trim() == "0")
    {
        println!("# this kernel forbids unprivileged user namespaces: no unprivileged crowd");
    } else {
        for &n in ctx.scale.unprivileged_crowds {
            crowd(ctx, n, true)?;
        }
    }
    ctx.unload()
}

/// `n` namespaces flood at once; the initial namespace and a
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
    // The probes come in through a tap device in each of the two
    // namespaces. Sent on loopback, they were dropped by the CPU's backlog
    // queue, which every namespace's loopback shares, before any hook saw
    // them: under a crowd on PREEMPT_RT, 4 of 16 reached the hook. A tap's
    // write runs the hooks before it returns (see `sys::Tap`), so each probe
    // reaches nsfilter, once, when it is sent.
    let taps = (
        sys::Tap::create("bpi").map_err(|e| format!("tap bpi: {e}"))?,
        super::net::in_netns(Some("bq"), || sys::Tap::create("bpq"))?,
    );
    sh("ip link set bpi up && ip -n bq link set bpq up")?;
    // From a source port of this crowd's own.
    let spt = 30000 + u16::try_from(n).map_err(|_| "too many namespaces".to_string())?;
    let probe = frames::udp4_broadcast(
        [0x02, 0, 0, 0, 0x0b, 0x01],
        ([10, 77, 0, 1], spt),
        ([10, 77, 0, 2], 7777),
        b"prob",
    );
    let quiet_before = proc_counters("bq")?;
    for f in [GO, STOP, DONE] {
        let _ = fs::remove_file(f);
    }
    // However this crowd ends, its flooders stop and exit.
    let _release = Release;
    let mut children = Vec::new();
    for _ in 0..n {
        children.push(spawn_flooder(unprivileged)?);
    }
    for child in &mut children {
        ready(child)?;
    }
    ctx.mark();
    fs::write(GO, "").map_err(|e| format!("{GO}: {e}"))?;
    let start = Instant::now();
    // A probe a second from each of the two, never less than a second
    // apart (should this thread be late for one), for the scale's seconds
    // and then until the budget has refused a line, within a bound: on a
    // kernel where each datagram is slow (the debug one) the crowd's lines
    // outrun the budget's rate only slightly, and its burst takes a while
    // to drain.
    let most = (secs * 2).max(60);
    let mut last: Option<Instant> = None;
    let mut probes = 0;
    while probes < secs || (probes < most && !budget_refused(&children)?) {
        let mut next = start + Duration::from_secs(u64::from(probes) + 1);
        if let Some(last) = last {
            next = next.max(last + Duration::from_secs(1));
        }
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        last = Some(Instant::now());
        for tap in [&taps.0, &taps.1] {
            tap.receive(&probe).map_err(|e| format!("a probe: {e}"))?;
        }
        probes += 1;
        let _ = ctx.kmsg.poll();
    }
    fs::write(STOP, "").map_err(|e| format!("{STOP}: {e}"))?;
    let mut flooded: Vec<Flooded> = children
        .iter_mut()
        .map(stopped)
        .collect::<GuestResult<_>>()?;
    for (f, counters) in flooded.iter_mut().zip(counters_of(&children)?) {
        if counter(&counters, "netns")? != f.inode {
            return Err(format!(
                "read the counters of {counters:?} for namespace {}",
                f.inode
            ));
        }
        f.counters = counters;
    }
    fs::write(DONE, "").map_err(|e| format!("{DONE}: {e}"))?;
    for mut child in children {
        let status = child
            .wait()
            .map_err(|e| format!("a flooding namespace: {e}"))?;
        if !status.success() {
            return Err(format!("a flooding namespace ended with {status}"));
        }
    }
    drop(taps);
    let _ = ctx.kmsg.poll();
    let (seen, seen_us) = (ctx.kmsg.seen.clone(), ctx.kmsg.seen_us.clone());
    if ctx.kmsg.lost > 0 {
        return Err(format!(
            "the kernel overwrote {} records before they were read",
            ctx.kmsg.lost
        ));
    }
    // Every probe is logged: a line from the tap, from this crowd's port.
    for (who, inode, dev) in [("initial", init, "bpi"), ("quiet", quiet, "bpq")] {
        let want = format!("nsfilter: NETNS={inode} IN={dev} ");
        let tail = " SRC=10.77.0.1 DST=10.77.0.2 ";
        let port = format!(" SPT={spt} DPT=7777 LEN=12 ");
        let got = seen
            .iter()
            .filter(|l| l.starts_with(&want) && l.contains(tail) && l.contains(&port))
            .count();
        if got != probes as usize {
            let ns = if who == "quiet" { Some("bq") } else { None };
            return Err(format!(
                "the {who} namespace's probes: {got} logged of {probes}, one a second, while \
                 {n} namespaces flooded (its counters: {:?})",
                proc_counters_in(ns)?
            ));
        }
    }
    // The budget: the records of every namespace but the initial one, in
    // any interval of the kernel's log, are at most the burst plus the rate
    // times its length, stretched by STAMP_LAG (plus one for the rounding).
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
            let bound = burst + rate * (shared[j] - shared[i] + STAMP_LAG_US) / 1_000_000 + 1;
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
        // The hook saw every datagram written into the tap, and only those.
        if fates != seen_by_hook || seen_by_hook != f.sent {
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
    let own_rate: u64 = param_read("log_rate")?
        .parse()
        .map_err(|_| "log_rate is not a number".to_string())?;
    let elapsed = start.elapsed();
    if refused.1 == 0 && n as u64 * own_rate > rate {
        // Lines their own limits let through, against what the budget
        // gives over the flood: on a kernel too slow for the crowd to reach
        // it (the debug kernel on a loaded host), say so with the figures.
        let passed: u64 = flooded
            .iter()
            .map(|f| counter(&f.counters, "logged").unwrap_or(0))
            .sum();
        return Err(format!(
            "{n} namespaces flooding never reached the budget: {} datagrams sent, \
             {passed} lines through their own limits in {} ms, where the budget gives \
             {burst} + {rate}/s",
            flooded.iter().map(|f| f.sent).sum::<u64>(),
            elapsed.as_millis()
        ));
    }
    let summaries: usize = by_ns
        .iter()
        .filter(|(ns, _)| **ns != init)
        .map(|(_, (_, s))| s.len())
        .sum();
    println!(
        "# {n} {}namespaces flooded for {probes} s ({} datagrams): {} records of theirs in the log \
         ({} packet lines, {summaries} summary lines, {} ms), \
         closest to the bound: {} in {} us ({}.{}%); refused by their own limit {}, by the budget {}",
        if unprivileged { "unprivileged " } else { "" },
        flooded.iter().map(|f| f.sent).sum::<u64>(),
        shared.len(),
        shared.len() - summaries,
        elapsed.as_millis(),
        worst.1,
        worst.2,
        worst.0 / 10,
        worst.0 % 10,
        refused.0,
        refused.1
    );
    Ok(())
}
