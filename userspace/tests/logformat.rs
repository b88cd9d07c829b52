//! Host tests of the log line against the kernel itself: lines the kernel's
//! `LOG` printed in the VM (a fixture) reproduced byte for byte, the examples
//! of `docs/log-format.md` tied to them, and logwatch's iptables service reading both alike.

#![allow(dead_code)]

#[path = "../../rust/logline.rs"]
mod logline;
#[path = "../../rust/packet.rs"]
mod packet;
#[path = "../../rust/textbuf.rs"]
mod textbuf;

use logline::{Dialect, LogLine};
use packet::{parse, Bytes, Family, Frame, Link};

include!("support/frames.rs");

/// One record of a fixture: the kernel's line for a packet it received.
struct Record {
    family: Family,
    mac: Vec<u8>,
    bytes: Vec<u8>,
    kernel: String,
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex in the fixture"))
        .collect()
}

/// The kernel's LOG lines for the fixture's packets, captured from the VM
/// (read relative to this file, so that every package that compiles these
/// tests finds it).
const LOGFORMAT_6_12: &str = include_str!("fixtures/logformat-6.12.tsv");

/// The records of a fixture's text.
fn fixture(text: &str) -> Vec<Record> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.splitn(4, '\t').collect();
            Record {
                family: if f[0] == "4" {
                    Family::Ipv4
                } else {
                    Family::Ipv6
                },
                mac: unhex(f[1]),
                bytes: unhex(f[2]),
                kernel: f[3].to_string(),
            }
        })
        .collect()
}

/// nsfilter's line for a fixture record's packet `pkt`, as the VM's
/// namespace and device named it.
fn fixture_line<'a>(r: &Record, pkt: &'a Pkt<'a>) -> LogLine<'a, Pkt<'a>> {
    LogLine {
        netns: 4026532117,
        in_dev: b"lf1v",
        family: r.family,
        packet: pkt,
        dialect: V6_12,
    }
}

/// What nsfilter prints for a fixture record, after `NETNS=<inode> `.
fn ours(r: &Record) -> String {
    let pkt = Pkt::ether(&r.bytes, &r.mac);
    let line = fixture_line(r, &pkt).to_string();
    line.strip_prefix("NETNS=4026532117 ")
        .expect("the line starts with NETNS=")
        .to_string()
}

/// Lines the 6.12 kernel's LOG printed in the VM, for packets whose bytes
/// were kept: the formatter prints each of them byte for byte.
#[test]
fn the_kernels_own_lines_are_reproduced_byte_for_byte() {
    let records = fixture(LOGFORMAT_6_12);
    assert!(records.len() > 300, "{} records", records.len());
    for r in &records {
        assert_eq!(ours(r), r.kernel, "packet {}", r.bytes.len());
    }
}

/// The `malformed` counter counts exactly the packets whose line, as the
/// kernel's `LOG` printed it, reports a header cut short (`TRUNCATED` or
/// `INCOMPLETE [n bytes]`): so the documented definition holds for the
/// kernel's own lines, not only for the formatter's.
#[test]
fn malformed_is_what_the_kernels_line_reports() {
    let records = fixture(LOGFORMAT_6_12);
    let wrong: Vec<String> = records
        .iter()
        .filter(|r| parse(r.family, &r.bytes[..]).is_malformed() != reports_cut(&r.kernel))
        .map(|r| format!("{:02x?}\n    {}", r.bytes, r.kernel))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let cut = records.iter().filter(|r| reports_cut(&r.kernel)).count();
    assert!(cut > 30 && records.len() - cut > 30, "{cut}");
}

