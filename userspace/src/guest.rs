//! The agent: this program run inside the lab VM by `/init`.
//!
//! It reads its task from the initramfs, prints the kernel's taint before and
//! after, and either runs the test suite (KTAP on the console), the lesson, or
//! the user's command with the module loaded.

use crate::initramfs::guest_path;
use crate::kmsg::{self, Kmsg};
use crate::sys;
use crate::verdict::TAINT_MARKER;
use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

/// How long to wait for log lines that the traffic should have produced.
const LOG_WAIT: Duration = Duration::from_secs(5);

/// The exact line nsfilter logs when it is loaded.
pub const LOADED_LINE: &str = "nsfilter: loaded: logging PRE_ROUTING in every network namespace";
/// The exact line nsfilter logs when it is unloaded.
pub const UNLOADED_LINE: &str = "nsfilter: unloaded";

/// A failed step inside the guest.
type GuestResult<T = ()> = Result<T, String>;

/// Runs the agent; returns its exit status.
pub fn main() -> i32 {
    let args = fs::read_to_string(guest_path::ARGS).unwrap_or_default();
    let args: Vec<&str> = args.lines().collect();
    let before = taint();
    let code = match dispatch(&args) {
        Ok(code) => code,
        Err(e) => {
            println!("nsfilter-lab (guest): {e}");
            1
        }
    };
    println!("{TAINT_MARKER}before={before} after={}@@", taint());
    code
}

fn dispatch(args: &[&str]) -> GuestResult<i32> {
    match args.first().copied() {
        Some("test") => Ok(run_suite(args.get(1).copied().unwrap_or(""))),
        Some("exec") => exec(&args[1..]),
        other => Err(format!("unknown guest task {other:?}")),
    }
}

fn taint() -> u64 {
    fs::read_to_string("/proc/sys/kernel/tainted")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(u64::MAX)
}

/// `exec [--no-module] -- ARGS...`: the user's command, module loaded.
fn exec(args: &[&str]) -> GuestResult<i32> {
    let (load, rest) = match args.first() {
        Some(&"--no-module") => (false, &args[1..]),
        _ => (true, args),
    };
    if load {
        insmod()?;
    }
    let script = format!(". {} ; {}", guest_path::PROFILE, rest.join(" "));
    let status = Command::new("/bin/sh")
        .args(["-c", &script])
        .status()
        .map_err(|e| format!("failed to start /bin/sh: {e}"))?;
    if load {
        rmmod()?;
    }
    Ok(status.code().unwrap_or(128))
}

/// Runs `sh -c CMD` (with iproute2's `ip`); fails with its output if it fails.
pub fn sh(cmd: &str) -> GuestResult<String> {
    let script = format!(". {} ; {cmd}", guest_path::PROFILE);
    let out = Command::new("/bin/sh")
        .args(["-c", &script])
        .output()
        .map_err(|e| format!("failed to start /bin/sh: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("'{cmd}' failed ({}): {}", out.status, text.trim()))
    }
}

fn insmod() -> GuestResult {
    sh(&format!("insmod {}", guest_path::MODULE)).map(drop)
}

fn rmmod() -> GuestResult {
    sh("rmmod nsfilter").map(drop)
}

/// The inode number of a namespace file (`/run/netns/NAME`, `/proc/1/ns/net`).
pub fn ns_inode(path: &str) -> GuestResult<u64> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path)
        .map(|m| m.ino())
        .map_err(|e| format!("failed to stat {path}: {e}"))
}

/// The file of a named namespace, or of the initial one for `None`.
fn ns_file(ns: Option<&str>) -> String {
    ns.map_or_else(
        || "/proc/1/ns/net".to_string(),
        |n| format!("/run/netns/{n}"),
    )
}

/// Runs `f` on a thread inside namespace `ns` (the initial one for `None`).
/// Sockets it creates stay in that namespace wherever they are used later.
pub fn in_netns<T: Send + 'static>(
    ns: Option<&str>,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> GuestResult<T> {
    let path = ns_file(ns);
    let file = File::open(&path).map_err(|e| format!("failed to open {path}: {e}"))?;
    std::thread::spawn(move || {
        sys::enter_netns(&file)?;
        f()
    })
    .join()
    .map_err(|_| "a namespace thread panicked".to_string())?
    .map_err(|e| format!("in namespace {path}: {e}"))
}

/// The state a test runs with: the kernel log since the test began.
pub struct Ctx {
    kmsg: Kmsg,
}

impl Ctx {
    fn new() -> GuestResult<Self> {
        Ok(Self {
            kmsg: Kmsg::open().map_err(|e| format!("failed to open /dev/kmsg: {e}"))?,
        })
    }

