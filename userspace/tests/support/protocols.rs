// One packet per protocol, for the host tests of counters, filters and the
// parser's summary (`include!`d by `controls.rs` and `summary.rs`).

/// An IPv4 packet of protocol `proto` with a 20-byte transport header.
fn ipv4_proto(proto: u8) -> Vec<u8> {
    let mut p = vec![0u8; 40];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&40u16.to_be_bytes());
    p[9] = proto;
    p[32] = 0x50;
    p
}

/// An IPv6 packet whose next header is `next`, with a 20-byte payload.
fn ipv6_proto(next: u8) -> Vec<u8> {
    let mut p = vec![0u8; 60];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&20u16.to_be_bytes());
    p[6] = next;
    p[7] = 64;
    p
}
