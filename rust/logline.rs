// SPDX-License-Identifier: GPL-2.0

//! The text of one log line, in safe Rust: the kernel's own `LOG` format.
//!
//! After `NETNS=<inode> `, where a `LOG` rule's prefix would sit, the line is
//! byte for byte what `net/netfilter/nf_log_syslog.c` prints for the same
//! packet with `LOG`'s default flags (no `--log-tcp-sequence`, `--log-ip-options`,
//! `--log-uid`, `--log-macdecode`), trailing space included:
//!
//! ```text
//! NETNS=4026531840 IN=lo OUT= MAC=00:00:00:00:00:00:00:00:00:00:00:00:08:00 SRC=127.0.0.1 DST=127.0.0.1 LEN=84 TOS=0x00 PREC=0x00 TTL=64 ID=42917 DF PROTO=ICMP TYPE=8 CODE=0 ID=50 SEQ=0
//! ```
//!
//! The functions below follow `dump_mac_header()`, `dump_ipv4_packet()`,
//! `dump_ipv6_packet()` and their helpers statement by statement, with the
//! same unsigned 32-bit arithmetic for the byte counts they print. Where the
//! kernel reads a header with `skb_header_pointer()`, they read it with
//! [`Bytes::get`], which fails at the same bounds (the packet's `skb->len`).
//! This is the formatter's only reading of the packet: the [`Summary`] that
//! the counters and filters use is separate.
//!
//! A [`LogLine`] formats straight into the kernel's log buffer through
//! [`core::fmt::Display`]: nothing is allocated.
//!
//! [`Summary`]: crate::packet::Summary

use crate::packet::{proto, Bytes, Family, Frame, Link, ARPHRD_SIT};
use core::fmt::{self, Display, Formatter, Write};

/// The details in which kernel versions' `LOG` lines differ.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Dialect {
    /// The bits of TCP header byte 12 that `RES=` shows: the kernel's
    /// `TCP_RESERVED_BITS`. Up to 6.12 that is `0x0f`. Once `struct tcphdr`
    /// has the `ae` bit (AccECN; 7.3 has it) it is `0x0e`, and the kernel
    /// prints the `ae` bit as `AE`.
    pub(crate) tcp_reserved: u8,
}

impl Dialect {
    fn tcp_ae(self) -> bool {
        self.tcp_reserved & 1 == 0
    }
}

/// One packet as nsfilter logs it.
pub(crate) struct LogLine<'a, P: ?Sized> {
    /// The inode number of the namespace the packet entered.
    pub(crate) netns: u32,
    /// The name of the device it came in on.
    pub(crate) in_dev: &'a [u8],
    /// The family of the hook that saw it.
    pub(crate) family: Family,
    /// The packet.
    pub(crate) packet: &'a P,
    /// Which kernel's format to write.
    pub(crate) dialect: Dialect,
}

/// The most characters of a line's text, after its log level: what the
/// kernel's `LOG` keeps. Its `nf_log_buf` holds `S_SIZE - 1` = 1018
/// characters (net/netfilter/nf_log.c, 6.12 and 7.3 alike), the log level
/// (`KERN_SOH` and a digit) among them, and it stops at the first character
/// that does not fit, in the middle of a field if need be. printk alone
/// would cut nsfilter's record later, at 1023 characters
/// (`PRINTKRB_RECORD_MAX`), so nsfilter cuts its lines where `LOG` does: a
/// line of nsfilter's is what `LOG` prints for the packet with the prefix
/// `nsfilter: NETNS=<inode> `, however long.
pub(crate) const LOG_TEXT_MAX: usize = 1016;

/// What `sys::print` writes before a line: it counts towards
/// [`LOG_TEXT_MAX`].
pub(crate) const PRINT_PREFIX: &str = "nsfilter: ";

impl<P: Frame + ?Sized> Display for LogLine<'_, P> {
    /// The line, cut after `LOG_TEXT_MAX - PRINT_PREFIX.len()` characters as
    /// `LOG` cuts its own (see [`LOG_TEXT_MAX`]).
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut out = Capped {
            out: f,
            left: LOG_TEXT_MAX - PRINT_PREFIX.len(),
        };
        write!(out, "{}", self.uncut())
    }
}

/// A writer that passes on its first `left` bytes and drops the rest.
struct Capped<'a, 'b> {
    out: &'a mut Formatter<'b>,
    left: usize,
}

