//! The kernel is the oracle: nsfilter's lines against the kernel's own `LOG`
//! (nft's `log`, printed by `nf_log_syslog`) for the very same packets.
//!
//! In every namespace the test uses, an nft chain hooks PRE_ROUTING at the
//! priority right after nsfilter's (`NF_IP_PRI_FIRST + 1`) and logs every
//! packet with the prefix `nsfilter-oracle <inode> `. Both hooks print
//! their line in the same softirq, nsfilter's first, so once a namespace has
//! as many of one as of the other no packet is between the two: then the
//! lines of each namespace must be equal as multisets, the text after
//! nsfilter's `NETNS=<inode> ` against the text after the kernel's prefix.

use super::context::Ctx;
use super::labs::{clean_up, LABS};
use super::module::{counter, proc_counters};
use super::net::{in_netns, ns_inode, sh};
use super::GuestResult;
use crate::fuzz::{self, Rng, LOGFORMAT_KINDS};
use crate::initramfs::guest_path;
use crate::sys;
use std::collections::BTreeMap;
use std::fs;
use std::time::Duration;

/// The kernel's prefix, before the namespace's inode and a space: as long
/// as nsfilter's `nsfilter: NETNS=<inode> `, so that a line too long for
/// `LOG`'s buffer is cut at the same character in both (see
/// `rust/logline.rs`, `LOG_TEXT_MAX`) and compares equal.
const ORACLE: &str = "nsfilter-oracle ";
/// nsfilter's packet lines start so.
const OURS: &str = "nsfilter: NETNS=";
/// The nft chain of the oracle, for `nft -f`: `@INODE@` is the namespace's.
const RULESET: &str = "table inet nsfilter_oracle {\n\
    chain pre {\n\
        type filter hook prerouting priority -2147483647; policy accept;\n\
        log prefix \"nsfilter-oracle @INODE@ \" level info\n\
    }\n\
}\n";
/// Frames injected between two drains: well under the kernel log buffer
/// (128 KiB on the lab kernel) for two lines each.
const BATCH: usize = 100;
/// How long a drain waits for the two hooks' lines to pair up (a bound,
/// not a delay: a balanced drain returns at once; two vCPUs on one TCG
/// thread, as Debian's kernel runs, can take seconds to empty a backlog).
const DRAIN_WAIT: Duration = Duration::from_secs(30);
/// A file whose presence (`nsfilter-lab test --add FILE:PATH`) makes the test
/// print fixture records for `userspace/tests/fixtures/`.
const FIXTURE_FLAG: &str = "/etc/nsfilter-logformat-fixture";
const MAC_A: [u8; 6] = [2, 0, 0, 0, 0xf0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0xf0, 2];

/// Installs the oracle chain in a namespace (the initial one for `None`).
fn oracle_chain(ns: Option<&str>) -> GuestResult {
    let (inode, exec) = match ns {
        None => (ns_inode("/proc/1/ns/net")?, String::new()),
        Some(n) => (
            ns_inode(&format!("/run/netns/{n}"))?,
            format!("ip netns exec {n} "),
        ),
    };
    let file = format!("/tmp/oracle-{inode}.nft");
    fs::write(&file, RULESET.replace("@INODE@", &inode.to_string()))
        .map_err(|e| format!("writing {file}: {e}"))?;
    sh(&format!("{exec}nft -f {file}")).map(drop)
}

/// While it lives, the guest's shell profile makes `ip netns add NAME` also
/// install the oracle chain in NAME: the labs' namespaces get it before
/// their first packet. The profile is restored on drop.
struct EveryNewNamespace {
    saved: String,
}

