//! The kernel log as `/dev/kmsg` gives it: one record per `read()`,
//! `PRIORITY,SEQ,TIMESTAMP_US,FLAGS[,...];MESSAGE` then continuation lines
//! ` KEY=VALUE`, with unprintable bytes (and `\`) written as `\xNN`.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// `O_NONBLOCK`. The command is std only (Debian builds it offline, with
/// nothing but its own packages), and std does not name this flag, so it is
/// written here: 0o4000 is asm-generic's value, which every architecture
/// Debian releases for uses; those where it differs are refused below.
const O_NONBLOCK: i32 = 0o4000;
#[cfg(any(
    target_arch = "mips",
    target_arch = "mips32r6",
    target_arch = "mips64",
    target_arch = "mips64r6",
    target_arch = "sparc",
    target_arch = "sparc64"
))]
compile_error!(
    "O_NONBLOCK differs on this architecture: take it from arch/*/include/uapi/asm/fcntl.h"
);

/// One kernel log record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The level, 0 (emergency) to 7 (debug).
    pub level: u8,
    /// The sequence number.
    pub seq: u64,
    /// Microseconds since boot (the kernel's monotonic clock).
    pub timestamp_us: u64,
    /// The message, `\xNN` escapes undone.
    pub message: String,
    /// The continuation lines' `KEY=VALUE` pairs (`SUBSYSTEM=`, `DEVICE=`).
    pub dict: Vec<(String, String)>,
}

impl Record {
    /// The timestamp as `dmesg` prints it: `[   12.345678]`.
    pub fn stamp(&self) -> String {
        format!(
            "[{:5}.{:06}]",
            self.timestamp_us / 1_000_000,
            self.timestamp_us % 1_000_000
        )
    }
}

/// Undoes `/dev/kmsg`'s `\xNN` escapes; other text is left as it is.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 2..i + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], b.get(i + 1), hex) {
            (b'\\', Some(b'x'), Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses one record's text (the header line and its continuation lines).
pub fn parse_record(text: &str) -> Option<Record> {
    let mut lines = text.split('\n');
    let (prefix, message) = lines.next()?.split_once(';')?;
    let mut fields = prefix.split(',');
    let priority: u64 = fields.next()?.parse().ok()?;
    let seq = fields.next()?.parse().ok()?;
    let timestamp_us = fields.next()?.parse().ok()?;
    let dict = lines
        .filter_map(|l| l.strip_prefix(' '))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (unescape(k), unescape(v)))
        .collect();
    Some(Record {
        // CAST: Masked to 3 bits.
        level: (priority & 7) as u8,
        seq,
        timestamp_us,
        message: unescape(message),
        dict,
    })
}

/// Splits text holding several records (a saved copy of `/dev/kmsg`) at
/// each line that does not start with a space.
pub fn split_records(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if !line.starts_with(' ') {
            if let Some(s) = start {
                out.push(text[s..at].trim_end_matches('\n'));
            }
            start = Some(at);
        }
        at += line.len();
    }
    if let Some(s) = start {
        out.push(text[s..].trim_end_matches('\n'));
    }
    out.retain(|r| !r.is_empty());
    out
}

/// What a read of the log gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// A record.
    Record(Record),
    /// Text that is not a record.
    Garbled(String),
    /// Records were overwritten before they could be read; reading goes on
    /// at the oldest one left.
    Lost,
    /// Nothing more (now, without `follow`).
    End,
}

/// A reader of `/dev/kmsg` from its oldest record, or of a regular file
/// holding records (tests, saved logs).
pub struct Reader {
    file: File,
    /// The records of a regular file, read at once.
    saved: Option<VecDeque<String>>,
}

impl Reader {
    /// Opens `path`. Without `follow`, reading stops when the log has no
    /// more records; with it, it waits for new ones.
    pub fn open(path: &Path, follow: bool) -> io::Result<Self> {
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(if follow { 0 } else { O_NONBLOCK })
            .open(path)?;
        let saved = if file.metadata()?.is_file() {
            let mut text = String::new();
            file.read_to_string(&mut text)?;
            Some(split_records(&text).into_iter().map(String::from).collect())
        } else {
            None
        };
        Ok(Self { file, saved })
    }

