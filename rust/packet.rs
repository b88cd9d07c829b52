// SPDX-License-Identifier: GPL-2.0

//! Parsing of IPv4 and IPv6 packets into a [`Summary`], in safe Rust.
//!
//! The parser reads through [`Bytes`], which hands out bounds-checked byte
//! slices: in the kernel a packet (`skb`), on the host a plain `[u8]`, so the
//! same code is unit-tested with `cargo test`. It never allocates, never
//! panics, and reads nothing past what the packet holds.
//!
//! The hook runs before defragmentation, so fragments are ordinary input: a
//! fragment other than the first has no transport header, and only its
//! protocol is reported.

/// Read access to the bytes of a packet, from its network header on.
pub(crate) trait Bytes {
    /// The number of bytes in the packet.
    fn len(&self) -> usize;

    /// Returns `buf.len()` bytes starting at `offset`, or `None` if the
    /// packet is shorter. The bytes may be returned in place or copied to `buf`.
    fn get<'a>(&'a self, offset: usize, buf: &'a mut [u8]) -> Option<&'a [u8]>;
}

impl Bytes for [u8] {
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }

    fn get<'a>(&'a self, offset: usize, buf: &'a mut [u8]) -> Option<&'a [u8]> {
        self.get(offset..offset.checked_add(buf.len())?)
    }
}

/// Reads `N` bytes at `offset` into an array, or `None` past the end.
fn read<const N: usize>(bytes: &(impl Bytes + ?Sized), offset: usize) -> Option<[u8; N]> {
    let mut buf = [0u8; N];
    let got = bytes.get(offset, &mut buf)?;
    let mut out = [0u8; N];
    out.copy_from_slice(got.get(..N)?);
    Some(out)
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// IP protocol numbers nsfilter names.
pub(crate) mod proto {
    /// Hop-by-hop options (IPv6 extension header).
    pub(crate) const HOPOPTS: u8 = 0;
    /// ICMP.
    pub(crate) const ICMP: u8 = 1;
    /// TCP.
    pub(crate) const TCP: u8 = 6;
    /// UDP.
    pub(crate) const UDP: u8 = 17;
    /// Routing header (IPv6 extension header).
    pub(crate) const ROUTING: u8 = 43;
    /// Fragment header (IPv6 extension header).
    pub(crate) const FRAGMENT: u8 = 44;
    /// Authentication header.
    pub(crate) const AH: u8 = 51;
    /// ICMPv6.
    pub(crate) const ICMPV6: u8 = 58;
    /// Destination options (IPv6 extension header).
    pub(crate) const DSTOPTS: u8 = 60;
    /// SCTP.
    pub(crate) const SCTP: u8 = 132;
    /// UDP-Lite.
    pub(crate) const UDPLITE: u8 = 136;
}

/// The most IPv6 extension headers walked before a packet is called invalid.
pub(crate) const MAX_IPV6_EXT_HEADERS: usize = 8;

/// The network family of a packet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Family {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
}

/// Everything nsfilter reports about one packet. Plain data, no allocation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Summary {
    /// The fixed network header is cut short (`TRUNCATED`).
    Truncated,
    /// An IPv4 packet.
    Ipv4(Ipv4),
    /// An IPv6 packet.
    Ipv6(Ipv6),
}

impl Summary {
    /// Whether the packet is IPv4 (false for IPv6 and for an unreadable header).
    pub(crate) fn is_ipv4(&self) -> bool {
        matches!(self, Summary::Ipv4(_))
    }

    fn payload(&self) -> Option<&Payload> {
        match self {
            Summary::Truncated => None,
            Summary::Ipv4(ip) => Some(&ip.payload),
            Summary::Ipv6(ip) => Some(&ip.payload),
        }
    }

    /// The transport protocol, if the network header could be read.
    pub(crate) fn protocol(&self) -> Option<u8> {
        match self.payload() {
            Some(Payload::Transport(protocol, _)) => Some(*protocol),
            _ => None,
        }
    }

    /// Source and destination ports, if the packet has readable ones.
    pub(crate) fn ports(&self) -> Option<(u16, u16)> {
        match self.payload() {
            Some(Payload::Transport(_, Transport::Tcp { src, dst, .. }))
            | Some(Payload::Transport(_, Transport::Ports { src, dst })) => Some((*src, *dst)),
            _ => None,
        }
    }

