//! The five labs, one definition each: the lesson shows them, the VM tests
//! check them. Each builds its namespaces, sends its traffic and waits for
//! every line nsfilter must log for it. (The lab guide, `docs/labs.md`,
//! walks through the same five labs by hand and names the articles they
//! come from; `scripts/readme-labs.sh` checks it.)

use super::context::Ctx;
use super::module::{counter, proc_counters_in};
use super::net::{
    ns_inode, sh, tcp_open, udp_exchange, udp_round_trip, v4, veth_pair, TcpConn, LOG_WAIT,
};
use super::GuestResult;
use std::sync::Mutex;

/// A lab: builds its namespaces, sends its traffic, checks every line.
type Lab = fn(&mut Ctx) -> GuestResult;

/// The labs in the lesson's order: title, what it sets up and sends, the lab.
pub(super) const LABS: [(&str, &str, Lab); 5] = [
    (
        "Two namespaces joined by a veth pair",
        "netns0 (vnet0 192.168.0.2) <-> netns1 (vnet1 192.168.0.3); ping, UDP 40000->5353, TCP ->8080",
        lab_veth_pair,
    ),
    (
        "The initial namespace and netns1",
        "init (veth0 10.1.1.2/24) <-> netns1 (veth1 10.1.1.1/24); ping both ways",
        lab_initial_and_netns1,
    ),
    (
        "netns1 reaches the outside world through NAT",
        "netns1 (veth1 192.168.0.3) -> init, the router (veth0 192.168.0.1; eth0 203.0.113.1,\n  \
         forwarding, masquerade on eth0) -> outside (eth1 203.0.113.2); ping, UDP 40000->5353 and back, TCP ->8080.\n  \
         nsfilter's hook comes first in PRE_ROUTING, before conntrack and NAT: init logs the request\n  \
         from 192.168.0.3, outside logs it from 203.0.113.1 (masqueraded on the way out);\n  \
         init logs the reply still to 203.0.113.1, and netns1 gets it translated back to 192.168.0.3.",
        lab_nat,
    ),
    (
        "Two namespaces on a bridge",
        "ba (10.2.0.1) and bb (10.2.0.2) on br0 (10.2.0.254) in init; ping bb, then br0.\n  \
         The bridge forwards at layer 2: init logs only what is addressed to br0.",
        lab_bridge,
    ),
    (
        "An IPIP tunnel between two namespaces",
        "t1 (u1 10.3.0.1, tun1 172.16.1.1) <-> t2 (u2 10.3.0.2, tun2 172.16.1.2); ping over the tunnel.\n  \
         Each packet enters twice: outer (PROTO=4) on the veth, inner on the tunnel.",
        lab_ipip,
    ),
];

/// The seed 001 lab: builds it, sends traffic, checks every line.
pub(super) fn lab_veth_pair(ctx: &mut Ctx) -> GuestResult {
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
    let port = keep_open(tcp_open("netns0", "netns1", v4([192, 168, 0, 3], 8080))?)?;
    let to1 = format!("NETNS={ns1} IN=vnet1 SRC=192.168.0.2 DST=192.168.0.3");
    let to0 = format!("NETNS={ns0} IN=vnet0 SRC=192.168.0.3 DST=192.168.0.2");
    expect_exactly(
        ctx,
        &[
            format!("{to1} LEN=84 TTL=64 PROTO=ICMP TYPE=8 CODE=0"),
            format!("{to0} LEN=84 TTL=64 PROTO=ICMP TYPE=0 CODE=0"),
            format!("{to1} LEN=36 TTL=64 PROTO=UDP SPT=40000 DPT=5353"),
            format!("{to1} LEN=60 TTL=64 PROTO=TCP SPT={port} DPT=8080 SYN"),
            format!("{to0} LEN=60 TTL=64 PROTO=TCP SPT=8080 DPT={port} ACK SYN"),
            format!("{to1} LEN=52 TTL=64 PROTO=TCP SPT={port} DPT=8080 ACK"),
        ],
    )
    .map(drop)
}