impl Write for Capped<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.left == 0 {
            return Ok(());
        }
        // The line is ASCII (names are escaped), so any byte is a boundary;
        // the check keeps the cut on one whatever comes.
        let mut take = s.len().min(self.left);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.left -= take;
        // Always `Some` (a boundary, at most the length): `get` rather
        // than indexing, so no panic path is compiled in.
        self.out.write_str(s.get(..take).unwrap_or(""))
    }
}

impl<'a, P: Frame + ?Sized> LogLine<'a, P> {
    /// The whole line, not cut (for the host tests).
    pub(crate) fn uncut(&'a self) -> Uncut<'a, P> {
        Uncut(self)
    }
}

/// A [`LogLine`] without [`LOG_TEXT_MAX`].
pub(crate) struct Uncut<'a, P: Frame + ?Sized>(&'a LogLine<'a, P>);

impl<P: Frame + ?Sized> Display for Uncut<'_, P> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let line = self.0;
        // `nf_log_dump_packet_common()`: at PRE_ROUTING there is no output
        // device. (`PHYSIN=`/`PHYSOUT=` come only with br_netfilter.)
        write!(f, "NETNS={} IN={} OUT= ", line.netns, Escaped(line.in_dev))?;
        let p = Dumper {
            p: line.packet,
            d: line.dialect,
            // CAST: `skb->len` is an `unsigned int`.
            len: line.packet.len() as u32,
        };
        if let Some(link) = line.packet.link() {
            p.mac_header(f, &link)?;
        }
        match line.family {
            Family::Ipv4 => p.ipv4(f, 0),
            Family::Ipv6 => p.ipv6(f, 0, true),
        }
    }
}

/// Reads `N` bytes at `offset` (`skb_header_pointer()`), or `None` past the end.
fn read<const N: usize>(bytes: &(impl Bytes + ?Sized), offset: u32) -> Option<[u8; N]> {
    let mut buf = [0u8; N];
    let got = bytes.get(usize::try_from(offset).ok()?, &mut buf)?;
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

/// Writes `len` bytes of `p`'s link-layer header from `start` (an offset
/// from the MAC header) as `dump_mac_header()` does, `%02x` joined by `:`,
/// stopping where the packet's linear data ends. The bytes are copied a
/// chunk at a time (one call for an Ethernet header) and each chunk's text
/// is written at once.
fn hex_bytes(
    f: &mut Formatter<'_>,
    p: &(impl Frame + ?Sized),
    start: isize,
    len: usize,
) -> fmt::Result {
    const CHUNK: usize = 32;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bytes = [0u8; CHUNK];
    let mut text = [0u8; 3 * CHUNK];
    let mut done = 0;
    while done < len {
        let want = (len - done).min(CHUNK);
        // CAST: `done < 65536` (a `u16` length).
        let got = p.mac_bytes(start + done as isize, &mut bytes[..want]);
        let mut n = 0;
        for (i, b) in bytes[..got].iter().enumerate() {
            if done + i != 0 {
                text[n] = b':';
                n += 1;
            }
            text[n] = HEX[usize::from(b >> 4)];
            text[n + 1] = HEX[usize::from(b & 0xf)];
            n += 2;
        }
        // ASCII by construction; `from_utf8` rather than an unchecked
        // conversion keeps this safe code.
        f.write_str(core::str::from_utf8(&text[..n]).unwrap_or(""))?;
        if got < want {
            break;
        }
        done += got;
    }
    Ok(())
}

/// An IPv4 address as `%pI4` prints it.
struct Ipv4Addr<'a>(&'a [u8]);

impl Display for Ipv4Addr<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let a = self.0;
        write!(f, "{}.{}.{}.{}", a[0], a[1], a[2], a[3])
    }
}

/// An IPv6 address as `%pI6` prints it: eight groups of four lowercase hex
/// digits, nothing left out (`fd00:0000:...:0001`).
struct Ipv6Addr<'a>(&'a [u8]);

impl Display for Ipv6Addr<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for i in 0..8 {
            if i > 0 {
                f.write_char(':')?;
            }
            write!(f, "{:04x}", be16(self.0, 2 * i))?;
        }
        Ok(())
    }
}

/// The packet being written, and what the kernel's functions share.
struct Dumper<'a, P: ?Sized> {
    p: &'a P,
    d: Dialect,
    /// `skb->len`.
    len: u32,
}

/// Whether a transport header dump asks its caller to stop (the kernel's
/// helpers return 1 when the header was cut short).
type Stop = bool;

