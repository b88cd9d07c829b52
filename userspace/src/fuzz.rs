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
}