    /// Loads nsfilter and checks its exact load line.
    pub fn load(&mut self) -> GuestResult {
        insmod()?;
        self.expect(&[LOADED_LINE])
    }

    /// Unloads nsfilter and checks its exact unload line.
    pub fn unload(&mut self) -> GuestResult {
        rmmod()?;
        self.expect(&[UNLOADED_LINE])
    }

    /// Waits (bounded) until every pattern matches a distinct new log line;
    /// `#` in a pattern stands for a number the test cannot know (an IP ID).
    pub fn expect(&mut self, patterns: &[&str]) -> GuestResult {
        let mut missing = Vec::new();
        let found = self
            .kmsg
            .wait_until(LOG_WAIT, |seen| {
                missing = patterns
                    .iter()
                    .filter(|p| !seen.iter().any(|l| kmsg::matches(p, l)))
                    .map(|p| p.to_string())
                    .collect();
                missing.is_empty()
            })
            .map_err(|e| format!("failed to read /dev/kmsg: {e}"))?;
        if found {
            return Ok(());
        }
        let mut msg = String::from("expected log lines did not appear:");
        for p in &missing {
            msg.push_str(&format!("\n  want: {p}"));
        }
        for l in self.nsfilter_lines() {
            msg.push_str(&format!("\n  seen: {l}"));
        }
        Err(msg)
    }

    /// The nsfilter lines logged since the test began (or the last `mark`).
    pub fn nsfilter_lines(&mut self) -> Vec<String> {
        let _ = self.kmsg.poll();
        self.kmsg
            .seen
            .iter()
            .filter(|l| l.starts_with("nsfilter: NETNS="))
            .cloned()
            .collect()
    }

    /// Forgets the lines seen so far.
    pub fn mark(&mut self) {
        let _ = self.kmsg.poll();
        self.kmsg.seen.clear();
    }
}

/// One test of the suite.
struct Test {
    name: &'static str,
    run: fn(&mut Ctx) -> GuestResult,
}

const SUITE: &[Test] = &[
    Test {
        name: "load_unload",
        run: test_load_unload,
    },
    Test {
        name: "seed001_two_namespaces",
        run: test_seed001,
    },
];

/// Runs the tests whose name contains `filter`, printing KTAP.
fn run_suite(filter: &str) -> i32 {
    let tests: Vec<&Test> = SUITE.iter().filter(|t| t.name.contains(filter)).collect();
    println!("KTAP version 1");
    println!("1..{}", tests.len());
    let mut failed = 0;
    for (i, test) in tests.iter().enumerate() {
        let result = Ctx::new().and_then(|mut ctx| {
            let r = (test.run)(&mut ctx);
            // Leave a clean VM for the next test whatever happened.
            let _ = sh("ip -all netns delete; ip link del veth0 2>/dev/null; true");
            if fs::read_to_string("/proc/modules").is_ok_and(|m| m.contains("nsfilter ")) {
                let _ = rmmod();
            }
            r
        });
        match result {
            Ok(()) => println!("ok {} {}", i + 1, test.name),
            Err(e) => {
                failed += 1;
                for line in e.lines() {
                    println!("# {line}");
                }
                println!("not ok {} {}", i + 1, test.name);
            }
        }
    }
    i32::from(failed > 0)
}

/// Foundation: load, see a packet logged in the initial namespace, unload.
fn test_load_unload(ctx: &mut Ctx) -> GuestResult {
    sh("ip link set lo up")?;
    ctx.load()?;
    let init = ns_inode("/proc/1/ns/net")?;
    let udp = in_netns(None, || UdpSocket::bind("127.0.0.1:40000"))?;
    udp.send_to(b"nsfilter", "127.0.0.1:40000")
        .map_err(|e| format!("UDP send on loopback failed: {e}"))?;
    ctx.expect(&[&format!(
        "nsfilter: NETNS={init} IN=lo SRC=127.0.0.1 DST=127.0.0.1 LEN=36 TTL=64 ID=# DF PROTO=UDP SPT=40000 DPT=40000"
    )])?;
    ctx.unload()?;
    // After rmmod, traffic is no longer logged.
    ctx.mark();
    udp.send_to(b"nsfilter", "127.0.0.1:40000")
        .map_err(|e| format!("UDP send on loopback failed: {e}"))?;
    let mut buf = [0u8; 16];
    udp.set_read_timeout(Some(LOG_WAIT))
        .map_err(|e| e.to_string())?;
    udp.recv(&mut buf)
        .map_err(|e| format!("loopback UDP not received: {e}"))?;
    let after = ctx.nsfilter_lines();
    if !after.is_empty() {
        return Err(format!("lines logged after rmmod: {after:?}"));
    }
    Ok(())
}