impl EveryNewNamespace {
    fn install() -> GuestResult<Self> {
        let saved = fs::read_to_string(guest_path::PROFILE)
            .map_err(|e| format!("reading {}: {e}", guest_path::PROFILE))?;
        let wrapper = format!(
            "{saved}\nip() {{\n  /usr/sbin/ip \"$@\" || return $?\n  \
             if [ \"$1\" = netns ] && [ \"$2\" = add ]; then\n    \
               i=$(stat -L -c %i /run/netns/$3) || return 1\n    \
               sed \"s/@INODE@/$i/\" /tmp/oracle.nft > /tmp/oracle-$i.nft && \
               /usr/sbin/ip netns exec \"$3\" nft -f /tmp/oracle-$i.nft || return 1\n  \
             fi\n}}\n"
        );
        fs::write("/tmp/oracle.nft", RULESET).map_err(|e| e.to_string())?;
        fs::write(guest_path::PROFILE, wrapper).map_err(|e| e.to_string())?;
        Ok(Self { saved })
    }
}

impl Drop for EveryNewNamespace {
    fn drop(&mut self) {
        let _ = fs::write(guest_path::PROFILE, &self.saved);
    }
}

/// One line of either hook, split into namespace and text.
fn split(line: &str) -> Option<(bool, u64, &str)> {
    if let Some(rest) = line.strip_prefix(OURS) {
        let (ns, text) = rest.split_once(' ')?;
        return Some((true, ns.parse().ok()?, text));
    }
    let rest = line.strip_prefix(ORACLE)?;
    let (ns, text) = rest.split_once(' ')?;
    Some((false, ns.parse().ok()?, text))
}

/// What the comparison found so far.
#[derive(Default)]
struct Comparison {
    /// Packets whose two lines were equal.
    compared: u64,
    /// Differing lines, nsfilter's and the kernel's, a few of them.
    differences: Vec<(String, String)>,
    /// Differing packets in all.
    differing: u64,
    /// Compared packets by what their line shows.
    features: BTreeMap<&'static str, u64>,
    /// nsfilter lines seen per namespace (to check against its counter).
    ours: BTreeMap<u64, u64>,
}

impl Comparison {
    /// Waits (bounded) until every namespace has as many nsfilter lines as
    /// kernel lines, and `done` holds of the lines seen; then compares them
    /// and forgets them.
    fn drain(&mut self, ctx: &mut Ctx, done: impl Fn(&[String]) -> bool) -> GuestResult {
        let balanced = |seen: &[String]| {
            let mut count: BTreeMap<u64, i64> = BTreeMap::new();
            for (ours, ns, _) in seen.iter().filter_map(|l| split(l)) {
                *count.entry(ns).or_default() += if ours { 1 } else { -1 };
            }
            count.values().all(|c| *c == 0)
        };
        let ok = ctx
            .kmsg
            .wait_until(DRAIN_WAIT, |seen| balanced(seen) && done(seen))
            .map_err(|e| format!("failed to read /dev/kmsg: {e}"))?;
        let seen = ctx.kmsg.take();
        // Each line with its level in front (`<4>`): the kernel's LOG logs
        // at its level, nsfilter at log_level, and the two must agree too.
        let keyed: Vec<(bool, u64, String)> = seen
            .iter()
            .filter_map(|(level, l)| {
                let (ours, ns, text) = split(l)?;
                Some((ours, ns, format!("<{level}>{text}")))
            })
            .collect();
        let mut by_ns: BTreeMap<u64, (Vec<&str>, Vec<&str>)> = BTreeMap::new();
        for (ours, ns, text) in &keyed {
            let entry = by_ns.entry(*ns).or_default();
            if *ours {
                entry.0.push(text);
            } else {
                entry.1.push(text);
            }
        }
        // Which lines one hook printed and the other did not, in the
        // namespaces where their counts differ (for the error below).
        let mut unpaired = String::new();
        for (ns, (mut a, mut b)) in by_ns {
            *self.ours.entry(ns).or_default() += a.len() as u64;
            a.sort_unstable();
            b.sort_unstable();
            let (only_a, only_b) = difference(&a, &b);
            if a.len() != b.len() {
                unpaired.push_str(&format!(
                    "\n  netns {ns}: {} nsfilter lines, {} kernel lines",
                    a.len(),
                    b.len()
                ));
                for l in only_a.iter().take(6) {
                    unpaired.push_str(&format!("\n    only nsfilter: {l}"));
                }
                for l in only_b.iter().take(6) {
                    unpaired.push_str(&format!("\n    only kernel:   {l}"));
                }
            }
            self.differing += only_a.len().max(only_b.len()) as u64;
            for i in 0..only_a.len().max(only_b.len()) {
                if self.differences.len() < 5 {
                    let get = |v: &[&str]| v.get(i).map_or("(none)".into(), |s| s.to_string());
                    self.differences
                        .push((format!("{ns} {}", get(&only_a)), get(&only_b)));
                }
            }
            for line in a.iter().filter(|l| !only_a.contains(l)) {
                self.compared += 1;
                for feature in features(line) {
                    *self.features.entry(feature).or_default() += 1;
                }
            }
        }
        if ok {
            Ok(())
        } else {
            // Say which namespaces were short of which lines, so that a
            // failure can be told from a slow log.
            Err(format!(
                "the two hooks' lines did not pair up within {} s ({} lines pending, \
                 {} records overwritten before they were read){unpaired}",
                DRAIN_WAIT.as_secs(),
                seen.len(),
                ctx.kmsg.lost
            ))
        }
    }
}