impl<P: Frame + ?Sized> Dumper<'_, P> {
    /// `dump_mac_header()` without `--log-macdecode`.
    fn mac_header(&self, f: &mut Formatter<'_>, link: &Link) -> fmt::Result {
        f.write_str("MAC=")?;
        let mac_len = link.mac_len.unwrap_or(0);
        if link.hard_header_len != 0 && mac_len != 0 {
            let sit = link.dev_type == ARPHRD_SIT;
            // A SIT device's bytes start an Ethernet header's length before
            // its MAC header, if that is still inside the buffer.
            let start: Option<isize> = match sit {
                false => Some(0),
                true => (link.headroom >= 14).then_some(-14),
            };
            if let Some(start) = start {
                hex_bytes(f, self.p, start, usize::from(link.hard_header_len))?;
            }
            if sit {
                // Bytes past the end of the linear data read as 0.
                let mut a = [0u8; 8];
                self.p.mac_bytes(12, &mut a);
                write!(f, " TUNNEL={}->{}", Ipv4Addr(&a[..4]), Ipv4Addr(&a[4..]))?;
            }
        }
        f.write_str(" ")
    }

    /// `dump_ipv4_packet()` for the header at `iphoff`: 0 for the packet,
    /// else the packet inside an ICMP error.
    fn ipv4(&self, f: &mut Formatter<'_>, iphoff: u32) -> fmt::Result {
        let Some(ih) = read::<20>(self.p, iphoff) else {
            return f.write_str("TRUNCATED");
        };
        write!(
            f,
            "SRC={} DST={} ",
            Ipv4Addr(&ih[12..16]),
            Ipv4Addr(&ih[16..20])
        )?;
        // `iph_totlen()`: BIG TCP leaves the field 0 in a GSO/GRO packet.
        let tot_len = u32::from(be16(&ih, 2));
        let len = if tot_len != 0 || !self.p.gso_tcp() {
            tot_len
        } else {
            self.len
        };
        write!(
            f,
            "LEN={len} TOS=0x{:02X} PREC=0x{:02X} TTL={} ID={} ",
            ih[1] & 0x1e,
            ih[1] & 0xe0,
            ih[8],
            be16(&ih, 4)
        )?;
        let frag_off = be16(&ih, 6);
        for (bit, name) in [(0x8000, "CE "), (0x4000, "DF "), (0x2000, "MF ")] {
            if frag_off & bit != 0 {
                f.write_str(name)?;
            }
        }
        let offset = frag_off & 0x1fff;
        if offset != 0 {
            write!(f, "FRAG:{offset} ")?;
        }
        let fragment = offset != 0;
        let ihl = u32::from(ih[0] & 0x0f) * 4;
        let th = iphoff.wrapping_add(ihl);
        // `skb->len - iphoff - ih->ihl * 4`, in `unsigned int`.
        let rest = self.len.wrapping_sub(iphoff).wrapping_sub(ihl);
        match ih[9] {
            proto::TCP => {
                if self.tcp(f, fragment, th)? {
                    return Ok(());
                }
            }
            proto::UDP | proto::UDPLITE => {
                if self.udp(f, ih[9], fragment, th)? {
                    return Ok(());
                }
            }
            proto::ICMP => {
                f.write_str("PROTO=ICMP ")?;
                if !fragment {
                    self.icmp(f, iphoff, th, rest)?;
                }
            }
            proto::AH => {
                // The kernel checks for a fragment before naming AH.
                if !fragment {
                    f.write_str("PROTO=AH ")?;
                    match read::<12>(self.p, th) {
                        None => write!(f, "INCOMPLETE [{rest} bytes] ")?,
                        Some(ah) => write!(f, "SPI=0x{:x} ", be32(&ah, 4))?,
                    }
                }
            }
            proto::ESP => {
                f.write_str("PROTO=ESP ")?;
                if !fragment {
                    match read::<8>(self.p, th) {
                        None => write!(f, "INCOMPLETE [{rest} bytes] ")?,
                        Some(eh) => write!(f, "SPI=0x{:x} ", be32(&eh, 0))?,
                    }
                }
            }
            other => write!(f, "PROTO={other} ")?,
        }
        self.mark(f, iphoff == 0)
    }

    /// The ICMP part of `dump_ipv4_packet()`; `rest` is what follows the
    /// IPv4 header, in the kernel's arithmetic.
    fn icmp(&self, f: &mut Formatter<'_>, iphoff: u32, th: u32, rest: u32) -> fmt::Result {
        /// `required_len[]`: what each type needs after the IPv4 header.
        fn required_len(kind: u8) -> u32 {
            match kind {
                0 | 8 => 4,
                3 | 4 | 5 | 11 | 12 => 8 + 20,
                13 | 14 => 20,
                17 | 18 => 12,
                _ => 0,
            }
        }
        let Some(ich) = read::<8>(self.p, th) else {
            return write!(f, "INCOMPLETE [{rest} bytes] ");
        };
        let (kind, code) = (ich[0], ich[1]);
        write!(f, "TYPE={kind} CODE={code} ")?;
        let required = required_len(kind);
        if required != 0 && rest < required {
            return write!(f, "INCOMPLETE [{rest} bytes] ");
        }
        match kind {
            0 | 8 => write!(f, "ID={} SEQ={} ", be16(&ich, 4), be16(&ich, 6))?,
            12 => write!(f, "PARAMETER={} ", ich[4])?,
            3 | 4 | 5 | 11 => {
                if kind == 5 {
                    write!(f, "GATEWAY={} ", Ipv4Addr(&ich[4..8]))?;
                }
                // Only one level of recursion.
                if iphoff == 0 {
                    f.write_str("[")?;
                    self.ipv4(f, th.wrapping_add(8))?;
                    f.write_str("] ")?;
                }
                if kind == 3 && code == 4 {
                    write!(f, "MTU={} ", be16(&ich, 6))?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// `nf_log_dump_tcp_header()` without `--log-tcp-sequence` or
    /// `--log-tcp-options`.
    fn tcp(&self, f: &mut Formatter<'_>, fragment: bool, offset: u32) -> Result<Stop, fmt::Error> {
        f.write_str("PROTO=TCP ")?;
        if fragment {
            return Ok(false);
        }
        let Some(th) = read::<20>(self.p, offset) else {
            write!(f, "INCOMPLETE [{} bytes] ", self.len.wrapping_sub(offset))?;
            return Ok(true);
        };
        write!(f, "SPT={} DPT={} ", be16(&th, 0), be16(&th, 2))?;
        write!(f, "WINDOW={} ", be16(&th, 14))?;
        write!(f, "RES=0x{:02x} ", (th[12] & self.d.tcp_reserved) << 2)?;
        if self.d.tcp_ae() && th[12] & 1 != 0 {
            f.write_str("AE ")?;
        }
        const NAMES: [&str; 8] = [
            "CWR ", "ECE ", "URG ", "ACK ", "PSH ", "RST ", "SYN ", "FIN ",
        ];
        for (bit, name) in NAMES.iter().enumerate() {
            if th[13] & (0x80 >> bit) != 0 {
                f.write_str(name)?;
            }
        }
        write!(f, "URGP={} ", be16(&th, 18))?;
        Ok(false)
    }

    /// `nf_log_dump_udp_header()`, for UDP and UDP-Lite.
    fn udp(
        &self,
        f: &mut Formatter<'_>,
        protocol: u8,
        fragment: bool,
        offset: u32,
    ) -> Result<Stop, fmt::Error> {
        f.write_str(if protocol == proto::UDP {
            "PROTO=UDP "
        } else {
            "PROTO=UDPLITE "
        })?;
        if fragment {
            return Ok(false);
        }
        let Some(uh) = read::<8>(self.p, offset) else {
            write!(f, "INCOMPLETE [{} bytes] ", self.len.wrapping_sub(offset))?;
            return Ok(true);
        };
        write!(
            f,
            "SPT={} DPT={} LEN={} ",
            be16(&uh, 0),
            be16(&uh, 2),
            be16(&uh, 4)
        )?;
        Ok(false)
    }

    /// `MARK=`, for the outer packet only.
    fn mark(&self, f: &mut Formatter<'_>, outer: bool) -> fmt::Result {
        let mark = self.p.mark();
        if outer && mark != 0 {
            write!(f, "MARK=0x{mark:x} ")?;
        }
        Ok(())
    }

    /// `dump_ipv6_packet()` for the header at `ip6hoff`; `recurse` is false
    /// for the packet inside an ICMPv6 error.
    fn ipv6(&self, f: &mut Formatter<'_>, ip6hoff: u32, recurse: bool) -> fmt::Result {
        let Some(ih) = read::<40>(self.p, ip6hoff) else {
            return f.write_str("TRUNCATED");
        };
        write!(
            f,
            "SRC={} DST={} ",
            Ipv6Addr(&ih[8..24]),
            Ipv6Addr(&ih[24..40])
        )?;
        // `ipv6_payload_len()`: BIG TCP leaves the field 0 in a GSO/GRO
        // packet, and the kernel then takes the length from the packet.
        let payload_len = u32::from(be16(&ih, 4));
        let payload_len = if payload_len != 0 || !self.p.gso_tcp() {
            payload_len
        } else {
            self.len.wrapping_sub(40)
        };
        let word = be32(&ih, 0);
        write!(
            f,
            "LEN={} TC={} HOPLIMIT={} FLOWLBL={} ",
            u64::from(payload_len) + 40,
            (word & 0x0ff0_0000) >> 20,
            ih[7],
            word & 0x000f_ffff
        )?;
        let mut fragment = false;
        let mut ptr = ip6hoff.wrapping_add(40);
        let mut current = ih[6];
        // `nf_ip6_ext_hdr()`, less `NEXTHDR_NONE`. The walk ends because
        // every header moves `ptr` on by at least 8 bytes until a read fails.
        while matches!(
            current,
            proto::HOPOPTS
                | proto::ROUTING
                | proto::FRAGMENT
                | proto::ESP
                | proto::AH
                | proto::DSTOPTS
        ) {
            let Some(hp) = read::<2>(self.p, ptr) else {
                return f.write_str("TRUNCATED");
            };
            let hdrlen = match current {
                proto::FRAGMENT => {
                    f.write_str("FRAG:")?;
                    let Some(fh) = read::<8>(self.p, ptr) else {
                        return f.write_str("TRUNCATED ");
                    };
                    let frag_off = be16(&fh, 2);
                    write!(f, "{} ", frag_off & 0xfff8)?;
                    if frag_off & 1 != 0 {
                        f.write_str("INCOMPLETE ")?;
                    }
                    write!(f, "ID:{:08x} ", be32(&fh, 4))?;
                    if frag_off & 0xfff8 != 0 {
                        fragment = true;
                    }
                    8
                }
                proto::DSTOPTS | proto::ROUTING | proto::HOPOPTS => {
                    if fragment {
                        return Ok(());
                    }
                    (u32::from(hp[1]) + 1) << 3
                }
                proto::AH => (u32::from(hp[1]) + 2) << 2,
                // ESP: nothing more is readable.
                _ => return Ok(()),
            };
            current = hp[0];
            ptr = ptr.wrapping_add(hdrlen);
        }
        match current {
            proto::TCP => {
                if self.tcp(f, fragment, ptr)? {
                    return Ok(());
                }
            }
            proto::UDP | proto::UDPLITE => {
                if self.udp(f, current, fragment, ptr)? {
                    return Ok(());
                }
            }
            proto::ICMPV6 => {
                f.write_str("PROTO=ICMPv6 ")?;
                if !fragment {
                    let Some(ic) = read::<8>(self.p, ptr) else {
                        return write!(f, "INCOMPLETE [{} bytes] ", self.len.wrapping_sub(ptr));
                    };
                    let kind = ic[0];
                    write!(f, "TYPE={kind} CODE={} ", ic[1])?;
                    match kind {
                        128 | 129 => write!(f, "ID={} SEQ={} ", be16(&ic, 4), be16(&ic, 6))?,
                        1..=4 => {
                            if kind == 4 {
                                write!(f, "POINTER={:08x} ", be32(&ic, 4))?;
                            }
                            if recurse {
                                f.write_str("[")?;
                                self.ipv6(f, ptr.wrapping_add(8), false)?;
                                f.write_str("] ")?;
                            }
                            if kind == 2 {
                                write!(f, "MTU={} ", be32(&ic, 4))?;
                            }
                        }
                        _ => {}
                    }
                }
            }
            other => write!(f, "PROTO={other} ")?,
        }
        self.mark(f, recurse)
    }
}

/// Bytes from outside (a device name, a parameter value): printable ASCII as
/// is and any other byte as `\xNN`, so they can never break the line or
/// forge another field.
pub(crate) struct Escaped<'a>(pub(crate) &'a [u8]);

impl Display for Escaped<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for &b in self.0 {
            if b.is_ascii_graphic() && b != b'\\' {
                f.write_char(char::from(b))?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}
