// Packets and frames for the host tests of the parser and the log line,
// included (`include!`) by `packet.rs` and `logformat.rs`, which declare the
// `logline` and `packet` modules it uses.

/// Linux 6.12's `LOG` format (`TCP_RESERVED_BITS` covers all of byte 12's low nibble).
const V6_12: Dialect = Dialect { tcp_reserved: 0x0f };
/// Linux 7.3's: TCP's `AE` flag is printed and left out of `RES=`.
const V7_3: Dialect = Dialect { tcp_reserved: 0x0e };

/// A packet as the hook sees it: its bytes from the network header on, and
/// what the line reads beyond them.
#[derive(Clone)]
struct Pkt<'a> {
    bytes: &'a [u8],
    mark: u32,
    gso_tcp: bool,
    link: Option<Link>,
    /// The buffer from `skb->head`; the MAC header starts at `link.headroom`.
    buffer: Vec<u8>,
}

impl<'a> Pkt<'a> {
    /// Received on an Ethernet device (a veth) with MAC header `mac`.
    fn ether(bytes: &'a [u8], mac: &[u8]) -> Self {
        let mut buffer = vec![0xee; 2];
        buffer.extend_from_slice(mac);
        buffer.extend_from_slice(bytes);
        Pkt {
            bytes,
            mark: 0,
            gso_tcp: false,
            link: Some(Link {
                dev_type: 1,
                hard_header_len: 14,
                mac_len: Some(mac.len() as u32),
                headroom: 2,
            }),
            buffer,
        }
    }
}

impl Bytes for Pkt<'_> {
    fn len(&self) -> usize {
        self.bytes.len()
    }

    fn get<'b>(&'b self, offset: usize, buf: &'b mut [u8]) -> Option<&'b [u8]> {
        self.bytes.get(offset..offset.checked_add(buf.len())?)
    }

    fn gso_tcp(&self) -> bool {
        self.gso_tcp
    }
}

impl Frame for Pkt<'_> {
    fn mark(&self) -> u32 {
        self.mark
    }

    fn link(&self) -> Option<Link> {
        self.link
    }

    fn mac_bytes(&self, offset: isize, out: &mut [u8]) -> usize {
        let Some(at) = self.link.and_then(|l| l.headroom.checked_add_signed(offset)) else {
            return 0;
        };
        let bytes = self.buffer.get(at..).unwrap_or(&[]);
        let n = bytes.len().min(out.len());
        out[..n].copy_from_slice(&bytes[..n]);
        n
    }
}

/// The MAC header of the tests' frames: to 02:00:00:00:00:02 from
/// 02:00:00:00:00:01, IPv4 or IPv6.
fn mac(family: Family) -> Vec<u8> {
    let mut m = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    m.extend_from_slice(match family {
        Family::Ipv4 => &[0x08, 0x00],
        Family::Ipv6 => &[0x86, 0xdd],
    });
    m
}

fn format(family: Family, pkt: &Pkt<'_>, dialect: Dialect) -> String {
    LogLine {
        netns: 4026531840,
        in_dev: b"veth1",
        family,
        packet: pkt,
        dialect,
    }
    .to_string()
}

/// Formats a packet received on veth1 the way the module logs it (6.12),
/// without the `nsfilter: ` prefix.
fn line(family: Family, bytes: &[u8]) -> String {
    format(family, &Pkt::ether(bytes, &mac(family)), V6_12)
}

/// The same line before it is cut to `LOG`'s length: all that its headers
/// report, which is what `malformed` follows.
fn uncut_line(family: Family, bytes: &[u8]) -> String {
    let pkt = Pkt::ether(bytes, &mac(family));
    let line = LogLine {
        netns: 4026531840,
        in_dev: b"veth1",
        family,
        packet: &pkt,
        dialect: V6_12,
    };
    line.uncut().to_string()
}

const HEAD: &str = "NETNS=4026531840 IN=veth1 OUT= MAC=02:00:00:00:00:02:02:00:00:00:00:01:08:00";
const HEAD6: &str = "NETNS=4026531840 IN=veth1 OUT= MAC=02:00:00:00:00:02:02:00:00:00:00:01:86:dd";

