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
//! protocol is reported (the `ports` filter does not match it: it has no
//! ports). The first fragment carries the ports, which are the transport
//! header's first four bytes: they are read whenever those are present, even
//! when the rest of the header is cut short (the kernel reassembles such a
//! fragment and delivers the segment, so a filter that wanted the whole
//! header could be evaded).
//!
//! Counters and filters look through authentication headers (AH) to the
//! protocol they protect, in IPv4 as in IPv6, where AH is an extension
//! header; ESP hides what it carries, so its packets are `other`. IPv6
//! extension header chains are walked to their end: the walk is bounded by
//! the packet's length (each header is at least 8 bytes), not by a count, as
//! in the kernel's own IPv6 input, which has no limit either.
//!
//! A packet is malformed exactly when its log line reports a header cut
//! short: when the line has `TRUNCATED` or `INCOMPLETE [n bytes]` (the bare
//! `INCOMPLETE` after an IPv6 `FRAG:` is the fragment header's M flag, more
//! fragments to come, not a cut). The parser decides it without writing the
//! line: `ipv4_line_cut()` and `ipv6_line_cut()` make the reads that
//! `logline` makes, at the same offsets and with the same bounds (the
//! packet's end, whatever its length fields say), and nothing else. A header
//! that contradicts itself or the packet (an IPv4 header length under 20
//! bytes, a length field beyond the received bytes) is not malformed unless
//! its line reports a cut; the kernel drops such packets before
//! `PRE_ROUTING` anyway, in `ip_rcv_core()` and `ipv6_rcv()`.

/// Read access to the bytes of a packet, from its network header on.
pub(crate) trait Bytes {
    /// The number of bytes in the packet.
    fn len(&self) -> usize;

    /// Returns `buf.len()` bytes starting at `offset`, or `None` if the
    /// packet is shorter. The bytes may be returned in place or copied to `buf`.
    fn get<'a>(&'a self, offset: usize, buf: &'a mut [u8]) -> Option<&'a [u8]>;

    /// Whether the packet is a TCP GSO/GRO packet (`skb_is_gso()` and
    /// `skb_is_gso_tcp()`): with BIG TCP, such a packet may be longer than
    /// 64 KiB and have 0 in its IP length field.
    fn gso_tcp(&self) -> bool {
        false
    }
}

impl Bytes for [u8] {
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }

    fn get<'a>(&'a self, offset: usize, buf: &'a mut [u8]) -> Option<&'a [u8]> {
        self.get(offset..offset.checked_add(buf.len())?)
    }
}

/// `ARPHRD_SIT`, the device type of IPv6-in-IPv4 tunnels (`uapi/linux/if_arp.h`).
pub(crate) const ARPHRD_SIT: u16 = 776;

/// What the line needs of a packet beyond its bytes from the network header on.
pub(crate) trait Frame: Bytes {
    /// `skb->mark`.
    fn mark(&self) -> u32;

    /// The input device's link layer, or `None` for a packet with no input
    /// device (the kernel then prints no `MAC=`).
    fn link(&self) -> Option<Link>;

    /// Copies the bytes from `offset` on from the MAC header
    /// (`skb_mac_header()`) into `out`, as many as fit and as the packet's
    /// linear data holds; returns how many it copied (0 if `offset` is
    /// outside it). One call for a whole header, not one per byte.
    fn mac_bytes(&self, offset: isize, out: &mut [u8]) -> usize;
}

/// What `dump_mac_header()` looks at, of the input device and the packet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Link {
    /// `dev->type` (`ARPHRD_*`).
    pub(crate) dev_type: u16,
    /// `dev->hard_header_len`.
    pub(crate) hard_header_len: u16,
    /// `skb_mac_header_len()`, or `None` if the packet's MAC header is not
    /// set (`!skb_mac_header_was_set()`).
    pub(crate) mac_len: Option<u32>,
    /// Bytes from `skb->head` to the MAC header.
    pub(crate) headroom: usize,
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
    /// Encapsulating security payload.
    pub(crate) const ESP: u8 = 50;
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