/// The lines of `a` and of `b` (both sorted) that the other lacks.
fn difference<'a>(a: &[&'a str], b: &[&'a str]) -> (Vec<&'a str>, Vec<&'a str>) {
    let (mut i, mut j) = (0, 0);
    let (mut only_a, mut only_b) = (Vec::new(), Vec::new());
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x == y => {
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x < y => {
                only_a.push(*x);
                i += 1;
            }
            (Some(x), None) => {
                only_a.push(*x);
                i += 1;
            }
            (_, Some(y)) => {
                only_b.push(*y);
                j += 1;
            }
            (None, None) => break,
        }
    }
    (only_a, only_b)
}

/// What a compared line shows, for the summary.
fn features(line: &str) -> Vec<&'static str> {
    let mut f = vec![if line.contains(" TC=") {
        "ipv6"
    } else {
        "ipv4"
    }];
    let outer = line.split(" [").next().unwrap_or(line);
    for (needle, name) in [
        ("PROTO=TCP ", "tcp"),
        ("PROTO=UDP ", "udp"),
        ("PROTO=UDPLITE ", "udplite"),
        ("PROTO=ICMP ", "icmp"),
        ("PROTO=ICMPv6 ", "icmpv6"),
        ("PROTO=AH ", "ah"),
        ("PROTO=ESP ", "esp"),
        ("PROTO=132 ", "sctp"),
        ("FRAG:", "fragment"),
        ("INCOMPLETE [", "incomplete"),
        ("TRUNCATED", "truncated"),
    ] {
        if outer.contains(needle) {
            f.push(name);
        }
    }
    if line.contains(" [") {
        f.push("icmp-error-with-inner-packet");
    }
    f
}