fn checksum_free_ipv4(proto: u8, payload: &[u8], frag_off: u16, ihl: u8) -> Vec<u8> {
    let header_len = usize::from(ihl) * 4;
    let total = header_len + payload.len();
    let mut p = vec![0u8; header_len];
    p[0] = 0x40 | ihl;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[4..6].copy_from_slice(&1234u16.to_be_bytes());
    p[6..8].copy_from_slice(&frag_off.to_be_bytes());
    p[8] = 64;
    p[9] = proto;
    p[12..16].copy_from_slice(&[192, 168, 0, 2]);
    p[16..20].copy_from_slice(&[192, 168, 0, 3]);
    p.extend_from_slice(payload);
    p
}

fn ipv4(proto: u8, payload: &[u8]) -> Vec<u8> {
    checksum_free_ipv4(proto, payload, 0x4000, 5)
}

fn ports(src: u16, dst: u16, len: usize) -> Vec<u8> {
    let mut h = vec![0u8; len];
    h[0..2].copy_from_slice(&src.to_be_bytes());
    h[2..4].copy_from_slice(&dst.to_be_bytes());
    h
}

fn tcp(src: u16, dst: u16, flags: u8) -> Vec<u8> {
    let mut h = ports(src, dst, 20);
    h[12] = 5 << 4;
    h[13] = flags;
    h
}

fn icmp(kind: u8, id: u16, seq: u16) -> Vec<u8> {
    let mut h = vec![kind, 0, 0, 0];
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&seq.to_be_bytes());
    h
}

const SRC6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const DST6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

fn ipv6(next: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 40];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    p[6] = next;
    p[7] = 64;
    p[8..24].copy_from_slice(&SRC6);
    p[24..40].copy_from_slice(&DST6);
    p.extend_from_slice(payload);
    p
}

/// An IPv6 extension header of `len` bytes (a multiple of 8) followed by `rest`.
fn ext(next: u8, len: usize, rest: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; len];
    h[0] = next;
    h[1] = (len / 8 - 1) as u8;
    h.extend_from_slice(rest);
    h
}

fn frag6(next: u8, offset: u16, more: bool, rest: &[u8]) -> Vec<u8> {
    let mut h = vec![next, 0];
    h.extend_from_slice(&(offset | u16::from(more)).to_be_bytes());
    h.extend_from_slice(&0xdeadbeefu32.to_be_bytes());
    h.extend_from_slice(rest);
    h
}

const A4: &str = "SRC=192.168.0.2 DST=192.168.0.3";
const A6: &str =
    "SRC=fd00:0000:0000:0000:0000:0000:0000:0001 DST=fd00:0000:0000:0000:0000:0000:0000:0002";

/// The fixed part of an IPv4 line from `ipv4()`, total length `len`.
fn v4(len: usize) -> String {
    format!("{HEAD} {A4} LEN={len} TOS=0x00 PREC=0x00 TTL=64 ID=1234 DF ")
}

/// The fixed part of an IPv6 line from `ipv6()`, total length `len`.
fn v6(len: usize) -> String {
    format!("{HEAD6} {A6} LEN={len} TC=0 HOPLIMIT=64 FLOWLBL=0 ")
}

fn ah(next: u8, spi: u32) -> Vec<u8> {
    let mut h = vec![next, 1, 0, 0];
    h.extend_from_slice(&spi.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 1]);
    h
}

/// Whether a log line reports a header cut short: `TRUNCATED` (the IPv4 or
/// IPv6 header, an IPv6 extension header, `FRAG:TRUNCATED`, `[TRUNCATED]` in
/// an ICMPv6 error) or `INCOMPLETE [n bytes]` (a TCP, UDP, ICMP, ICMPv6, AH
/// or ESP header, in the packet or inside an ICMP error). The bare
/// `INCOMPLETE` after an IPv6 `FRAG:` is the fragment header's M flag (more
/// fragments follow), not a cut header.
fn reports_cut(line: &str) -> bool {
    line.contains("TRUNCATED") || line.contains("INCOMPLETE [")
}
