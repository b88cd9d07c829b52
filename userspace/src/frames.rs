//! Hand-made Ethernet frames for injecting well-formed and malformed packets.

/// The IPv4 header checksum (RFC 791) over `header`.
pub fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // CAST: Folded to 16 bits above.
    !(sum as u16)
}

/// An Ethernet frame from `src` to `dst` carrying `payload` of `ethertype`.
pub fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A UDP datagram over IPv4 in a broadcast Ethernet frame from `mac`, as a
/// tap device receives it: broadcast, so that IPv4 takes it in (not
/// `PACKET_OTHERHOST`) whatever the device's own address.
pub fn udp4_broadcast(
    mac: [u8; 6],
    (src, sport): ([u8; 4], u16),
    (dst, dport): ([u8; 4], u16),
    data: &[u8],
) -> Vec<u8> {
    let spec = Ipv4Spec {
        src,
        dst,
        proto: 17,
        id: 1,
        frag_off: 0,
        ihl: 5,
        total_len: None,
    };
    ethernet(
        [0xff; 6],
        mac,
        0x0800,
        &ipv4(spec, &udp(sport, dport, data)),
    )
}

/// Fields of a hand-made IPv4 header.
#[derive(Clone, Copy)]
pub struct Ipv4Spec {
    /// Source address.
    pub src: [u8; 4],
    /// Destination address.
    pub dst: [u8; 4],
    /// Protocol.
    pub proto: u8,
    /// Identification.
    pub id: u16,
    /// Flags and fragment offset, as in the header.
    pub frag_off: u16,
    /// Header length in 32-bit words (5 for no options).
    pub ihl: u8,
    /// Total length to write, or `None` for the true one.
    pub total_len: Option<u16>,
}

/// An IPv4 packet with a valid header checksum for whatever fields it has.
pub fn ipv4(spec: Ipv4Spec, payload: &[u8]) -> Vec<u8> {
    let header_len = usize::from(spec.ihl.max(5)) * 4;
    let mut p = vec![0u8; header_len];
    p[0] = 0x40 | (spec.ihl & 0x0f);
    let true_len = u16::try_from(header_len + payload.len()).unwrap_or(u16::MAX);
    p[2..4].copy_from_slice(&spec.total_len.unwrap_or(true_len).to_be_bytes());
    p[4..6].copy_from_slice(&spec.id.to_be_bytes());
    p[6..8].copy_from_slice(&spec.frag_off.to_be_bytes());
    p[8] = 64;
    p[9] = spec.proto;
    p[12..16].copy_from_slice(&spec.src);
    p[16..20].copy_from_slice(&spec.dst);
    let sum = ipv4_checksum(&p);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// An IPv6 packet; the payload length field is the true one.
pub fn ipv6(src: [u8; 16], dst: [u8; 16], next: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 40];
    p[0] = 0x60;
    let len = u16::try_from(payload.len()).unwrap_or(u16::MAX);
    p[4..6].copy_from_slice(&len.to_be_bytes());
    p[6] = next;
    p[7] = 64;
    p[8..24].copy_from_slice(&src);
    p[24..40].copy_from_slice(&dst);
    p.extend_from_slice(payload);
    p
}

/// A UDP header (checksum 0: none, allowed for IPv4) and `data`.
pub fn udp(src: u16, dst: u16, data: &[u8]) -> Vec<u8> {
    let mut h = Vec::with_capacity(8 + data.len());
    h.extend_from_slice(&src.to_be_bytes());
    h.extend_from_slice(&dst.to_be_bytes());
    let len = u16::try_from(8 + data.len()).unwrap_or(u16::MAX);
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(data);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_a_known_header() {
        // The example header from RFC 1071 discussions: sums to 0xb861.
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(ipv4_checksum(&h), 0xb861);
        // A header with its checksum filled in sums to zero.
        let spec = Ipv4Spec {
            src: [10, 9, 0, 1],
            dst: [10, 9, 0, 2],
            proto: 17,
            id: 7,
            frag_off: 0,
            ihl: 5,
            total_len: None,
        };
        let p = ipv4(spec, &udp(1, 2, b"x"));
        assert_eq!(ipv4_checksum(&p[..20]), 0);
        assert_eq!(u16::from_be_bytes([p[2], p[3]]), 29);
    }
}