/// The LWN lab (seed 003): the initial namespace's veth0 10.1.1.2/24 and
/// netns1's veth1 10.1.1.1/24; pings both ways, each side logs what it gets.
pub(super) fn lab_initial_and_netns1(ctx: &mut Ctx) -> GuestResult {
    sh("ip link set lo up && ip netns add netns1 && \
        ip link add veth0 type veth peer name veth1 && ip link set veth1 netns netns1 && \
        ip netns exec netns1 ip addr add 10.1.1.1/24 dev veth1 && \
        ip netns exec netns1 ip link set veth1 up && \
        ip addr add 10.1.1.2/24 dev veth0 && ip link set veth0 up")?;
    let init = ns_inode("/proc/1/ns/net")?;
    let ns1 = ns_inode("/run/netns/netns1")?;
    sh("ping -c 1 -W 5 10.1.1.1 && ip netns exec netns1 ping -c 1 -W 5 10.1.1.2")?;
    let to1 = format!("NETNS={ns1} IN=veth1 SRC=10.1.1.2 DST=10.1.1.1 LEN=84 TTL=64 PROTO=ICMP");
    let to0 = format!("NETNS={init} IN=veth0 SRC=10.1.1.1 DST=10.1.1.2 LEN=84 TTL=64 PROTO=ICMP");
    expect_exactly(
        ctx,
        &[
            format!("{to1} TYPE=8 CODE=0"),
            format!("{to0} TYPE=0 CODE=0"),
            format!("{to0} TYPE=8 CODE=0"),
            format!("{to1} TYPE=0 CODE=0"),
        ],
    )
    .map(drop)
}

/// Connections a lab leaves open so that nothing more is sent on them while
/// its lines are checked and shown; [`clean_up`] closes them once their links
/// are gone, so closing sends nothing either.
static OPEN: Mutex<Vec<TcpConn>> = Mutex::new(Vec::new());

