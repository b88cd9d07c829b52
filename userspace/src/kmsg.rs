//! Reads new kernel log records from `/dev/kmsg` without blocking.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

/// A reader of kernel log records written after it was opened.
pub struct Kmsg {
    file: File,
    /// Every message read so far, in order.
    pub seen: Vec<String>,
    /// The kernel's timestamp of each of `seen`, in microseconds since boot.
    pub seen_us: Vec<u64>,
    /// The log level of each of `seen`: 0 an emergency, 7 debug.
    pub seen_level: Vec<u8>,
    /// How many records were overwritten before they could be read.
    pub lost: usize,
    /// The sequence number the next record should have, once one was read.
    next_seq: Option<u64>,
}

/// Opens `/dev/kmsg` at the oldest record it still holds.
fn open_raw() -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
}

/// Reads every record available now from `file`, as (level, timestamp in
/// microseconds, message): level 0 is an emergency, 7 debug. Returns how
/// many records the kernel overwrote before they could be read: the gaps in
/// their sequence numbers, counted from `next_seq` (the number the next
/// record should have), which it advances.
fn read_records(
    file: &mut File,
    next_seq: &mut Option<u64>,
    mut each: impl FnMut(u8, u64, String),
) -> io::Result<usize> {
    let mut lost = 0;
    let mut buf = vec![0u8; 8192];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(lost),
            Ok(n) => {
                let record = String::from_utf8_lossy(&buf[..n]);
                // "prio,seq,time,flags;message\n" then " KEY=value" lines;
                // prio is facility * 8 + level.
                if let Some((prefix, msg)) = record.split_once(';') {
                    let mut fields = prefix.split(',');
                    let level = fields
                        .next()
                        .and_then(|p| p.parse::<u32>().ok())
                        .map_or(7, |p| (p & 7) as u8);
                    if let Some(seq) = fields.next().and_then(|s| s.parse::<u64>().ok()) {
                        // CAST: a gap is at most the log's record count.
                        lost += next_seq.map_or(0, |next| seq.saturating_sub(next) as usize);
                        *next_seq = Some(seq + 1);
                    }
                    let time = fields.next().and_then(|t| t.parse().ok()).unwrap_or(0);
                    each(level, time, msg.lines().next().unwrap_or("").to_string());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(lost),
            // Records were overwritten before being read (EPIPE): the next
            // read returns the oldest record still held, and the gap in
            // sequence numbers says how many went.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {}
            Err(e) => return Err(e),
        }
    }
}

impl Kmsg {
    /// Opens `/dev/kmsg` at its end.
    pub fn open() -> io::Result<Self> {
        let mut file = open_raw()?;
        file.seek(SeekFrom::End(0))?;
        Ok(Self {
            file,
            seen: Vec::new(),
            seen_us: Vec::new(),
            seen_level: Vec::new(),
            lost: 0,
            next_seq: None,
        })
    }

    /// Opens `/dev/kmsg` at the oldest record it still holds.
    pub fn open_from_start() -> io::Result<Self> {
        Ok(Self {
            file: open_raw()?,
            seen: Vec::new(),
            seen_us: Vec::new(),
            seen_level: Vec::new(),
            lost: 0,
            next_seq: None,
        })
    }

    /// Reads every record available now; returns how many were new.
    pub fn poll(&mut self) -> io::Result<usize> {
        let before = self.seen.len();
        let (seen, seen_us, seen_level) = (&mut self.seen, &mut self.seen_us, &mut self.seen_level);
        self.lost += read_records(&mut self.file, &mut self.next_seq, |level, us, msg| {
            seen.push(msg);
            seen_us.push(us);
            seen_level.push(level);
        })?;
        Ok(self.seen.len() - before)
    }

    /// Takes every record seen so far, with its level, and forgets them.
    pub fn take(&mut self) -> Vec<(u8, String)> {
        self.seen_us.clear();
        std::mem::take(&mut self.seen_level)
            .into_iter()
            .zip(std::mem::take(&mut self.seen))
            .collect()
    }

    /// Forgets every record seen so far.
    pub fn clear(&mut self) {
        self.seen.clear();
        self.seen_us.clear();
        self.seen_level.clear();
    }

    /// Polls until `done(seen)` holds or `timeout` passes; returns whether it held.
    pub fn wait_until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&[String]) -> bool,
    ) -> io::Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            self.poll()?;
            if done(&self.seen) {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Whether `line` matches `pattern`, where `#` in the pattern stands for one
/// or more hexadecimal digits, `*` for one or more characters other than a
/// space (a MAC header), and everything else must be equal.
pub fn matches(pattern: &str, line: &str) -> bool {
    let (p, l) = (pattern.as_bytes(), line.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < p.len() {
        if p[i] == b'#' || p[i] == b'*' {
            let start = j;
            while j < l.len() && (l[j].is_ascii_hexdigit() || (p[i] == b'*' && l[j] != b' ')) {
                j += 1;
            }
            if j == start {
                return false;
            }
        } else if j < l.len() && p[i] == l[j] {
            j += 1;
        } else {
            return false;
        }
        i += 1;
    }
    j == l.len()
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn hash_matches_digits_only_where_placed() {
        assert!(matches("ID=# DF", "ID=1234 DF"));
        assert!(matches("ID:#", "ID:0a0b0c0d"));
        assert!(!matches("ID=# DF", "ID= DF"));
        assert!(!matches("LEN=84", "LEN=841"));
        assert!(!matches("LEN=84 X", "LEN=84"));
        assert!(matches("a", "a"));
        assert!(matches("MAC=* SRC", "MAC=02:00:0a:08:00 SRC"));
        assert!(!matches("MAC=* SRC", "MAC= SRC"));
    }
}
