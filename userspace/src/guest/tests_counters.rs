//! The VM tests of nsfilter's counters in `/proc/net/nsfilter`: per
//! namespace, against the traffic sent, and per protocol against nft's own
//! counters for the same packets.

use super::context::Ctx;
use super::module::{counter, proc_counters};
use super::net::{in_netns, ns_inode, quiet_pair, sh, tcp_connect, udp_exchange, v4, LOG_WAIT};
use super::GuestResult;
use crate::frames::{self, Ipv4Spec};
use std::fs;
use std::time::Duration;

/// `/proc/net/nsfilter` counts exactly the packets sent, in each namespace,
/// and shows a reader only its own namespace.
pub(super) fn test_proc_counters(ctx: &mut Ctx) -> GuestResult {
    ctx.load()?;
    let (na, nb) = quiet_pair("ca", "cb", 40)?;
    for i in 0..7u16 {
        udp_exchange(
            "ca",
            v4([10, 40, 0, 1], 42000 + i),
            "cb",
            v4([10, 40, 0, 2], 7000),
        )?;
    }
    sh("ip netns exec ca ping -c 3 -i 0.2 -W 5 10.40.0.2")?;
    for (ns, inode, want) in [
        (
            "cb",
            nb,
            [
                ("packets_ipv4", 10),
                ("packets_ipv6", 0),
                ("udp", 7),
                ("icmp", 3),
                ("tcp", 0),
                ("logged", 10),
            ],
        ),
        (
            "ca",
            na,
            [
                ("packets_ipv4", 3),
                ("packets_ipv6", 0),
                ("udp", 0),
                ("icmp", 3),
                ("tcp", 0),
                ("logged", 3),
            ],
        ),
    ] {
        let c = proc_counters(ns)?;
        if counter(&c, "netns")? != inode {
            return Err(format!(
                "{ns} sees namespace {} in /proc/net/nsfilter, not its own {inode}",
                counter(&c, "netns")?
            ));
        }
        for (name, n) in want.iter().chain(&[
            ("suppressed", 0),
            ("suppressed_budget", 0),
            ("filtered", 0),
            ("malformed", 0),
        ]) {
            if counter(&c, name)? != *n {
                return Err(format!(
                    "{ns}: {name} is {}, expected {n}: {c:?}",
                    counter(&c, name)?
                ));
            }
        }
    }
    let read =
        || fs::read_to_string("/proc/net/nsfilter").map_err(|e| format!("/proc/net/nsfilter: {e}"));
    // A reader with a one-byte buffer gets the very same text (the seq_file
    // code calls `show` again for each read; it must never fail it, nor
    // lose or repeat a byte). The text is compared whole whenever no packet
    // changed a counter between the two plain reads around it.
    let mut init = read()?;
    let mut compared = false;
    for _ in 0..10 {
        let bytewise = read_bytewise("/proc/net/nsfilter")?;
        let after = read()?;
        if after == init {
            if bytewise != init {
                return Err(format!(
                    "read a byte at a time, /proc/net/nsfilter is:\n{bytewise}\nread whole, it is:\n{init}"
                ));
            }
            compared = true;
            break;
        }
        init = after;
    }
    if !compared {
        return Err(
            "the initial namespace's counters moved in each of 10 attempts to compare \
                    a byte-at-a-time read of /proc/net/nsfilter with a whole one"
                .into(),
        );
    }
    let init_inode = ns_inode("/proc/1/ns/net")?;
    if !init.starts_with(&format!("netns {init_inode}\n")) {
        return Err(format!("the initial namespace reads:\n{init}"));
    }
    ctx.unload()?;
    if fs::metadata("/proc/net/nsfilter").is_ok() {
        return Err("/proc/net/nsfilter still exists after rmmod".into());
    }
    Ok(())
}