/// The "one example per protocol" lines of `docs/log-format.md` are lines the kernel
/// printed (fixture records) and exactly what the formatter prints for
/// those packets, so the documented format stays true.
#[test]
fn documented_examples_are_what_the_module_prints() {
    let doc = include_str!("../../docs/log-format.md");
    let block = doc
        .split("One example per protocol")
        .nth(1)
        .and_then(|rest| rest.split("```text\n").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("the example block of docs/log-format.md");
    let records = fixture(LOGFORMAT_6_12);
    let shown: Vec<&str> = block.lines().collect();
    assert!(shown.len() >= 10, "{shown:?}");
    for example in shown {
        // The guide cannot show the trailing space; the line has it.
        let text = example
            .strip_prefix("nsfilter: NETNS=4026532117 ")
            .expect(example);
        let record = records
            .iter()
            .find(|r| r.kernel.trim_end() == text)
            .unwrap_or_else(|| panic!("not a line of the fixture: {example}"));
        assert_eq!(ours(record), format!("{text} "));
    }
}

/// The iptables section of logwatch's report on `lines`, run as logwatch
/// runs its services: the packaged `logwatch`, a log directory holding a
/// syslog `messages` file, every date, at `detail`.
fn logwatch_report(name: &str, lines: &[String], detail: &str) -> String {
    let dir = std::env::temp_dir().join(format!("nsfilter-logwatch-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary log directory");
    let log: String = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            format!(
                "Nov 24 20:{:02}:{:02} lab kernel: [ {:4}.{:06}] {l}\n",
                i / 60 % 60,
                i % 60,
                10 + i / 1000,
                i % 1000
            )
        })
        .collect();
    std::fs::write(dir.join("messages"), log).expect("writing the log");
    // In /usr/sbin, which a normal user's PATH on Debian leaves out.
    let logwatch = ["/usr/sbin/logwatch", "/usr/bin/logwatch"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("logwatch");
    let out = std::process::Command::new(logwatch)
        .arg("--logdir")
        .arg(&dir)
        .args(["--service", "iptables", "--range", "all"])
        .args(["--detail", detail, "--output", "stdout", "--format", "text"])
        .output()
        .expect("running logwatch: it is Debian's package logwatch, which `make setup` installs");
    std::fs::remove_dir_all(&dir).expect("removing the log directory");
    assert!(out.status.success(), "logwatch failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    // The header has the time of the run; the service's section is the report.
    text.split("iptables firewall Begin")
        .nth(1)
        .and_then(|s| s.split("iptables firewall End").next())
        .unwrap_or_else(|| panic!("no iptables section in logwatch's output:\n{text}"))
        .to_string()
}

/// A real LOG reader: logwatch's iptables service reports nsfilter's lines
/// exactly as it reports the kernel's own LOG lines for the same packets,
/// taking `nsfilter: NETNS=<inode>` as the LOG prefix: same hosts, ports,
/// counts.
#[test]
fn logwatch_reports_nsfilter_as_it_reports_log() {
    let records = fixture(LOGFORMAT_6_12);
    let kernel: Vec<String> = records
        .iter()
        .map(|r| format!("LOG: {}", r.kernel))
        .collect();
    let nsfilter: Vec<String> = records
        .iter()
        .map(|r| format!("nsfilter: NETNS=4026532117 {}", ours(r)))
        .collect();
    // logwatch's pattern needs IN=, OUT=, SRC=, DST= and PROTO=.
    let counted = records
        .iter()
        .filter(|r| r.kernel.contains(" PROTO="))
        .count();
    for detail in ["low", "med", "high"] {
        let theirs = logwatch_report(&format!("kernel-{detail}"), &kernel, detail)
            .replace("(LOG:)", "(nsfilter: NETNS=4026532117)");
        let ours = logwatch_report(&format!("nsfilter-{detail}"), &nsfilter, detail);
        assert_eq!(ours, theirs, "detail {detail}");
        assert!(
            ours.contains(&format!("Logged {counted} packets on interface lf1v")),
            "{ours}"
        );
    }
}

/// `RES=` shows the reserved bits of TCP's byte 12, shifted as the kernel
/// does, and nothing of the data offset beside them.
#[test]
fn tcp_reserved_bits_are_masked() {
    for (byte12, res) in [
        (0x50u8, "RES=0x00 "),
        (0x5e, "RES=0x38 "),
        (0x51, "RES=0x04 "),
    ] {
        let mut t = vec![0u8; 20];
        t[12] = byte12;
        let p = ipv4(6, &t);
        let pkt = Pkt::ether(&p, &mac(Family::Ipv4));
        let line = format(Family::Ipv4, &pkt, V6_12);
        assert!(line.contains(res), "byte 12 {byte12:#04x}: {line}");
    }
}

/// A line formatted once into the hook's buffer is the line, byte for byte;
/// one that does not fit is refused whole (the hook then has printk format
/// it), never cut.
#[test]
fn a_line_formatted_into_the_buffer_is_the_line() {
    use textbuf::LineBuf;
    let records = fixture(LOGFORMAT_6_12);
    let (mut fit, mut long) = (0, 0);
    for r in &records {
        let pkt = Pkt::ether(&r.bytes, &r.mac);
        let line = fixture_line(r, &pkt);
        let text = line.to_string();
        let mut small = LineBuf::<300>::new();
        match small.format(format_args!("{line}")) {
            Some(got) => {
                assert_eq!(got, text);
                fit += 1;
            }
            None => {
                assert!(text.len() > 300, "{text}");
                long += 1;
            }
        }
        let mut big = LineBuf::<1024>::new();
        assert_eq!(big.format(format_args!("{line}")), Some(text.as_str()));
    }
    assert!(fit > 100 && long > 10, "{fit} fit, {long} did not");
}

/// The writer behind a parameter's value and a `/proc` line (`sys/`): what
/// it holds is what was written, and a text that does not fit is refused
/// whole, leaving what was there.
#[test]
fn slice_writer_holds_what_was_written() {
    use std::fmt::Write;
    use textbuf::SliceWriter;
    let mut buf = [0xffu8; 8];
    let mut w = SliceWriter::new(&mut buf);
    assert_eq!(w.written(), b"");
    let word = "ab";
    write!(w, "{}-{word}", 12).unwrap();
    assert_eq!(w.written(), b"12-ab");
    assert!(w.write_str("xyzw").is_err(), "9 bytes in 8");
    assert_eq!(w.written(), b"12-ab");
    w.write_str("xyz").unwrap();
    assert_eq!(w.into_written(), b"12-abxyz");
}

/// A link-layer header longer than one copy's chunk (32 bytes), and one cut
/// short by the end of the packet's data: every byte there is, in order,
/// as `dump_mac_header()` prints them one by one, and nothing after it.
#[test]
fn long_and_cut_link_headers_are_printed_whole() {
    let bytes = ipv4(17, &ports(1, 2, 8));
    for (hard_header_len, present) in [(40u16, 40usize), (70, 70), (64, 33), (14, 5)] {
        let header: Vec<u8> = (0..present).map(|i| (i * 7 + 3) as u8).collect();
        let mut buffer = vec![0xee; 2];
        buffer.extend_from_slice(&header);
        if present == usize::from(hard_header_len) {
            // A whole header: the network header follows it, as in a real
            // packet, and none of it is printed.
            buffer.extend_from_slice(&[0x45; 20]);
        }
        let pkt = Pkt {
            bytes: &bytes,
            mark: 0,
            gso_tcp: false,
            link: Some(Link {
                dev_type: 1,
                hard_header_len,
                mac_len: Some(u32::from(hard_header_len)),
                headroom: 2,
            }),
            buffer,
        };
        let line = LogLine {
            netns: 1,
            in_dev: b"x",
            family: Family::Ipv4,
            packet: &pkt,
            dialect: V6_12,
        }
        .to_string();
        let want: Vec<String> = header.iter().map(|b| format!("{b:02x}")).collect();
        let want = format!(" MAC={} SRC=", want.join(":"));
        assert!(line.contains(&want), "{hard_header_len} {present}: {line}");
    }
}