/// The network family of a packet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Family {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
}

/// What the counters and filters need of one packet. Plain data, no
/// allocation. (The log line reads the packet itself: see `logline`.)
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Summary {
    /// The fixed network header is cut short (the line says `TRUNCATED`).
    Truncated,
    /// An IPv4 packet.
    Ipv4 {
        /// What follows its header.
        payload: Payload,
        /// Whether its log line reports a header cut short.
        cut: bool,
    },
    /// An IPv6 packet.
    Ipv6 {
        /// What follows its header chain.
        payload: Payload,
        /// Whether its log line reports a header cut short.
        cut: bool,
    },
}

impl Summary {
    /// Whether the packet is IPv4 (false for IPv6 and for an unreadable header).
    pub(crate) fn is_ipv4(&self) -> bool {
        matches!(self, Summary::Ipv4 { .. })
    }

    fn payload(&self) -> Option<&Payload> {
        match self {
            Summary::Truncated => None,
            Summary::Ipv4 { payload, .. } | Summary::Ipv6 { payload, .. } => Some(payload),
        }
    }

    /// The transport protocol, if the network header could be read.
    pub(crate) fn protocol(&self) -> Option<u8> {
        match self.payload() {
            Some(Payload::Transport(protocol, _)) => Some(*protocol),
            _ => None,
        }
    }

    /// Source and destination ports, if the packet has readable ones (the
    /// first four bytes of its transport header).
    pub(crate) fn ports(&self) -> Option<(u16, u16)> {
        match self.payload() {
            Some(Payload::Transport(_, Transport::Ports { src, dst })) => Some((*src, *dst)),
            _ => None,
        }
    }

    /// Whether the packet's log line reports a header cut short: whether it
    /// has `TRUNCATED` or `INCOMPLETE [n bytes]` (see the module's
    /// documentation).
    pub(crate) fn is_malformed(&self) -> bool {
        match self {
            Summary::Truncated => true,
            Summary::Ipv4 { cut, .. } | Summary::Ipv6 { cut, .. } => *cut,
        }
    }
}

/// What follows the network header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Payload {
    /// Header fields contradict each other or the packet: for example an
    /// IPv4 header length under 20 bytes or a total length beyond the
    /// received bytes.
    Invalid,
    /// IPv4 options or an IPv6 extension header are cut short.
    Truncated,
    /// A transport protocol and what could be read of its header.
    Transport(u8, Transport),
}

/// What the counters and filters need of a transport header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Transport {
    /// A fragment other than the first: it carries no transport header.
    Fragment,
    /// TCP, UDP, UDP-Lite or SCTP whose ports are cut short.
    Incomplete,
    /// TCP, UDP, UDP-Lite or SCTP ports: the header's first four bytes,
    /// whether or not the rest of it is there.
    Ports {
        /// Source port.
        src: u16,
        /// Destination port.
        dst: u16,
    },
    /// ICMP, ICMPv6, or a protocol whose header nsfilter does not read.
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
    let frag = be16(&h, 6) & 0x1fff;
    // `iph_totlen()`: a BIG TCP packet (GSO/GRO, over 64 KiB) has 0 here,
    // and its length is the packet's.
    let end = match usize::from(be16(&h, 2)) {
        0 if bytes.gso_tcp() => bytes.len(),
        len => len,
    };
    let payload = if h[0] >> 4 != 4 || header_len < 20 || end < header_len || end > bytes.len() {
        Payload::Invalid
    } else if frag != 0 {
        Payload::Transport(h[9], Transport::Fragment)
    } else {
        ipv4_payload(bytes, h[9], header_len, end)
    };
    Summary::Ipv4 {
        payload,
        cut: ipv4_line_cut(bytes, 0, &h),
    }
}

