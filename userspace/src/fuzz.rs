//! Deterministic packet fuzzing: random frames, and valid IPv4/IPv6
//! TCP/UDP/ICMP frames with their header lengths, total lengths, fragment
//! fields and IPv6 extension header chains mutated, and truncated anywhere.
//! IPv4 header checksums are mostly fixed up after mutation, so that the
//! frames get past the kernel's own checks to nsfilter's hook.

use crate::frames::{self, Ipv4Spec};

/// A xorshift generator: the same packets for the same seed, everywhere.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value but zero is used as is).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        // CAST: The result is below `n`, a usize.
        (self.next_u64() % n.max(1) as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        // CAST: Keeps the low 8 bits on purpose.
        self.next_u64() as u8
    }
}

const SRC4: [u8; 4] = [10, 9, 0, 1];
const DST4: [u8; 4] = [10, 9, 0, 2];
const SRC6: [u8; 16] = [0xfd, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const DST6: [u8; 16] = [0xfd, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

fn transport(rng: &mut Rng, proto: u8) -> Vec<u8> {
    let mut h = match proto {
        6 => {
            let mut t = vec![0u8; 20];
            t[12] = 5 << 4;
            t[13] = rng.byte();
            t
        }
        1 | 58 => vec![if proto == 1 { 8 } else { 128 }, 0, 0, 0, 0, 1, 0, 1],
        _ => frames::udp(0, 0, b"nsfilter"),
    };
    h[0..2].copy_from_slice(&(rng.next_u64() as u16).to_be_bytes());
    if proto == 6 || proto == 17 {
        h[2..4].copy_from_slice(&(rng.next_u64() as u16).to_be_bytes());
    }
    h
}

/// One IPv4 packet, valid or with its header mutated.
fn ipv4(rng: &mut Rng) -> Vec<u8> {
    let proto = [6, 17, 1, 136, 132][rng.below(5)];
    let mut frag_off = [0, 0x4000, 0x2000, rng.next_u64() as u16][rng.below(4)];
    if rng.below(8) == 0 {
        frag_off = rng.next_u64() as u16;
    }
    let spec = Ipv4Spec {
        src: SRC4,
        dst: DST4,
        proto,
        id: rng.next_u64() as u16,
        frag_off,
        ihl: 5,
        total_len: None,
    };
    let mut p = frames::ipv4(spec, &transport(rng, proto));
    match rng.below(4) {
        // Header length: anything, including under 5 and past the packet.
        0 => p[0] = 0x40 | (rng.byte() & 0x0f),
        // Total length: anything.
        1 => p[2..4].copy_from_slice(&(rng.next_u64() as u16).to_be_bytes()),
        // A few random bytes anywhere.
        2 => {
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(p.len());
                p[at] = rng.byte();
            }
        }
        _ => {}
    }
    if rng.below(4) != 0 {
        // Fix the checksum so the kernel's own check lets it through.
        let header_len = (usize::from(p[0] & 0x0f) * 4).clamp(20, p.len());
        p[10..12].copy_from_slice(&[0, 0]);
        let sum = frames::ipv4_checksum(&p[..header_len]);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
    }
    p
}

/// One IPv6 packet, with a random extension header chain, maybe mutated.
fn ipv6(rng: &mut Rng) -> Vec<u8> {
    let proto = [6, 17, 58, 136, 132][rng.below(5)];
    let mut payload = transport(rng, proto);
    let mut next = proto;
    for _ in 0..rng.below(4) {
        let kind = [43, 60, 44, 51][rng.below(4)];
        let mut header = match kind {
            44 => {
                let offset = if rng.below(2) == 0 {
                    0
                } else {
                    rng.next_u64() as u16 & 0xfff8
                };
                let more = u16::from(rng.below(2) == 0);
                let mut f = vec![next, 0];
                f.extend_from_slice(&(offset | more).to_be_bytes());
                f.extend_from_slice(&(rng.next_u64() as u32).to_be_bytes());
                f
            }
            51 => vec![next, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            _ => {
                let units = rng.below(3);
                let mut e = vec![0u8; (units + 1) * 8];
                e[0] = next;
                // CAST: At most 2.
                e[1] = units as u8;
                e
            }
        };
        if rng.below(6) == 0 {
            header[1] = rng.byte();
        }
        header.extend_from_slice(&payload);
        payload = header;
        next = kind;
    }
    let mut p = frames::ipv6(SRC6, DST6, next, &payload);
    if rng.below(5) == 0 {
        p[4..6].copy_from_slice(&(rng.next_u64() as u16).to_be_bytes());
    }
    if rng.below(5) == 0 {
        let at = 40 + rng.below(p.len() - 39).min(p.len() - 41);
        p[at] = rng.byte();
    }
    p
}

/// The `n`th frame for `dst`/`src` MACs: a fifth random bytes, the rest
/// mutated IPv4 and IPv6 packets, a third of all cut at a random offset.
pub fn frame(rng: &mut Rng, dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    let (ethertype, mut packet) = match rng.below(5) {
        0 => {
            let len = rng.below(120);
            let ethertype = if rng.below(2) == 0 { 0x0800 } else { 0x86dd };
            (ethertype, (0..len).map(|_| rng.byte()).collect())
        }
        1 | 2 => (0x0800, ipv4(rng)),
        _ => (0x86dd, ipv6(rng)),
    };
    if rng.below(3) == 0 && !packet.is_empty() {
        packet.truncate(rng.below(packet.len()));
    }
    frames::ethernet(dst, src, ethertype, &packet)
}

/// The kinds of packet [`logformat_frame`] makes.
pub const LOGFORMAT_KINDS: [&str; 10] = [
    "ipv4",
    "ipv4-options",
    "ipv4-fragment",
    "icmp-error",
    "ipv6",
    "ipv6-ext-chain",
    "ipv6-long-chain",
    "icmpv6-error",
    "truncated",
    "mutated",
];

/// An IPv4 header for `payload` with random TOS, TTL, ID and flags, `ihl`
/// words of header (random options past 20 bytes), a valid checksum.
fn ipv4_random(rng: &mut Rng, proto: u8, ihl: u8, frag_off: u16, payload: &[u8]) -> Vec<u8> {
    let spec = Ipv4Spec {
        src: SRC4,
        dst: DST4,
        proto,
        id: rng.next_u64() as u16,
        frag_off,
        ihl,
        total_len: None,
    };
    let mut p = frames::ipv4(spec, payload);
    p[1] = rng.byte();
    p[8] = rng.byte().max(1);
    // Options: NOPs, end of list, or anything.
    for b in &mut p[20..usize::from(ihl.max(5)) * 4] {
        *b = [1, 0, rng.byte()][rng.below(3)];
    }
    ipv4_fix(&mut p);
    p
}

/// Sets the IPv4 total length to the packet's and recomputes the checksum.
fn ipv4_fix(p: &mut [u8]) {
    let len = u16::try_from(p.len()).unwrap_or(u16::MAX);
    p[2..4].copy_from_slice(&len.to_be_bytes());
    let header_len = (usize::from(p[0] & 0x0f) * 4).clamp(20, p.len());
    p[10..12].copy_from_slice(&[0, 0]);
    let sum = frames::ipv4_checksum(&p[..header_len]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
}

/// A transport header (and a little data) with every field random.
fn transport_random(rng: &mut Rng, proto: u8, icmp: u8) -> Vec<u8> {
    let len = match proto {
        6 => 20 + 4 * rng.below(3),
        50 => 8 + rng.below(8),
        51 => 12 + rng.below(8),
        _ => 8 + rng.below(12),
    };
    let mut h: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
    if proto == 6 {
        h[12] = (5 << 4) | (rng.byte() & 0x0f);
    }
    if proto == icmp {
        h[0] = match icmp {
            1 => [0, 8, 0, 8, 13, 14, 17, 18, 9, 10, rng.byte()][rng.below(11)],
            _ => [128, 129, 128, 130, 131, 133, 135, 136, 143, rng.byte()][rng.below(10)],
        };
    }
    h
}

/// An IPv4 packet with any transport: TCP, UDP, UDP-Lite, SCTP, ICMP, AH,
/// ESP, GRE, IPIP.
fn ipv4_packet(rng: &mut Rng, ihl: u8, frag_off: u16) -> Vec<u8> {
    let proto = [6, 17, 136, 132, 1, 51, 50, 47, 4, 6, 17, 1][rng.below(12)];
    let payload = transport_random(rng, proto, 1);
    ipv4_random(rng, proto, ihl, frag_off, &payload)
}

/// An ICMP error (or redirect, parameter problem) quoting an IPv4 packet,
/// whole or cut anywhere.
fn icmp_error(rng: &mut Rng) -> Vec<u8> {
    let kind = [3, 4, 5, 11, 12, 3, 3][rng.below(7)];
    let code = if kind == 3 && rng.below(3) == 0 {
        4
    } else {
        rng.byte() & 0x0f
    };
    let mut m = vec![kind, code, 0, 0];
    m.extend((0..4).map(|_| rng.byte()));
    let ihl = if rng.below(4) == 0 {
        5 + rng.below(3) as u8
    } else {
        5
    };
    let mut inner = if rng.below(6) == 0 {
        ipv4_random(rng, 1, ihl, 0, &[3, 1, 0, 0, 0, 0, 0, 0])
    } else {
        ipv4_packet(rng, ihl, 0)
    };
    if rng.below(2) == 0 {
        inner.truncate(rng.below(inner.len() + 1));
    }
    m.extend_from_slice(&inner);
    ipv4_random(rng, 1, 5, 0, &m)
}

/// An IPv6 packet: random traffic class and flow label, a chain of
/// extension headers (hop-by-hop first if any), any transport.
/// A chain of at least this many IPv6 extension headers is all fragment
/// headers (see [`ipv6_packet`]).
const LONG_CHAIN: usize = 40;

fn ipv6_packet(rng: &mut Rng, chain: usize, icmp_error: bool) -> Vec<u8> {
    let mut proto = [6, 17, 136, 132, 58, 59, 50, 4, 58][rng.below(9)];
    let mut payload = transport_random(rng, proto, 58);
    if icmp_error {
        proto = 58;
        let kind = [1, 2, 3, 4][rng.below(4)];
        payload = vec![kind, rng.byte() & 7, 0, 0];
        payload.extend((0..4).map(|_| rng.byte()));
        let chain = rng.below(2);
        let mut inner = ipv6_packet(rng, chain, false);
        if rng.below(2) == 0 {
            inner.truncate(rng.below(inner.len() + 1));
        }
        payload.extend_from_slice(&inner);
    }
    let mut next = proto;
    for i in (0..chain).rev() {
        // Hop-by-hop options may only come first. A long chain is of
        // fragment headers, each of which the line shows (`FRAG:`): lines
        // longer than the kernel's log buffer for them.
        let kind = if chain >= LONG_CHAIN {
            44
        } else if i == 0 && rng.below(3) == 0 {
            0
        } else {
            [43, 60, 44, 51, 44, 60][rng.below(6)]
        };
        let mut header = match kind {
            44 => {
                let offset = [0, 0, rng.next_u64() as u16 & 0xfff8][rng.below(3)];
                let mut f = vec![next, 0];
                f.extend_from_slice(&(offset | u16::from(rng.below(2) == 0)).to_be_bytes());
                f.extend_from_slice(&(rng.next_u64() as u32).to_be_bytes());
                f
            }
            51 => {
                let mut a = vec![next, 1, 0, 0];
                a.extend((0..8).map(|_| rng.byte()));
                a
            }
            _ => {
                // Pad1 options only, which hop-by-hop parsing accepts.
                let units = rng.below(3);
                let mut e = vec![0u8; (units + 1) * 8];
                e[0] = next;
                // CAST: At most 2.
                e[1] = units as u8;
                if kind == 43 {
                    // A routing header of an unknown type, segments left 0.
                    e[2] = 0xfd;
                }
                e
            }
        };
        header.extend_from_slice(&payload);
        payload = header;
        next = kind;
    }
    let mut p = frames::ipv6(SRC6, DST6, next, &payload);
    let word = 0x6000_0000 | (rng.next_u64() as u32 & 0x0fff_ffff);
    p[0..4].copy_from_slice(&word.to_be_bytes());
    p[7] = rng.byte();
    p
}

/// Cuts a packet at a random offset past its fixed header and sets its
/// length fields to what is left, so the kernel passes it to the hooks.
fn truncate(rng: &mut Rng, ethertype: u16, p: &mut Vec<u8>) {
    let fixed = if ethertype == 0x0800 {
        usize::from(p[0] & 0x0f) * 4
    } else {
        40
    };
    if p.len() > fixed {
        p.truncate(fixed + rng.below(p.len() - fixed));
    }
    if ethertype == 0x0800 {
        ipv4_fix(p);
    } else {
        let len = u16::try_from(p.len() - 40).unwrap_or(u16::MAX);
        p[4..6].copy_from_slice(&len.to_be_bytes());
    }
}

/// One frame of the LOG-format corpus, and its kind (one of
/// [`LOGFORMAT_KINDS`]): packets the kernel accepts (valid checksums and
/// lengths) of every kind `LOG` prints differently, a tenth cut short at a
/// random offset with their lengths fixed up, and a tenth from [`frame`].
pub fn logformat_frame(rng: &mut Rng, dst: [u8; 6], src: [u8; 6]) -> (&'static str, Vec<u8>) {
    let (kind, ethertype, mut p) = match rng.below(10) {
        0 => return ("mutated", frame(rng, dst, src)),
        1 => {
            let frag_off = [0, 0x4000][rng.below(2)];
            ("ipv4", 0x0800, ipv4_packet(rng, 5, frag_off))
        }
        2 => {
            let ihl = 6 + rng.below(10) as u8;
            ("ipv4-options", 0x0800, ipv4_packet(rng, ihl, 0x4000))
        }
        3 => {
            let frag_off = [0x2000, rng.next_u64() as u16 & 0x3fff, 0x8000 | 1][rng.below(3)];
            ("ipv4-fragment", 0x0800, ipv4_packet(rng, 5, frag_off))
        }
        4 => ("icmp-error", 0x0800, icmp_error(rng)),
        5 => ("ipv6", 0x86dd, ipv6_packet(rng, 0, false)),
        6 => {
            let chain = 1 + rng.below(4);
            ("ipv6-ext-chain", 0x86dd, ipv6_packet(rng, chain, false))
        }
        7 => {
            let chain = LONG_CHAIN + rng.below(30);
            ("ipv6-long-chain", 0x86dd, ipv6_packet(rng, chain, false))
        }
        _ => {
            let chain = rng.below(2);
            ("icmpv6-error", 0x86dd, ipv6_packet(rng, chain, true))
        }
    };
    if rng.below(9) == 0 {
        truncate(rng, ethertype, &mut p);
        return ("truncated", frames::ethernet(dst, src, ethertype, &p));
    }
    (kind, frames::ethernet(dst, src, ethertype, &p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_deterministic_and_varied() {
        let make = || {
            let mut rng = Rng::new(42);
            (0..2000)
                .map(|_| frame(&mut rng, [2; 6], [1; 6]))
                .collect::<Vec<_>>()
        };
        let (a, b) = (make(), make());
        assert_eq!(a, b, "same seed, same frames");
        let v4 = a.iter().filter(|f| f[12..14] == [8, 0]).count();
        let v6 = a.iter().filter(|f| f[12..14] == [0x86, 0xdd]).count();
        assert!(v4 > 400 && v6 > 600, "{v4} IPv4, {v6} IPv6");
        let lens: std::collections::BTreeSet<usize> = a.iter().map(Vec::len).collect();
        assert!(lens.len() > 50, "truncated at many offsets");
        assert!(a.iter().all(|f| f.len() >= 14 && f[..6] == [2; 6]));
    }

    #[test]
    fn logformat_frames_cover_every_kind_with_valid_headers() {
        let mut rng = Rng::new(7);
        let mut kinds = std::collections::BTreeMap::new();
        for _ in 0..5000 {
            let (kind, f) = logformat_frame(&mut rng, [2; 6], [1; 6]);
            *kinds.entry(kind).or_insert(0) += 1;
            if kind != "mutated" && f[12..14] == [8, 0] {
                let header_len = usize::from(f[14] & 0x0f) * 4;
                assert_eq!(crate::frames::ipv4_checksum(&f[14..14 + header_len]), 0);
                assert_eq!(
                    usize::from(u16::from_be_bytes([f[16], f[17]])),
                    f.len() - 14
                );
            }
            if kind != "mutated" && f[12..14] == [0x86, 0xdd] {
                assert_eq!(
                    usize::from(u16::from_be_bytes([f[18], f[19]])),
                    f.len() - 54
                );
            }
        }
        for kind in LOGFORMAT_KINDS {
            assert!(
                kinds.get(kind).copied().unwrap_or(0) > 200,
                "{kind}: {kinds:?}"
            );
        }
    }
}