    /// The next record.
    pub fn next_record(&mut self) -> io::Result<Next> {
        if let Some(saved) = &mut self.saved {
            return Ok(saved.pop_front().map_or(Next::End, |text| classify(&text)));
        }
        // A record is at most 8 KiB (`CONSOLE_EXT_LOG_MAX`) as read.
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            return match self.file.read(&mut buf) {
                Ok(0) => Ok(Next::End),
                Ok(n) => Ok(classify(&String::from_utf8_lossy(&buf[..n]))),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Next::End),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // EPIPE: records were overwritten before this reader got to them.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Next::Lost),
                Err(e) => Err(e),
            };
        }
    }
}

fn classify(text: &str) -> Next {
    match parse_record(text.trim_end_matches('\n')) {
        Some(r) => Next::Record(r),
        None => Next::Garbled(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netns::tests::TempDir;

    #[test]
    fn parses_a_record_with_continuation_lines() {
        let r = parse_record(
            "4,1234,5678901,-;nsfilter: NETNS=1 IN=lo OUT= \n SUBSYSTEM=net\n DEVICE=n2\n",
        )
        .unwrap();
        assert_eq!(r.level, 4);
        assert_eq!(r.seq, 1234);
        assert_eq!(r.timestamp_us, 5678901);
        assert_eq!(r.message, "nsfilter: NETNS=1 IN=lo OUT= ");
        assert_eq!(
            r.dict,
            [
                ("SUBSYSTEM".into(), "net".into()),
                ("DEVICE".into(), "n2".into())
            ]
        );
        assert_eq!(r.stamp(), "[    5.678901]");
        // Facility bits above the level; a caller field after the flags.
        let r = parse_record("14,7,123456789012,c,caller=T42;hi").unwrap();
        assert_eq!((r.level, r.seq, r.message.as_str()), (6, 7, "hi"));
        assert_eq!(r.stamp(), "[123456.789012]");
    }

    /// Root only (`cargo test --bin nsfilter -- --ignored`): the machine's
    /// own log reads to its end without blocking, every record parsed.
    #[test]
    #[ignore]
    fn reads_the_real_kmsg() {
        let mut r = Reader::open(Path::new("/dev/kmsg"), false).unwrap();
        let mut n = 0;
        loop {
            match r.next_record().unwrap() {
                Next::Record(_) => n += 1,
                Next::Lost => {}
                Next::Garbled(g) => panic!("not a record: {g:?}"),
                Next::End => break,
            }
        }
        assert!(n > 0);
    }

    #[test]
    fn undoes_escapes() {
        let r = parse_record(r"6,1,2,-;line1\x0aline2 back\x5cslash \x5cx41 \xzz \x4").unwrap();
        assert_eq!(r.message, "line1\nline2 back\\slash \\x41 \\xzz \\x4");
        assert_eq!(unescape(r"\xc3\xa9"), "é");
        assert_eq!(unescape(r"\xff"), "\u{fffd}");
    }

    #[test]
    fn refuses_what_is_not_a_record() {
        for bad in ["", "no semicolon", "x,1,2,-;m", "6,1;m", "6,1,z,-;m"] {
            assert_eq!(parse_record(bad), None, "{bad}");
        }
    }

    #[test]
    fn splits_saved_records_and_reads_a_file() {
        let text =
            "6,1,10,-;first\n SUBSYSTEM=x\n6,2,20,-;second\n\n6,3,30,-;third\nnot a record\n";
        assert_eq!(
            split_records(text),
            [
                "6,1,10,-;first\n SUBSYSTEM=x",
                "6,2,20,-;second",
                "6,3,30,-;third",
                "not a record"
            ]
        );
        let dir = TempDir::new();
        let path = dir.0.join("kmsg");
        std::fs::write(&path, text).unwrap();
        let mut r = Reader::open(&path, false).unwrap();
        let mut got = Vec::new();
        loop {
            match r.next_record().unwrap() {
                Next::Record(rec) => got.push(rec.message),
                Next::Garbled(g) => got.push(format!("garbled:{g}")),
                Next::Lost => got.push("lost".into()),
                Next::End => break,
            }
        }
        assert_eq!(got, ["first", "second", "third", "garbled:not a record"]);
    }
}