    /// Whether any header was cut short or inconsistent.
    pub(crate) fn is_malformed(&self) -> bool {
        !matches!(
            self.payload(),
            Some(Payload::Transport(_, t)) if !matches!(t, Transport::Incomplete(_))
        )
    }
}

/// The IPv4 header fields nsfilter reports.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Ipv4 {
    /// Source address.
    pub(crate) src: [u8; 4],
    /// Destination address.
    pub(crate) dst: [u8; 4],
    /// Total length, from the header.
    pub(crate) len: u16,
    /// Time to live.
    pub(crate) ttl: u8,
    /// Identification.
    pub(crate) id: u16,
    /// The reserved ("congestion experienced", `CE`) flag.
    pub(crate) ce: bool,
    /// Don't fragment.
    pub(crate) df: bool,
    /// More fragments.
    pub(crate) mf: bool,
    /// Fragment offset, in units of 8 bytes as in the header.
    pub(crate) frag: u16,
    /// What follows the header.
    pub(crate) payload: Payload,
}

/// The IPv6 header fields nsfilter reports.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Ipv6 {
    /// Source address.
    pub(crate) src: [u8; 16],
    /// Destination address.
    pub(crate) dst: [u8; 16],
    /// Payload length plus the 40-byte fixed header.
    pub(crate) len: u32,
    /// Hop limit.
    pub(crate) hoplimit: u8,
    /// The fragment header, if the chain has one.
    pub(crate) frag: Option<Ipv6Frag>,
    /// What follows the header chain.
    pub(crate) payload: Payload,
}

/// An IPv6 fragment header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Ipv6Frag {
    /// Fragment offset in bytes.
    pub(crate) offset: u16,
    /// More fragments follow.
    pub(crate) more: bool,
    /// Identification.
    pub(crate) id: u32,
}

/// What follows the network header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Payload {
    /// Header fields contradict each other or the packet (`INVALID`): for
    /// example an IPv4 header length under 20 bytes, a total length beyond the
    /// received bytes, or an IPv6 extension header chain that is too long.
    Invalid,
    /// IPv4 options or an IPv6 extension header are cut short (`TRUNCATED`).
    Truncated,
    /// A transport protocol and what could be read of its header.
    Transport(u8, Transport),
}

/// What nsfilter reports of a transport header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Transport {
    /// A fragment other than the first: it carries no transport header.
    Fragment,
    /// The header is cut short; this many bytes of it are present.
    Incomplete(usize),
    /// TCP ports and flags (`CWR ECE URG ACK PSH RST SYN FIN` bits).
    Tcp {
        /// Source port.
        src: u16,
        /// Destination port.
        dst: u16,
        /// The flags byte of the header.
        flags: u8,
    },
    /// UDP, UDP-Lite or SCTP ports.
    Ports {
        /// Source port.
        src: u16,
        /// Destination port.
        dst: u16,
    },
    /// ICMP or ICMPv6 type and code, and identifier and sequence of echoes.
    Icmp {
        /// Message type.
        kind: u8,
        /// Message code.
        code: u8,
        /// Identifier and sequence number, for echo requests and replies.
        echo: Option<(u16, u16)>,
    },
    /// A protocol whose header nsfilter does not read.
    Other,
}

/// Parses the packet in `bytes`, whose network header is of `family`.
pub(crate) fn parse(family: Family, bytes: &(impl Bytes + ?Sized)) -> Summary {
    match family {
        Family::Ipv4 => parse_ipv4(bytes),
        Family::Ipv6 => parse_ipv6(bytes),
    }
}

fn parse_ipv4(bytes: &(impl Bytes + ?Sized)) -> Summary {
    let Some(h) = read::<20>(bytes, 0) else {
        return Summary::Truncated;
    };
    let header_len = usize::from(h[0] & 0x0f) * 4;
    let len = be16(&h, 2);
    let frag_off = be16(&h, 6);
    let mut ip = Ipv4 {
        src: [h[12], h[13], h[14], h[15]],
        dst: [h[16], h[17], h[18], h[19]],
        len,
        ttl: h[8],
        id: be16(&h, 4),
        ce: frag_off & 0x8000 != 0,
        df: frag_off & 0x4000 != 0,
        mf: frag_off & 0x2000 != 0,
        frag: frag_off & 0x1fff,
        payload: Payload::Invalid,
    };
    let end = usize::from(len);
    if h[0] >> 4 != 4 || header_len < 20 || end < header_len || end > bytes.len() {
        return Summary::Ipv4(ip);
    }
    let protocol = h[9];
    ip.payload = if ip.frag != 0 {
        Payload::Transport(protocol, Transport::Fragment)
    } else {
        Payload::Transport(
            protocol,
            transport(protocol, proto::ICMP, bytes, header_len, end),
        )
    };
    Summary::Ipv4(ip)
}