/// The network bytes of an Ethernet frame as the kernel keeps them after
/// its checks (trimmed to the IP length), if it passes them.
fn network_bytes(frame: &[u8]) -> Option<(&'static str, &[u8])> {
    let p = frame.get(14..)?;
    match frame.get(12..14)? {
        [8, 0] => {
            let len = usize::from(u16::from_be_bytes([*p.get(2)?, *p.get(3)?]));
            Some(("4", p.get(..len)?))
        }
        [0x86, 0xdd] => {
            let len = usize::from(u16::from_be_bytes([*p.get(4)?, *p.get(5)?])) + 40;
            Some(("6", p.get(..len)?))
        }
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every seed lab and the LOG-format corpus, each packet's line from
/// nsfilter against the kernel's own LOG line: zero differences.
pub(super) fn test_logformat(ctx: &mut Ctx) -> GuestResult {
    // Both at level info, not the default: a line at another level than
    // log_level says is a difference.
    ctx.load_with(
        "log_rate=1000000 log_burst=1000000 budget_rate=1000000 budget_burst=1000000 log_level=6",
    )?;
    sh("sysctl -qw net.netfilter.nf_log_all_netns=1 && ip link set lo up")?;
    oracle_chain(None)?;
    let every = EveryNewNamespace::install()?;
    let mut cmp = Comparison::default();
    // The seed labs, each checking its own lines as in its test.
    ctx.mark();
    for (title, _, lab) in LABS {
        lab(ctx).map_err(|e| format!("{title}: {e}"))?;
        clean_up()?;
        // A lab's links may still send (an MLD report from the LWN lab's
        // veth1 was seen on Debian's kernel) until clean-up has removed
        // them: compare everything logged up to here now, so that the next
        // lab, which checks exactly what it logs, sees none of it.
        cmp.drain(ctx, |_| true)?;
        // Cleaning up flushes the initial namespace's rules (the NAT lab's),
        // the oracle's chain with them.
        oracle_chain(None)?;
    }
    let labs = cmp.compared;
    // The corpus, through a veth from lf0 into lf1. lf0 has IPv6 off, so
    // that lf1 receives nothing but the test's frames.
    sh("ip netns add lf0 && ip netns add lf1 && \
        ip netns exec lf0 sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 && \
        ip link add lf0v address 02:00:00:00:f0:01 type veth peer name lf1v address 02:00:00:00:f0:02 && \
        ip link set lf0v netns lf0 && ip link set lf1v netns lf1 && \
        ip netns exec lf1 ip addr add 10.9.0.2/24 dev lf1v && \
        ip netns exec lf1 ip addr add fd09::2/64 dev lf1v nodad && \
        ip netns exec lf0 ip link set lf0v up && ip netns exec lf1 ip link set lf1v up")?;
    drop(every);
    cmp.drain(ctx, |_| true)?;
    let lf1 = ns_inode("/run/netns/lf1")?;
    let logged_before = counter(&proc_counters("lf1")?, "logged")?;
    let ours_before = cmp.ours.get(&lf1).copied().unwrap_or(0);
    let target = ctx.scale.logformat_packets as u64;
    let mut rng = Rng::new(0x6c6f_6766_6d74);
    let mut injected: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut sent = 0u64;
    let sock = in_netns(Some("lf0"), || sys::PacketSocket::open("lf0v"))?;
    let sentinel = |n: u64| {
        let spec = crate::frames::Ipv4Spec {
            src: [10, 9, 0, 1],
            dst: [10, 9, 0, 2],
            proto: 17,
            // CAST: Wraps on purpose; the port below tells batches apart.
            id: n as u16,
            frag_off: 0x4000,
            ihl: 5,
            total_len: None,
        };
        let udp = crate::frames::udp(9, 9, &n.to_be_bytes());
        crate::frames::ethernet(MAC_B, MAC_A, 0x0800, &crate::frames::ipv4(spec, &udp))
    };
    let mut batch = 0u64;
    // Sentinels are compared too, but are not the corpus: not counted.
    let corpus = |cmp: &Comparison, batches: u64| cmp.compared - labs - batches;
    // At least two of three injected frames must reach the hooks (the
    // others fail the kernel's own checks before PRE_ROUTING: 90% reached
    // on every kernel so far).
    while corpus(&cmp, batch) < target && sent < target * 3 / 2 {
        for _ in 0..BATCH {
            let (kind, frame) = fuzz::logformat_frame(&mut rng, MAC_B, MAC_A);
            *injected.entry(kind).or_default() += 1;
            sent += 1;
            sock.send(&frame).map_err(|e| format!("injecting: {e}"))?;
        }
        batch += 1;
        sock.send(&sentinel(batch))
            .map_err(|e| format!("injecting: {e}"))?;
        let tail = format!("ID={} DF PROTO=UDP SPT=9 DPT=9 LEN=16 ", batch as u16);
        cmp.drain(ctx, |seen| {
            seen.iter()
                .any(|l| l.starts_with(ORACLE) && l.ends_with(&tail))
        })?;
    }
    // Every line nsfilter counted as logged was read and compared.
    let logged = counter(&proc_counters("lf1")?, "logged")? - logged_before;
    let ours = cmp.ours.get(&lf1).copied().unwrap_or(0) - ours_before;
    if std::path::Path::new(FIXTURE_FLAG).exists() {
        fixture(ctx, &sock)?;
    }
    let kinds: Vec<String> = LOGFORMAT_KINDS
        .iter()
        .map(|k| format!("{k} {}", injected.get(k).copied().unwrap_or(0)))
        .collect();
    let shown: Vec<String> = cmp
        .features
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    println!(
        "# logformat: compared {} packets ({labs} from the seed labs, {} of {sent} injected frames \
         reached the hooks, {batch} sentinels), {} differences; by line: {}; injected by kind: {}",
        cmp.compared,
        corpus(&cmp, batch),
        cmp.differing,
        shown.join(", "),
        kinds.join(", ")
    );
    if cmp.differing > 0 {
        let mut msg = format!("{} packets logged differently; the first:", cmp.differing);
        for (a, b) in &cmp.differences {
            msg.push_str(&format!("\n  nsfilter (netns {a}\n  kernel:  {b}"));
        }
        return Err(msg);
    }
    if logged != ours {
        return Err(format!(
            "nsfilter logged {logged} packets in lf1 but {ours} of its lines were read"
        ));
    }
    if corpus(&cmp, batch) < target {
        return Err(format!(
            "only {} corpus packets compared of {sent} injected, want {target}",
            corpus(&cmp, batch)
        ));
    }
    // Every kind of line the corpus is built to produce, in a fair number
    // (the rarest, truncated lines, were 1.3% of the lines at 20,000).
    let least = (target / 200).max(1);
    let short: Vec<String> = [
        "ah",
        "esp",
        "fragment",
        "icmp",
        "icmp-error-with-inner-packet",
        "icmpv6",
        "ipv4",
        "ipv6",
        "sctp",
        "tcp",
        "truncated",
        "udp",
        "udplite",
    ]
    .iter()
    .filter_map(|k| {
        let n = cmp.features.get(k).copied().unwrap_or(0);
        (n < least).then(|| format!("{k} {n}"))
    })
    .collect();
    if !short.is_empty() {
        return Err(format!(
            "kinds of line compared fewer than {least} times: {}",
            short.join(", ")
        ));
    }
    ctx.unload()
}

/// Prints fixture records: frames of the corpus one at a time, each with
/// the kernel's line for it, when both hooks printed the same.
fn fixture(ctx: &mut Ctx, sock: &sys::PacketSocket) -> GuestResult {
    let release = sh("uname -r")?;
    println!("# fixture-kernel: {}", release.trim());
    let mut rng = Rng::new(0x6669_7874);
    let mut sentinel_port = 20000u16;
    for _ in 0..400 {
        let (kind, frame) = fuzz::logformat_frame(&mut rng, MAC_B, MAC_A);
        if kind == "mutated" {
            continue;
        }
        sock.send(&frame).map_err(|e| format!("injecting: {e}"))?;
        sentinel_port += 1;
        let spec = crate::frames::Ipv4Spec {
            src: [10, 9, 0, 1],
            dst: [10, 9, 0, 2],
            proto: 17,
            id: sentinel_port,
            frag_off: 0x4000,
            ihl: 5,
            total_len: None,
        };
        let udp = crate::frames::udp(9, sentinel_port, b"");
        let s = crate::frames::ethernet(MAC_B, MAC_A, 0x0800, &crate::frames::ipv4(spec, &udp));
        sock.send(&s).map_err(|e| format!("injecting: {e}"))?;
        let tail = format!("SPT=9 DPT={sentinel_port} LEN=8 ");
        let found = ctx
            .kmsg
            .wait_until(Duration::from_secs(5), |seen| {
                seen.iter()
                    .any(|l| l.starts_with(ORACLE) && l.ends_with(&tail))
            })
            .map_err(|e| e.to_string())?;
        let seen: Vec<String> = ctx.kmsg.take().into_iter().map(|(_, l)| l).collect();
        let lines: Vec<(bool, u64, &str)> = seen
            .iter()
            .filter_map(|l| split(l))
            .filter(|(_, _, t)| !t.ends_with(&tail))
            .collect();
        if let ([(true, _, a), (false, _, b)], true, Some((family, bytes))) =
            (&lines[..], found, network_bytes(&frame))
        {
            if a == b {
                println!(
                    "# fixture: {family}\t{}\t{}\t{b}",
                    hex(&frame[..14]),
                    hex(bytes)
                );
            }
        }
    }
    Ok(())
}
