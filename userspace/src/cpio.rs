//! A writer for the `newc` cpio format the kernel unpacks as an initramfs.

use std::io::{self, Write};

/// Writes a `newc` cpio archive entry by entry.
pub struct CpioWriter<W: Write> {
    out: W,
    written: u64,
    next_ino: u32,
}

const DIR: u32 = 0o040000;
const FILE: u32 = 0o100000;
const SYMLINK: u32 = 0o120000;

impl<W: Write> CpioWriter<W> {
    /// Starts an archive on `out`.
    pub fn new(out: W) -> Self {
        Self {
            out,
            written: 0,
            next_ino: 1,
        }
    }

    /// Adds a directory with permissions `mode`.
    pub fn dir(&mut self, path: &str, mode: u32) -> io::Result<()> {
        self.entry(path, DIR | mode, b"")
    }

    /// Adds a regular file with permissions `mode`.
    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> io::Result<()> {
        self.entry(path, FILE | mode, data)
    }

    /// Adds a symbolic link at `path` pointing to `target`.
    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        self.entry(path, SYMLINK | 0o777, target.as_bytes())
    }

    /// Writes the trailer and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.entry("TRAILER!!!", 0, b"")?;
        Ok(self.out)
    }

    fn entry(&mut self, path: &str, mode: u32, data: &[u8]) -> io::Result<()> {
        let name = path.trim_start_matches('/');
        let name = if name.is_empty() { "." } else { name };
        let too_big = || io::Error::new(io::ErrorKind::InvalidInput, "entry too large for cpio");
        let size = u32::try_from(data.len()).map_err(|_| too_big())?;
        let namesize = u32::try_from(name.len() + 1).map_err(|_| too_big())?;
        let ino = self.next_ino;
        self.next_ino += 1;
        let nlink = if mode & DIR != 0 { 2 } else { 1 };
        let header = format!(
            "070701{ino:08X}{mode:08X}{:08X}{:08X}{nlink:08X}{:08X}{size:08X}{:08X}{:08X}{:08X}{:08X}{namesize:08X}{:08X}",
            0, 0, 0, 0, 0, 0, 0, 0
        );
        self.put(header.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        self.put(data)?;
        self.pad()
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let pad = (4 - (self.written % 4) as usize) % 4;
        self.put(&[0u8; 3][..pad])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_aligned_and_trailed() {
        let mut w = CpioWriter::new(Vec::new());
        w.dir("/bin", 0o755).unwrap();
        w.file("/bin/hello", 0o644, b"hi\n").unwrap();
        w.symlink("/bin/sh", "busybox").unwrap();
        let out = w.finish().unwrap();
        assert_eq!(out.len() % 4, 0);
        assert!(out.starts_with(b"070701"));
        let text = String::from_utf8_lossy(&out);
        for name in ["bin\0", "bin/hello\0", "hi\n", "busybox", "TRAILER!!!\0"] {
            assert!(text.contains(name), "missing {name:?}");
        }
        // The file entry: mode 0100644, size 3.
        let at = text.find("bin/hello").unwrap();
        let header = &text[at - 110..at];
        assert_eq!(&header[14..22], "000081A4");
        assert_eq!(&header[54..62], "00000003");
    }
}