fn parse_ipv6(bytes: &(impl Bytes + ?Sized)) -> Summary {
    let Some(h) = read::<40>(bytes, 0) else {
        return Summary::Truncated;
    };
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    src.copy_from_slice(&h[8..24]);
    dst.copy_from_slice(&h[24..40]);
    let end = usize::from(be16(&h, 4)) + 40;
    let mut ip = Ipv6 {
        src,
        dst,
        // CAST: At most 65535 + 40.
        len: end as u32,
        hoplimit: h[7],
        frag: None,
        payload: Payload::Invalid,
    };
    if h[0] >> 4 != 6 || end > bytes.len() {
        return Summary::Ipv6(ip);
    }
    ip.payload = ipv6_payload(bytes, h[6], end, &mut ip.frag);
    Summary::Ipv6(ip)
}

/// Walks the IPv6 extension header chain from `next` to the transport header.
fn ipv6_payload(
    bytes: &(impl Bytes + ?Sized),
    mut next: u8,
    end: usize,
    frag: &mut Option<Ipv6Frag>,
) -> Payload {
    let mut offset = 40;
    for _ in 0..=MAX_IPV6_EXT_HEADERS {
        let header_len = match next {
            proto::HOPOPTS | proto::ROUTING | proto::DSTOPTS | proto::AH => {
                let Some(e) = read::<2>(bytes, offset).filter(|_| offset + 2 <= end) else {
                    return Payload::Truncated;
                };
                let units = usize::from(e[1]);
                let header_len = if next == proto::AH {
                    (units + 2) * 4
                } else {
                    (units + 1) * 8
                };
                next = e[0];
                header_len
            }
            proto::FRAGMENT => {
                let Some(f) = read::<8>(bytes, offset).filter(|_| offset + 8 <= end) else {
                    return Payload::Truncated;
                };
                let frag_off = be16(&f, 2);
                let header = Ipv6Frag {
                    offset: frag_off & 0xfff8,
                    more: frag_off & 1 != 0,
                    id: be32(&f, 4),
                };
                *frag = Some(header);
                if header.offset != 0 {
                    return Payload::Transport(f[0], Transport::Fragment);
                }
                next = f[0];
                8
            }
            _ => {
                let transport = transport(next, proto::ICMPV6, bytes, offset, end);
                return Payload::Transport(next, transport);
            }
        };
        offset += header_len;
        if offset > end {
            return Payload::Truncated;
        }
    }
    Payload::Invalid
}

/// Reads the transport header of `protocol` at `offset`; the packet's own
/// length ends at `end`. `icmp` is the family's ICMP protocol number.
fn transport(
    protocol: u8,
    icmp: u8,
    bytes: &(impl Bytes + ?Sized),
    offset: usize,
    end: usize,
) -> Transport {
    let available = end.saturating_sub(offset);
    // Reads the header's first `N` bytes, or reports it incomplete.
    macro_rules! header {
        ($n:literal) => {
            match read::<$n>(bytes, offset).filter(|_| available >= $n) {
                Some(h) => h,
                None => return Transport::Incomplete(available),
            }
        };
    }
    match protocol {
        proto::TCP => {
            let h = header!(20);
            Transport::Tcp {
                src: be16(&h, 0),
                dst: be16(&h, 2),
                flags: h[13],
            }
        }
        proto::UDP | proto::UDPLITE => {
            let h = header!(8);
            Transport::Ports {
                src: be16(&h, 0),
                dst: be16(&h, 2),
            }
        }
        proto::SCTP => {
            let h = header!(12);
            Transport::Ports {
                src: be16(&h, 0),
                dst: be16(&h, 2),
            }
        }
        p if p == icmp => {
            let h = header!(8);
            let echo = match p {
                proto::ICMP => matches!(h[0], 0 | 8),
                _ => matches!(h[0], 128 | 129),
            };
            Transport::Icmp {
                kind: h[0],
                code: h[1],
                echo: echo.then(|| (be16(&h, 4), be16(&h, 6))),
            }
        }
        _ => Transport::Other,
    }
}
