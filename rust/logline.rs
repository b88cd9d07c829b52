// SPDX-License-Identifier: GPL-2.0

//! The text of one log line, in safe Rust.
//!
//! Fields are `KEY=value` in the order of the kernel's `LOG` target, with the
//! namespace first, so that tools which read `LOG` lines read these too:
//!
//! ```text
//! NETNS=4026531840 IN=veth1 SRC=192.168.0.2 DST=192.168.0.3 LEN=84 TTL=64 ID=1234 DF PROTO=UDP SPT=40000 DPT=5353
//! ```
//!
//! A [`LogLine`] formats straight into the kernel's log buffer through
//! [`core::fmt::Display`]: nothing is allocated.

use crate::packet::{proto, Ipv4, Ipv6, Payload, Summary, Transport};
use core::fmt::{self, Display, Formatter, Write};

/// One packet as nsfilter logs it.
pub(crate) struct LogLine<'a> {
    /// The inode number of the namespace the packet entered.
    pub(crate) netns: u32,
    /// The name of the device it came in on.
    pub(crate) in_dev: &'a [u8],
    /// What the parser found.
    pub(crate) summary: &'a Summary,
}

impl Display for LogLine<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "NETNS={} IN={}", self.netns, Escaped(self.in_dev))?;
        match self.summary {
            Summary::Truncated => f.write_str(" TRUNCATED"),
            Summary::Ipv4(ip) => ipv4(f, ip),
            Summary::Ipv6(ip) => ipv6(f, ip),
        }
    }
}

fn ipv4(f: &mut Formatter<'_>, ip: &Ipv4) -> fmt::Result {
    let (s, d) = (ip.src, ip.dst);
    write!(
        f,
        " SRC={}.{}.{}.{} DST={}.{}.{}.{} LEN={} TTL={} ID={}",
        s[0], s[1], s[2], s[3], d[0], d[1], d[2], d[3], ip.len, ip.ttl, ip.id
    )?;
    for (set, name) in [(ip.ce, " CE"), (ip.df, " DF"), (ip.mf, " MF")] {
        if set {
            f.write_str(name)?;
        }
    }
    if ip.frag != 0 {
        write!(f, " FRAG:{}", ip.frag)?;
    }
    payload(f, &ip.payload, proto::ICMP)
}

fn ipv6(f: &mut Formatter<'_>, ip: &Ipv6) -> fmt::Result {
    write!(
        f,
        " SRC={} DST={} LEN={} HOPLIMIT={}",
        Ipv6Addr(&ip.src),
        Ipv6Addr(&ip.dst),
        ip.len,
        ip.hoplimit
    )?;
    if let Some(frag) = ip.frag {
        write!(f, " FRAG:{}", frag.offset)?;
        if frag.more {
            f.write_str(" INCOMPLETE")?;
        }
        write!(f, " ID:{:08x}", frag.id)?;
    }
    payload(f, &ip.payload, proto::ICMPV6)
}

/// Writes what follows the network header; `icmp` is the family's ICMP.
fn payload(f: &mut Formatter<'_>, payload: &Payload, icmp: u8) -> fmt::Result {
    let (protocol, transport) = match payload {
        Payload::Invalid => return f.write_str(" INVALID"),
        Payload::Truncated => return f.write_str(" TRUNCATED"),
        Payload::Transport(protocol, transport) => (*protocol, transport),
    };
    match protocol {
        proto::TCP => f.write_str(" PROTO=TCP")?,
        proto::UDP => f.write_str(" PROTO=UDP")?,
        proto::UDPLITE => f.write_str(" PROTO=UDPLITE")?,
        proto::SCTP => f.write_str(" PROTO=SCTP")?,
        proto::ICMP if icmp == proto::ICMP => f.write_str(" PROTO=ICMP")?,
        proto::ICMPV6 if icmp == proto::ICMPV6 => f.write_str(" PROTO=ICMPv6")?,
        other => write!(f, " PROTO={other}")?,
    }
    match *transport {
        Transport::Fragment | Transport::Other => Ok(()),
        Transport::Incomplete(n) => write!(f, " INCOMPLETE [{n} bytes]"),
        Transport::Ports { src, dst } => write!(f, " SPT={src} DPT={dst}"),
        Transport::Tcp { src, dst, flags } => {
            write!(f, " SPT={src} DPT={dst}")?;
            const NAMES: [&str; 8] = [
                " CWR", " ECE", " URG", " ACK", " PSH", " RST", " SYN", " FIN",
            ];
            for (bit, name) in NAMES.iter().enumerate() {
                if flags & (0x80 >> bit) != 0 {
                    f.write_str(name)?;
                }
            }
            Ok(())
        }
        Transport::Icmp { kind, code, echo } => {
            write!(f, " TYPE={kind} CODE={code}")?;
            match echo {
                Some((id, seq)) => write!(f, " ID={id} SEQ={seq}"),
                None => Ok(()),
            }
        }
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

/// An IPv6 address as `ip` prints it (`inet_ntop()`): lowercase groups, the
/// longest run of two or more zero groups (the first, on a tie) as `::`, and
/// the last 32 bits dotted for IPv4-compatible and IPv4-mapped addresses.
struct Ipv6Addr<'a>(&'a [u8; 16]);

impl Display for Ipv6Addr<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let b = self.0;
        let mut words = [0u16; 8];
        for (i, w) in words.iter_mut().enumerate() {
            *w = u16::from_be_bytes([b[2 * i], b[2 * i + 1]]);
        }
        // The longest run of zero words, as (start, length).
        let (mut best, mut run) = ((0, 0), (0, 0));
        for (i, &w) in words.iter().enumerate() {
            if w == 0 {
                run = if run.1 == 0 {
                    (i, 1)
                } else {
                    (run.0, run.1 + 1)
                };
                if run.1 > best.1 {
                    best = run;
                }
            } else {
                run = (0, 0);
            }
        }
        if best.1 < 2 {
            best = (8, 0);
        }
        let embedded_v4 = best.0 == 0 && (best.1 == 6 || (best.1 == 5 && words[5] == 0xffff));
        let mut i = 0;
        while i < 8 {
            if i == best.0 {
                f.write_str(if i == 0 { "::" } else { ":" })?;
                i += best.1;
                continue;
            }
            if embedded_v4 && i == 6 {
                return write!(f, "{}.{}.{}.{}", b[12], b[13], b[14], b[15]);
            }
            write!(f, "{:x}", words[i])?;
            if i < 7 {
                f.write_str(":")?;
            }
            i += 1;
        }
        Ok(())
    }
}