/// What follows an IPv4 header of `header_len` bytes whose protocol is
/// `protocol`, in a packet whose own length ends at `end`.
fn ipv4_payload(
    bytes: &(impl Bytes + ?Sized),
    mut protocol: u8,
    header_len: usize,
    end: usize,
) -> Payload {
    // Through AH to what it protects, as for IPv6. Each header is at least
    // 8 bytes ((length + 2) * 4 with length >= 0 is 8 or more), so the walk
    // ends within the packet.
    let mut offset = header_len;
    while protocol == proto::AH {
        let Some(e) = read::<2>(bytes, offset).filter(|_| offset + 2 <= end) else {
            return Payload::Truncated;
        };
        protocol = e[0];
        offset += (usize::from(e[1]) + 2) * 4;
        if offset > end {
            return Payload::Truncated;
        }
    }
    Payload::Transport(protocol, transport(protocol, bytes, offset, end))
}

fn parse_ipv6(bytes: &(impl Bytes + ?Sized)) -> Summary {
    let Some(h) = read::<40>(bytes, 0) else {
        return Summary::Truncated;
    };
    // A payload length of 0 is a jumbogram (RFC 2675: its length is in a
    // hop-by-hop option, which `ipv6_rcv()` checked and trimmed the packet
    // to) or a BIG TCP packet (GSO/GRO): either way the packet's own length.
    let end = match usize::from(be16(&h, 4)) {
        0 if bytes.gso_tcp() || h[6] == proto::HOPOPTS => bytes.len(),
        len => len + 40,
    };
    let payload = if h[0] >> 4 != 6 || end > bytes.len() {
        Payload::Invalid
    } else {
        ipv6_payload(bytes, h[6], end)
    };
    Summary::Ipv6 {
        payload,
        cut: ipv6_line_cut(bytes, 0, h[6], true),
    }
}

/// Walks the IPv6 extension header chain from `next` to the transport
/// header. Each header moves `offset` on by at least 8 bytes and the walk
/// stops past `end`, so it ends after at most `end / 8` headers.
fn ipv6_payload(bytes: &(impl Bytes + ?Sized), mut next: u8, end: usize) -> Payload {
    let mut offset = 40;
    loop {
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
                if be16(&f, 2) & 0xfff8 != 0 {
                    return Payload::Transport(f[0], Transport::Fragment);
                }
                next = f[0];
                8
            }
            _ => return Payload::Transport(next, transport(next, bytes, offset, end)),
        };
        offset += header_len;
        if offset > end {
            return Payload::Truncated;
        }
    }
}

/// Reads the ports of `protocol` at `offset`; the packet's own length ends
/// at `end`.
fn transport(protocol: u8, bytes: &(impl Bytes + ?Sized), offset: usize, end: usize) -> Transport {
    match protocol {
        proto::TCP | proto::UDP | proto::UDPLITE | proto::SCTP => {
            match read::<4>(bytes, offset).filter(|_| end.saturating_sub(offset) >= 4) {
                Some(h) => Transport::Ports {
                    src: be16(&h, 0),
                    dst: be16(&h, 2),
                },
                None => Transport::Incomplete,
            }
        }
        _ => Transport::Other,
    }
}

/// Whether the packet has `n` bytes at `offset`: whether a read of them
/// ([`Bytes::get`]) succeeds.
fn fits(bytes: &(impl Bytes + ?Sized), offset: usize, n: usize) -> bool {
    offset.checked_add(n).is_some_and(|e| e <= bytes.len())
}

/// Whether the log line of the IPv4 header `h`, at `at`, reports a header
/// cut short: `dump_ipv4_packet()` in `logline`, with its reads and
/// without its text. `at` is 0 for the packet, else that of the packet
/// inside an ICMP error. The reads go to the packet's end, whatever the
/// header's length fields say, as the line's do.
fn ipv4_line_cut(bytes: &(impl Bytes + ?Sized), at: usize, h: &[u8; 20]) -> bool {
    // A later fragment: the line shows no transport header.
    if be16(h, 6) & 0x1fff != 0 {
        return false;
    }
    // The header length is not checked: under 20 bytes, the line reads
    // the transport header inside the IPv4 one.
    let th = at + usize::from(h[0] & 0x0f) * 4;
    match h[9] {
        proto::TCP => !fits(bytes, th, 20),
        proto::UDP | proto::UDPLITE => !fits(bytes, th, 8),
        proto::ICMP => icmp_line_cut(bytes, at, th),
        // The SPI: AH's first 12 bytes, ESP's first 8.
        proto::AH => !fits(bytes, th, 12),
        proto::ESP => !fits(bytes, th, 8),
        _ => false,
    }
}

