//! Host tests of what the counters and filters see of a packet: the
//! parser's `Summary` (`rust/packet.rs`), branch by branch.

#![allow(dead_code)]

#[path = "../../rust/packet.rs"]
mod packet;

use packet::{parse, Family};

include!("support/protocols.rs");

/// An IPv6 packet: `next` header, `payload` after the fixed header, and the
/// payload length field `plen` (which may lie).
fn ipv6_with(next: u8, plen: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 40];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&plen.to_be_bytes());
    p[6] = next;
    p[7] = 64;
    p.extend_from_slice(payload);
    p
}

/// Ports `src` -> `dst` in a transport header of `len` bytes.
fn ports_header(src: u16, dst: u16, len: usize) -> Vec<u8> {
    let mut h = vec![0u8; len];
    h[0..2].copy_from_slice(&src.to_be_bytes());
    h[2..4].copy_from_slice(&dst.to_be_bytes());
    h
}

/// What the counters and filters see of a packet, case by case along the
/// parser's branches: the protocol (`None`: the network header could not be
/// read), the ports, and whether it counts as malformed (its log line
/// reports a header cut short).
#[test]
fn summaries_follow_every_branch_of_the_parser() {
    let udp = ports_header(1000, 2000, 8);
    let cat = |parts: &[&[u8]]| parts.concat();
    // Extension headers: hop-by-hop (8 bytes), AH (length 1: 12 bytes), a
    // first fragment with more to come, a later fragment.
    let hop = [17u8, 0, 0, 0, 0, 0, 0, 0];
    let ah = [6u8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let first_frag = [17u8, 0, 0x00, 0x01, 0, 0, 0, 7];
    let later_frag = [17u8, 0, 0x00, 0x08, 0, 0, 0, 7];
    let tcp = ports_header(3000, 4000, 20);
    let mut v4_len0 = ipv4_proto(17);
    v4_len0[2..4].copy_from_slice(&0u16.to_be_bytes());
    let mut v4_hdr_only = ipv4_proto(17);
    v4_hdr_only[2..4].copy_from_slice(&20u16.to_be_bytes());
    let mut sctp = ipv4_proto(132);
    sctp[20..24].copy_from_slice(&[0x13, 0x88, 0x17, 0x70]);
    let mut gre_short = ipv4_proto(47);
    gre_short[2..4].copy_from_slice(&24u16.to_be_bytes());
    // TCP whose first fragment carries 8 bytes of the header: the ports are
    // there, the rest of the header is not (finding 1 of issue 23).
    let mut v4_tcp8 = ipv4_proto(6);
    v4_tcp8[2..4].copy_from_slice(&28u16.to_be_bytes());
    v4_tcp8[6] = 0x20; // More fragments, offset 0.
    v4_tcp8[20..24].copy_from_slice(&[0xea, 0x60, 0x00, 0x16]);
    v4_tcp8.truncate(28);
    // IPv4 AH (length 1: 12 bytes) in front of TCP.
    let mut v4_ah = ipv4_proto(51);
    v4_ah.truncate(20);
    v4_ah.extend_from_slice(&ah);
    v4_ah.extend_from_slice(&tcp);
    let total = v4_ah.len() as u16;
    v4_ah[2..4].copy_from_slice(&total.to_be_bytes());
    let mut v4_ah_cut = v4_ah.clone();
    v4_ah_cut[2..4].copy_from_slice(&22u16.to_be_bytes());
    v4_ah_cut.truncate(22);
    // Nine destination-options headers in front of a TCP SYN.
    let mut chain9 = tcp.clone();
    let mut next = 6u8;
    for _ in 0..9 {
        chain9 = cat(&[&[next, 0, 0, 0, 0, 0, 0, 0], &chain9]);
        next = 60;
    }
    // IPv4 AH alone (its length field says 12 bytes, and nothing follows),
    // 4 bytes of ESP, and an ICMP destination unreachable of 8 bytes.
    let mut v4_ah_alone = ipv4_proto(51);
    v4_ah_alone.truncate(20);
    v4_ah_alone.extend_from_slice(&ah);
    v4_ah_alone[2..4].copy_from_slice(&32u16.to_be_bytes());
    let mut v4_esp4 = ipv4_proto(50);
    v4_esp4[2..4].copy_from_slice(&24u16.to_be_bytes());
    v4_esp4.truncate(24);
    let mut v4_icmp8 = ipv4_proto(1);
    v4_icmp8[2..4].copy_from_slice(&28u16.to_be_bytes());
    v4_icmp8[20] = 3;
    v4_icmp8.truncate(28);
    let mut v6_not6 = ipv6_with(17, 8, &udp);
    v6_not6[0] = 0x50;
    type Case = (
        &'static str,
        Family,
        Vec<u8>,
        Option<u8>,
        Option<(u16, u16)>,
        bool,
    );
    let cases: Vec<Case> = vec![
        (
            "v6 hop-by-hop, UDP",
            Family::Ipv6,
            ipv6_with(0, 16, &cat(&[&hop, &udp])),
            Some(17),
            Some((1000, 2000)),
            false,
        ),
        (
            "v6 AH, TCP",
            Family::Ipv6,
            ipv6_with(51, 32, &cat(&[&ah, &tcp])),
            Some(6),
            Some((3000, 4000)),
            false,
        ),
        (
            "v6 first fragment",
            Family::Ipv6,
            ipv6_with(44, 16, &cat(&[&first_frag, &udp])),
            Some(17),
            Some((1000, 2000)),
            false,
        ),
        (
            "v6 later fragment",
            Family::Ipv6,
            ipv6_with(44, 16, &cat(&[&later_frag, &udp])),
            Some(17),
            None,
            false,
        ),
        // Header fields that contradict the packet (the kernel drops such
        // packets before `PRE_ROUTING`): the protocol and ports are read
        // only within the length the header gives. They are not malformed:
        // the line reads up to the packet's end, finds every header whole
        // and reports no cut.
        //
        // The fragment header lies beyond the payload length (bytes follow).
        (
            "v6 fragment header past the length",
            Family::Ipv6,
            ipv6_with(44, 4, &cat(&[&first_frag, &udp])),
            None,
            None,
            false,
        ),
        // The same for a later fragment: not a fragment, a cut header.
        (
            "v6 later fragment header past the length",
            Family::Ipv6,
            ipv6_with(44, 4, &cat(&[&later_frag, &udp])),
            None,
            None,
            false,
        ),
        // The chain ends exactly at the payload length: an empty UDP header.
        (
            "v6 chain ends at the length",
            Family::Ipv6,
            ipv6_with(0, 8, &cat(&[&hop, &udp])),
            Some(17),
            None,
            false,
        ),
        // Payload length 0 with no hop-by-hop header and no GSO: 40 bytes.
        (
            "v6 length 0, not a jumbogram",
            Family::Ipv6,
            ipv6_with(17, 0, &udp),
            Some(17),
            None,
            false,
        ),
        (
            "v6 length past the packet",
            Family::Ipv6,
            ipv6_with(17, 100, &udp),
            None,
            None,
            false,
        ),
        ("v6 version 5", Family::Ipv6, v6_not6, None, None, false),
        (
            "v6 TCP behind 9 destination options",
            Family::Ipv6,
            ipv6_with(60, chain9.len() as u16, &chain9),
            Some(6),
            Some((3000, 4000)),
            false,
        ),
        (
            "v4 first fragment with 8 bytes of TCP",
            Family::Ipv4,
            v4_tcp8,
            Some(6),
            Some((60000, 22)),
            true,
        ),
        (
            "v4 AH, TCP",
            Family::Ipv4,
            v4_ah,
            Some(6),
            Some((3000, 4000)),
            false,
        ),
        ("v4 AH cut short", Family::Ipv4, v4_ah_cut, None, None, true),
        // The line names AH and shows its SPI, not what follows.
        (
            "v4 AH, nothing behind",
            Family::Ipv4,
            v4_ah_alone,
            Some(6),
            None,
            false,
        ),
        (
            "v4 ESP, 4 bytes",
            Family::Ipv4,
            v4_esp4,
            Some(50),
            None,
            true,
        ),
        // `INCOMPLETE [8 bytes]`: an error needs the IPv4 header inside.
        (
            "v4 ICMP error of 8 bytes",
            Family::Ipv4,
            v4_icmp8,
            Some(1),
            None,
            true,
        ),
        // `[TRUNCATED]`: the packet inside the error is cut.
        (
            "v6 ICMPv6 error, 10 bytes inside",
            Family::Ipv6,
            ipv6_with(58, 18, &cat(&[&[1, 0, 0, 0, 0, 0, 0, 0], &[0x60; 10]])),
            Some(58),
            None,
            true,
        ),
        // As above, the length field contradicts the packet.
        (
            "v4 length 0, not GSO",
            Family::Ipv4,
            v4_len0,
            None,
            None,
            false,
        ),
        (
            "v4 header only",
            Family::Ipv4,
            v4_hdr_only,
            Some(17),
            None,
            false,
        ),
        (
            "v4 SCTP",
            Family::Ipv4,
            sctp,
            Some(132),
            Some((5000, 6000)),
            false,
        ),
        (
            "v4 GRE, 4 bytes",
            Family::Ipv4,
            gre_short,
            Some(47),
            None,
            false,
        ),
    ];
    // Every case is checked and every mismatch reported, not only the first.
    let wrong: Vec<String> = cases
        .into_iter()
        .filter_map(|(what, family, bytes, protocol, ports, malformed)| {
            let s = parse(family, &bytes[..]);
            let got = (s.protocol(), s.ports(), s.is_malformed());
            (got != (protocol, ports, malformed)).then(|| {
                format!(
                    "{what}: got {got:?} ({s:?}), want {:?}",
                    (protocol, ports, malformed)
                )
            })
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