/// The fields of a log line that the NAT lab pins down, in the line's order:
/// namespace, device, addresses, length, TTL, protocol, ports, ICMP type and
/// code, TCP flags. The IP and ICMP IDs change from run to run, and fields
/// the line may gain are not this lab's business.
fn pinned(line: &str) -> String {
    const KEYS: [&str; 11] = [
        "NETNS", "IN", "SRC", "DST", "LEN", "TTL", "PROTO", "SPT", "DPT", "TYPE", "CODE",
    ];
    const FLAGS: [&str; 8] = ["CWR", "ECE", "URG", "ACK", "PSH", "RST", "SYN", "FIN"];
    // `LEN=` after `PROTO=` is the UDP datagram's, not the packet's.
    let mut after_proto = false;
    line.trim_start_matches("nsfilter: ")
        .split(' ')
        .filter(|t| match t.split_once('=') {
            Some(("LEN", _)) if after_proto => false,
            Some((key, _)) => {
                after_proto |= key == "PROTO";
                KEYS.contains(&key)
            }
            None => FLAGS.contains(t),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a line is the links' own chatter rather than the lab's traffic:
/// IPv6 (neighbour discovery, and MLD reports when a link comes up) and IGMP
/// reports (`PROTO=2`, seen on Debian's kernel from a bridge port). The labs
/// send neither, and the kernel sends both when it likes, even after the
/// lab's last packet.
fn chatter(line: &str) -> bool {
    line.split(' ')
        .any(|t| t == "PROTO=2" || t.starts_with("HOPLIMIT="))
}

/// Waits (bounded) for as many nsfilter lines besides [`chatter`] as `want`
/// has, then checks that those logged since the lab began are exactly
/// `want`, in order, as [`pinned`] sees them: none missing, none extra, none
/// twice. (Each packet is sent only once the one before it has arrived, so
/// the order is the traffic's.) Returns the chatter, which the counters
/// count too.
fn expect_exactly(ctx: &mut Ctx, want: &[String]) -> GuestResult<Vec<String>> {
    let traffic = |l: &&String| l.starts_with("nsfilter: NETNS=") && !chatter(l);
    ctx.kmsg
        .wait_until(LOG_WAIT, |seen| {
            seen.iter().filter(traffic).count() >= want.len()
        })
        .map_err(|e| format!("failed to read /dev/kmsg: {e}"))?;
    let (seen, other): (Vec<String>, Vec<String>) =
        ctx.nsfilter_lines().into_iter().partition(|l| !chatter(l));
    if seen.iter().map(|l| pinned(l)).eq(want.iter().cloned()) {
        return Ok(other);
    }
    let mut msg = String::from("the lines logged are not exactly the expected ones:");
    for w in want {
        msg.push_str(&format!("\n  want: {w}"));
    }
    for l in &seen {
        msg.push_str(&format!("\n  seen: {l}"));
    }
    Err(msg)
}

/// Keeps a lab's connection open until [`clean_up`]; returns its client port.
fn keep_open(conn: TcpConn) -> GuestResult<u16> {
    let port = conn.client_port()?;
    if let Ok(mut open) = OPEN.lock() {
        open.push(conn);
    }
    Ok(port)
}

/// Checks that `/proc/net/nsfilter` of namespace `ns` (the initial one for
/// `None`, inode `ino`) grew from `before` by the lines it logged: those of
/// `want` (IPv4, counted by protocol) and the [`chatter`] (IGMP as `other`,
/// IPv6 by its protocol), each logged, nothing else.
fn expect_counters(
    ns: Option<&str>,
    ino: u64,
    before: &[(String, u64)],
    want: &[String],
    chatter: &[String],
) -> GuestResult {
    let tag = format!("NETNS={ino} ");
    let mine: Vec<&String> = want.iter().filter(|l| l.starts_with(&tag)).collect();
    let noise: Vec<&String> = chatter
        .iter()
        .filter(|l| l.trim_start_matches("nsfilter: ").starts_with(&tag))
        .collect();
    let n = |lines: &[&String], proto: &str| {
        let tag = format!(" PROTO={proto} ");
        lines
            .iter()
            .filter(|l| format!("{l} ").contains(&tag))
            .count() as u64
    };
    let igmp = n(&noise, "2");
    let ipv6 = noise.len() as u64 - igmp;
    let icmpv6 = n(&noise, "ICMPv6");
    let all = mine.len() as u64;
    let grown = [
        ("packets_ipv4", all + igmp),
        ("packets_ipv6", ipv6),
        ("tcp", n(&mine, "TCP") + n(&noise, "TCP")),
        ("udp", n(&mine, "UDP") + n(&noise, "UDP")),
        ("icmp", n(&mine, "ICMP")),
        ("icmpv6", icmpv6),
        (
            "other",
            igmp + ipv6 - icmpv6 - n(&noise, "TCP") - n(&noise, "UDP"),
        ),
        ("malformed", 0),
        ("filtered", 0),
        ("logged", all + noise.len() as u64),
        ("suppressed", 0),
        ("suppressed_budget", 0),
    ];
    let after = proc_counters_in(ns)?;
    let name = ns.unwrap_or("init");
    if counter(&after, "netns")? != ino {
        return Err(format!(
            "{name}'s /proc/net/nsfilter is not its own (inode {ino}): {after:?}"
        ));
    }
    for (key, value) in grown {
        let (from, to) = (counter(before, key)?, counter(&after, key)?);
        if to.checked_sub(from) != Some(value) {
            return Err(format!(
                "{name}'s /proc/net/nsfilter {key} went from {from} to {to}, not up by {value}"
            ));
        }
    }
    Ok(())
}

/// Seed 001's third lab: netns1 (192.168.0.3) reaches `outside`
/// (203.0.113.2) through the initial namespace, which forwards and
/// masquerades on eth0 (203.0.113.1). nsfilter's hook comes first in
/// `PRE_ROUTING`, before conntrack and NAT, so each namespace logs a packet
/// as it arrived: the router the request from the private address and the
/// reply still to its own; `outside` the request from the router; netns1
/// the reply translated back. IPv6 is off on the lab's links, so these are
/// all the lines there are; the namespaces' counters must grow by as much.
pub(super) fn lab_nat(ctx: &mut Ctx) -> GuestResult {
    sh("ip netns add netns1 && ip netns add outside && \
        ip link add veth0 type veth peer name veth1 && ip link add eth0 type veth peer name eth1 && \
        ip link set veth1 netns netns1 && ip link set eth1 netns outside && \
        sysctl -qw net.ipv6.conf.veth0.disable_ipv6=1 net.ipv6.conf.eth0.disable_ipv6=1 && \
        ip netns exec netns1 sysctl -qw net.ipv6.conf.veth1.disable_ipv6=1 && \
        ip netns exec outside sysctl -qw net.ipv6.conf.eth1.disable_ipv6=1 && \
        ip addr add 192.168.0.1/24 dev veth0 && ip link set veth0 up && \
        ip addr add 203.0.113.1/24 dev eth0 && ip link set eth0 up && \
        ip netns exec netns1 ip addr add 192.168.0.3/24 dev veth1 && \
        ip netns exec netns1 ip link set veth1 up && \
        ip netns exec netns1 ip route add default via 192.168.0.1 && \
        ip netns exec outside ip addr add 203.0.113.2/24 dev eth1 && \
        ip netns exec outside ip link set eth1 up && \
        sysctl -qw net.ipv4.ip_forward=1 && \
        nft add table ip nat && \
        nft add chain ip nat postrouting '{ type nat hook postrouting priority srcnat; }' && \
        nft add rule ip nat postrouting ip saddr 192.168.0.0/24 oifname eth0 masquerade")?;
    let (init, ns1, out) = (
        ns_inode("/proc/1/ns/net")?,
        ns_inode("/run/netns/netns1")?,
        ns_inode("/run/netns/outside")?,
    );
    let before = [
        proc_counters_in(None)?,
        proc_counters_in(Some("netns1"))?,
        proc_counters_in(Some("outside"))?,
    ];
    let (private, router, world) = ("192.168.0.3", "203.0.113.1", "203.0.113.2");
    sh(&format!("ip netns exec netns1 ping -c 1 -W 5 {world}"))?;
    let seen = udp_round_trip(
        "netns1",
        v4([192, 168, 0, 3], 40000),
        "outside",
        v4([203, 0, 113, 2], 5353),
    )?;
    if seen != v4([203, 0, 113, 1], 40000) {
        return Err(format!(
            "outside got the datagram from {seen}, not from {router}:40000"
        ));
    }
    let conn = tcp_open("netns1", "outside", v4([203, 0, 113, 2], 8080))?;
    let peer = conn.peer;
    let port = keep_open(conn)?;
    let masqueraded = v4([203, 0, 113, 1], port);
    if peer != masqueraded {
        return Err(format!(
            "outside accepted the connection from {peer}, not from {masqueraded}"
        ));
    }
    // Each request arrives at the router from netns1's own address, then at
    // outside from the router's; each reply at the router still to its own
    // address, then at netns1 to netns1's. In that order: each packet is
    // sent only once the one before it has arrived.
    let there = |len: u16, rest: &str| {
        [
            format!("NETNS={init} IN=veth0 SRC={private} DST={world} LEN={len} TTL=64 {rest}"),
            format!("NETNS={out} IN=eth1 SRC={router} DST={world} LEN={len} TTL=63 {rest}"),
        ]
    };
    let back = |len: u16, rest: &str| {
        [
            format!("NETNS={init} IN=eth0 SRC={world} DST={router} LEN={len} TTL=64 {rest}"),
            format!("NETNS={ns1} IN=veth1 SRC={world} DST={private} LEN={len} TTL=63 {rest}"),
        ]
    };
    let want = [
        there(84, "PROTO=ICMP TYPE=8 CODE=0"),
        back(84, "PROTO=ICMP TYPE=0 CODE=0"),
        there(36, "PROTO=UDP SPT=40000 DPT=5353"),
        back(36, "PROTO=UDP SPT=5353 DPT=40000"),
        there(60, &format!("PROTO=TCP SPT={port} DPT=8080 SYN")),
        back(60, &format!("PROTO=TCP SPT=8080 DPT={port} ACK SYN")),
        there(52, &format!("PROTO=TCP SPT={port} DPT=8080 ACK")),
    ]
    .concat();
    let chatter = expect_exactly(ctx, &want)?;
    expect_counters(None, init, &before[0], &want, &chatter)?;
    expect_counters(Some("netns1"), ns1, &before[1], &want, &chatter)?;
    expect_counters(Some("outside"), out, &before[2], &want, &chatter)
}

/// Seed 000's bridge lab: namespaces ba and bb on the initial namespace's
/// bridge br0. The bridge forwards at layer 2, so ba-to-bb traffic enters
/// only bb (the initial namespace logs nothing); traffic to br0's own
/// address enters the initial namespace.
pub(super) fn lab_bridge(ctx: &mut Ctx) -> GuestResult {
    sh("ip netns add ba && ip netns add bb && \
        ip link add br0 type bridge && ip addr add 10.2.0.254/24 dev br0 && ip link set br0 up && \
        for n in a b; do \
          ip link add veth-$n type veth peer name br-$n && ip link set veth-$n netns b$n && \
          ip link set br-$n master br0 && ip link set br-$n up && \
          ip netns exec b$n ip link set veth-$n up || exit 1; \
        done && \
        ip netns exec ba ip addr add 10.2.0.1/24 dev veth-a && \
        ip netns exec bb ip addr add 10.2.0.2/24 dev veth-b")?;
    let (init, ba, bb) = (
        ns_inode("/proc/1/ns/net")?,
        ns_inode("/run/netns/ba")?,
        ns_inode("/run/netns/bb")?,
    );
    sh("ip netns exec ba ping -c 1 -W 5 10.2.0.2 && ip netns exec ba ping -c 1 -W 5 10.2.0.254")?;
    let icmp = "LEN=84 TTL=64 PROTO=ICMP";
    expect_exactly(
        ctx,
        &[
            format!("NETNS={bb} IN=veth-b SRC=10.2.0.1 DST=10.2.0.2 {icmp} TYPE=8 CODE=0"),
            format!("NETNS={ba} IN=veth-a SRC=10.2.0.2 DST=10.2.0.1 {icmp} TYPE=0 CODE=0"),
            format!("NETNS={init} IN=br0 SRC=10.2.0.1 DST=10.2.0.254 {icmp} TYPE=8 CODE=0"),
            format!("NETNS={ba} IN=veth-a SRC=10.2.0.254 DST=10.2.0.1 {icmp} TYPE=0 CODE=0"),
        ],
    )
    .map(drop)
}

/// Seed 000's IPIP lab: namespaces t1 and t2 joined by veth u1-u2
/// (10.3.0.1-.2), with an IPIP tunnel tun1-tun2 (172.16.1.1-.2) over it.
/// Each tunnelled packet enters the receiver twice: the outer packet
/// (protocol 4) on the veth, then the inner one on the tunnel device.
pub(super) fn lab_ipip(ctx: &mut Ctx) -> GuestResult {
    sh("ip netns add t1 && ip netns add t2 && \
        ip link add u1 type veth peer name u2 && ip link set u1 netns t1 && ip link set u2 netns t2 && \
        ip netns exec t1 ip addr add 10.3.0.1/24 dev u1 && ip netns exec t2 ip addr add 10.3.0.2/24 dev u2 && \
        ip netns exec t1 ip link set u1 up && ip netns exec t2 ip link set u2 up && \
        ip netns exec t1 ip tunnel add tun1 mode ipip local 10.3.0.1 remote 10.3.0.2 && \
        ip netns exec t2 ip tunnel add tun2 mode ipip local 10.3.0.2 remote 10.3.0.1 && \
        ip netns exec t1 ip addr add 172.16.1.1 peer 172.16.1.2 dev tun1 && \
        ip netns exec t2 ip addr add 172.16.1.2 peer 172.16.1.1 dev tun2 && \
        ip netns exec t1 ip link set tun1 up && ip netns exec t2 ip link set tun2 up")?;
    let (t1, t2) = (ns_inode("/run/netns/t1")?, ns_inode("/run/netns/t2")?);
    sh("ip netns exec t1 ping -c 1 -W 5 172.16.1.2")?;
    let outer = |ns: u64, dev: &str, src: &str, dst: &str| {
        format!("NETNS={ns} IN={dev} SRC={src} DST={dst} LEN=104 TTL=64 PROTO=4")
    };
    let inner = |ns: u64, dev: &str, src: &str, dst: &str, kind: u8| {
        format!(
            "NETNS={ns} IN={dev} SRC={src} DST={dst} LEN=84 TTL=64 PROTO=ICMP TYPE={kind} CODE=0"
        )
    };
    expect_exactly(
        ctx,
        &[
            outer(t2, "u2", "10.3.0.1", "10.3.0.2"),
            inner(t2, "tun2", "172.16.1.1", "172.16.1.2", 8),
            outer(t1, "u1", "10.3.0.2", "10.3.0.1"),
            inner(t1, "tun1", "172.16.1.2", "172.16.1.1", 0),
        ],
    )
    .map(drop)
}

/// Removes what the labs leave in the initial namespace and every named one.
///
/// Traffic stops before any namespace goes: every link of a named namespace
/// is set down and the labs' links in the initial one are deleted, then the
/// connections left open are closed (their FIN can reach no one), and only
/// then are the namespaces deleted. A namespace's teardown runs later, in a
/// workqueue, and unhooks nsfilter in its `pre_exit`, possibly before other
/// hooks (nft's, which the log-format test compares against): a packet still
/// arriving then would reach one hook and not the other.
pub(super) fn clean_up() -> GuestResult {
    let quiet = sh("for n in $(ip netns list | cut -d' ' -f1); do \
          for dev in $(ip netns exec $n ls /sys/class/net); do ip -n $n link set $dev down; done; \
        done; \
        for dev in veth0 eth0 br0; do ip link del $dev 2>/dev/null; done; true")
    .map(drop);
    if let Ok(mut open) = OPEN.lock() {
        open.clear();
    }
    let done = sh("ip -all netns delete; \
        nft flush ruleset 2>/dev/null; sysctl -qw net.ipv4.ip_forward=0; true")
    .map(drop);
    quiet.and(done)
}

#[cfg(test)]
mod tests {
    use super::{pinned, LABS};

    /// `nsfilter-lab run --help` names every lab the lesson runs.
    #[test]
    fn run_help_names_every_lab() {
        let help = crate::options::command_help("run").expect("run has help");
        let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        let help = words(&help.to_lowercase());
        for (title, _, _) in LABS {
            assert!(help.contains(&words(&title.to_lowercase())), "{title}");
        }
    }

    #[test]
    fn pinned_keeps_what_the_lab_checks_and_ignores_added_fields() {
        let now = "nsfilter: NETNS=4026531840 IN=eth0 SRC=203.0.113.2 DST=203.0.113.1 LEN=60 TTL=64 ID=0 DF PROTO=TCP SPT=8080 DPT=55836 ACK SYN";
        let later = "nsfilter: NETNS=4026531840 IN=eth0 OUT= MAC=02:00:00:00:00:01:02:00:00:00:00:02:08:00 SRC=203.0.113.2 DST=203.0.113.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=0 DF PROTO=TCP SPT=8080 DPT=55836 WINDOW=64240 RES=0x00 ACK SYN URGP=0";
        let want = "NETNS=4026531840 IN=eth0 SRC=203.0.113.2 DST=203.0.113.1 LEN=60 TTL=64 PROTO=TCP SPT=8080 DPT=55836 ACK SYN";
        assert_eq!(pinned(now), want);
        assert_eq!(pinned(later), want);
        let icmp = "nsfilter: NETNS=7 IN=veth1 SRC=203.0.113.2 DST=192.168.0.3 LEN=84 TTL=63 ID=61384 PROTO=ICMP TYPE=0 CODE=0 ID=66 SEQ=0";
        assert_eq!(
            pinned(icmp),
            "NETNS=7 IN=veth1 SRC=203.0.113.2 DST=192.168.0.3 LEN=84 TTL=63 PROTO=ICMP TYPE=0 CODE=0"
        );
    }
}