/// Creates namespaces `a` and `b` joined by veth `dev_a`–`dev_b`, with host
/// routes between `ip_a` and `ip_b` (the seed 001 lab).
fn veth_pair(a: &str, dev_a: &str, ip_a: &str, b: &str, dev_b: &str, ip_b: &str) -> GuestResult {
    sh(&format!(
        "ip netns add {a} && ip netns add {b} && \
         ip link add name {dev_a} type veth peer name {dev_b} && \
         ip link set {dev_a} netns {a} && ip link set {dev_b} netns {b} && \
         ip netns exec {a} ip link set lo up && ip netns exec {b} ip link set lo up && \
         ip netns exec {a} ip link set {dev_a} up && ip netns exec {b} ip link set {dev_b} up && \
         ip netns exec {a} ip addr add {ip_a} dev {dev_a} && \
         ip netns exec {b} ip addr add {ip_b} dev {dev_b} && \
         ip netns exec {a} ip route add {ip_b} dev {dev_a} && \
         ip netns exec {b} ip route add {ip_a} dev {dev_b}"
    ))
    .map(drop)
}

/// Sends one UDP datagram from `from` in namespace `ns_from` to `to` in
/// `ns_to`, and checks it arrived.
fn udp_exchange(ns_from: &str, from: SocketAddr, ns_to: &str, to: SocketAddr) -> GuestResult {
    let rx = in_netns(Some(ns_to), move || UdpSocket::bind(to))?;
    let tx = in_netns(Some(ns_from), move || UdpSocket::bind(from))?;
    tx.send_to(b"nsfilter", to)
        .map_err(|e| format!("UDP send failed: {e}"))?;
    rx.set_read_timeout(Some(LOG_WAIT))
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 16];
    rx.recv(&mut buf)
        .map_err(|e| format!("UDP datagram not received: {e}"))?;
    Ok(())
}

/// Opens a TCP connection from `ns_from` to `to` in `ns_to`; returns the
/// client's port.
fn tcp_connect(ns_from: &str, ns_to: &str, to: SocketAddr) -> GuestResult<u16> {
    let listener = in_netns(Some(ns_to), move || TcpListener::bind(to))?;
    let stream = in_netns(Some(ns_from), move || {
        TcpStream::connect_timeout(&to, LOG_WAIT)
    })?;
    let port = stream.local_addr().map_err(|e| e.to_string())?.port();
    listener
        .accept()
        .map_err(|e| format!("TCP accept failed: {e}"))?;
    Ok(port)
}

fn v4(a: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::from(a), port))
}

/// Seed 001: netns0/netns1 over vnet0/vnet1; ping, UDP and TCP, each logged
/// in the namespace that receives it, with that namespace's inode.
fn test_seed001(ctx: &mut Ctx) -> GuestResult {
    ctx.load()?;
    veth_pair(
        "netns0",
        "vnet0",
        "192.168.0.2",
        "netns1",
        "vnet1",
        "192.168.0.3",
    )?;
    let ns0 = ns_inode("/run/netns/netns0")?;
    let ns1 = ns_inode("/run/netns/netns1")?;
    sh("ip netns exec netns0 ping -c 1 -W 5 192.168.0.3")?;
    udp_exchange(
        "netns0",
        v4([192, 168, 0, 2], 40000),
        "netns1",
        v4([192, 168, 0, 3], 5353),
    )?;
    let port = tcp_connect("netns0", "netns1", v4([192, 168, 0, 3], 8080))?;
    let a = "SRC=192.168.0.2 DST=192.168.0.3";
    let b = "SRC=192.168.0.3 DST=192.168.0.2";
    ctx.expect(&[
        &format!("nsfilter: NETNS={ns1} IN=vnet1 {a} LEN=84 TTL=64 ID=# DF PROTO=ICMP TYPE=8 CODE=0 ID=# SEQ=0"),
        &format!("nsfilter: NETNS={ns0} IN=vnet0 {b} LEN=84 TTL=64 ID=# PROTO=ICMP TYPE=0 CODE=0 ID=# SEQ=0"),
        &format!("nsfilter: NETNS={ns1} IN=vnet1 {a} LEN=36 TTL=64 ID=# DF PROTO=UDP SPT=40000 DPT=5353"),
        &format!("nsfilter: NETNS={ns1} IN=vnet1 {a} LEN=60 TTL=64 ID=# DF PROTO=TCP SPT={port} DPT=8080 SYN"),
        &format!("nsfilter: NETNS={ns0} IN=vnet0 {b} LEN=60 TTL=64 ID=0 DF PROTO=TCP SPT=8080 DPT={port} ACK SYN"),
    ])?;
    ctx.unload()
}