/// The per-protocol counters of `/proc/net/nsfilter` against an independent
/// oracle: an nft chain right after nsfilter's hook that counts the same
/// packets by family and transport protocol. TCP, UDP, ICMP, ICMPv6 (and the
/// neighbour discovery that comes with IPv6) and a protocol nsfilter does not
/// name (GRE, 47, injected) all reach the receiver; every counter must equal
/// nft's, and none may be zero.
pub(super) fn test_counters_per_protocol(ctx: &mut Ctx) -> GuestResult {
    ctx.load()?;
    sh("ip netns add ka && ip netns add kb && \
        ip link add kav address 02:00:00:00:00:0a type veth peer name kbv address 02:00:00:00:00:0b && \
        ip link set kav netns ka && ip link set kbv netns kb && \
        ip netns exec ka ip addr add 10.84.0.1/24 dev kav && \
        ip netns exec kb ip addr add 10.84.0.2/24 dev kbv && \
        ip netns exec ka ip addr add fd84::1/64 dev kav nodad && \
        ip netns exec kb ip addr add fd84::2/64 dev kbv nodad && \
        ip netns exec kb nft add table inet oracle && \
        ip netns exec kb nft add chain inet oracle count \
          '{ type filter hook prerouting priority -2147483647; policy accept; }' && \
        for rule in 'meta nfproto ipv4' 'meta nfproto ipv6' 'meta l4proto 6' \
            'meta l4proto 17' 'meta nfproto ipv4 meta l4proto 1' \
            'meta nfproto ipv6 meta l4proto 58' \
            'meta l4proto != { 1, 6, 17, 58, 132, 136 }'; do \
          ip netns exec kb nft add rule inet oracle count $rule counter || exit 1; \
        done && \
        ip netns exec ka ip link set kav up && ip netns exec kb ip link set kbv up")?;
    for i in 0..4u16 {
        udp_exchange(
            "ka",
            v4([10, 84, 0, 1], 43000 + i),
            "kb",
            v4([10, 84, 0, 2], 7000),
        )?;
    }
    tcp_connect("ka", "kb", v4([10, 84, 0, 2], 8000))?;
    sh("ip netns exec ka ping -c 2 -i 0.2 -W 5 10.84.0.2 && \
        ip netns exec ka ping -c 2 -i 0.2 -W 5 fd84::2")?;
    // GRE, protocol 47: nsfilter has no name for it. (Protocols are
    // numbers for nft too: the guest has no /etc/protocols.)
    let gre = frames::ethernet(
        [2, 0, 0, 0, 0, 0x0b],
        [2, 0, 0, 0, 0, 0x0a],
        0x0800,
        &frames::ipv4(
            Ipv4Spec {
                src: [10, 84, 0, 1],
                dst: [10, 84, 0, 2],
                proto: 47,
                id: 4747,
                frag_off: 0x4000,
                ihl: 5,
                total_len: None,
            },
            &[0; 8],
        ),
    );
    in_netns(Some("ka"), move || {
        let sock = crate::sys::PacketSocket::open("kav")?;
        (0..3).try_for_each(|_| sock.send(&gre))
    })?;
    // IPv6 brings its own packets (neighbour discovery, MLD) at times of its
    // choosing: compare a consistent snapshot, nft's counters read before
    // and after nsfilter's and equal, until all three agree (bounded).
    let names = [
        "packets_ipv4",
        "packets_ipv6",
        "tcp",
        "udp",
        "icmp",
        "icmpv6",
        "other",
    ];
    let nft = || -> GuestResult<(Vec<u64>, String)> {
        let listing = sh("ip netns exec kb nft list chain inet oracle count")?;
        let counts: Vec<u64> = listing
            .lines()
            .filter_map(|l| l.split("counter packets ").nth(1))
            .filter_map(|rest| rest.split(' ').next()?.parse().ok())
            .collect();
        if counts.len() != names.len() {
            return Err(format!("could not read nft's counters:\n{listing}"));
        }
        Ok((counts, listing))
    };
    let deadline = std::time::Instant::now() + LOG_WAIT;
    let (ours, theirs, listing) = loop {
        let (before, _) = nft()?;
        let c = proc_counters("kb")?;
        let (after, listing) = nft()?;
        let ours: Vec<u64> = names
            .iter()
            .map(|n| counter(&c, n))
            .collect::<GuestResult<_>>()?;
        if (before == after && after == ours) || std::time::Instant::now() > deadline {
            break (ours, after, listing);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut report = Vec::new();
    for ((name, got), want) in names.iter().zip(&ours).zip(&theirs) {
        report.push(format!("{name} {got}"));
        if got != want || *got == 0 {
            return Err(format!(
                "{name}: nsfilter counted {got}, nft counted {want} (none may be zero)\nnsfilter: {ours:?}\n{listing}"
            ));
        }
    }
    println!("# counters equal nft's: {}", report.join(", "));
    ctx.unload()
}

/// Reads a file one byte per `read(2)`, as a tool with a tiny buffer would.
fn read_bytewise(path: &str) -> GuestResult<String> {
    use std::io::Read;
    let mut f = fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match f.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => out.push(byte[0]),
            Err(e) => return Err(format!("reading {path} a byte at a time: {e}")),
        }
    }
    String::from_utf8(out).map_err(|e| e.to_string())
}