/// Whether the line reports a cut in the ICMP header at `th`, or in the
/// packet inside it, of the IPv4 packet at `at`.
fn icmp_line_cut(bytes: &(impl Bytes + ?Sized), at: usize, th: usize) -> bool {
    let Some(ich) = read::<8>(bytes, th) else {
        return true;
    };
    // `required_len[]`: what the type needs after the IPv4 header, which
    // is more than the 8 bytes above for an error (the IPv4 header inside).
    // Echoes (0 and 8) need 4, which those 8 bytes always cover.
    let required = match ich[0] {
        3 | 4 | 5 | 11 | 12 => 8 + 20,
        13 | 14 => 20,
        17 | 18 => 12,
        _ => 0,
    };
    if bytes.len().saturating_sub(th) < required {
        return true;
    }
    // An error in the packet shows the packet inside it (whose header is
    // there: see `required`), but not one inside an error.
    if at != 0 || !matches!(ich[0], 3 | 4 | 5 | 11) {
        return false;
    }
    match read::<20>(bytes, th + 8) {
        Some(inner) => ipv4_line_cut(bytes, th + 8, &inner),
        None => true,
    }
}

/// Whether the log line of the IPv6 header at `at`, whose next header is
/// `next`, reports a header cut short: `dump_ipv6_packet()` in `logline`,
/// with its reads and without its text. `outer` is false for the packet
/// inside an ICMPv6 error. As the line's, the walk of the extension headers
/// goes to the packet's end, whatever the payload length says; every header
/// moves it on by at least 8 bytes, so it ends.
fn ipv6_line_cut(bytes: &(impl Bytes + ?Sized), at: usize, next: u8, outer: bool) -> bool {
    let mut fragment = false;
    let mut offset = at + 40;
    let mut next = next;
    while matches!(
        next,
        proto::HOPOPTS | proto::ROUTING | proto::FRAGMENT | proto::ESP | proto::AH | proto::DSTOPTS
    ) {
        let Some(e) = read::<2>(bytes, offset) else {
            return true;
        };
        let header_len = match next {
            proto::FRAGMENT => {
                let Some(f) = read::<8>(bytes, offset) else {
                    return true;
                };
                fragment |= be16(&f, 2) & 0xfff8 != 0;
                8
            }
            proto::AH => (usize::from(e[1]) + 2) * 4,
            // ESP hides the rest, and options after a later fragment end
            // the line.
            proto::ESP => return false,
            _ if fragment => return false,
            _ => (usize::from(e[1]) + 1) * 8,
        };
        next = e[0];
        offset = offset.saturating_add(header_len);
    }
    if fragment {
        // A later fragment: the line shows no transport header.
        return false;
    }
    match next {
        proto::TCP => !fits(bytes, offset, 20),
        proto::UDP | proto::UDPLITE => !fits(bytes, offset, 8),
        proto::ICMPV6 => {
            let Some(ic) = read::<8>(bytes, offset) else {
                return true;
            };
            // An error in the packet shows the packet inside it (of which
            // the line may show no more than `[TRUNCATED]`), but not one
            // inside an error.
            if !outer || !matches!(ic[0], 1..=4) {
                return false;
            }
            match read::<40>(bytes, offset + 8) {
                Some(inner) => ipv6_line_cut(bytes, offset + 8, inner[6], false),
                None => true,
            }
        }
        _ => false,
    }
}
