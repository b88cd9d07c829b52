// SPDX-License-Identifier: GPL-2.0

//! Text formatted into a fixed buffer: for C (a parameter's value, a
//! `/proc` file's lines) and for a log line formatted once. Safe code,
//! compiled on the host too.

use core::fmt::{self, Write};

/// A [`Write`] into a byte buffer that refuses to overflow it.
pub(crate) struct SliceWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> SliceWriter<'a> {
    /// A writer that fills `buf` from its start.
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// What was written so far.
    pub(crate) fn written(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// What was written, for as long as the buffer lives.
    pub(crate) fn into_written(self) -> &'a [u8] {
        &self.buf[..self.len]
    }
}

impl Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// A line formatted once, into a buffer on the caller's stack, so that
/// printk copies its text where it would otherwise format it twice (it
/// measures the text, then writes it: `vprintk_store()`). On the stack, it
/// is the hook's own in every context the hook runs in (softirq, a task with
/// bottom halves off, `PREEMPT_RT`'s preemptible softirq threads): nothing
/// to share, lock or reserve per CPU.
pub(crate) struct LineBuf<const N: usize> {
    buf: [u8; N],
}

impl<const N: usize> LineBuf<N> {
    /// An empty buffer.
    pub(crate) const fn new() -> Self {
        Self { buf: [0; N] }
    }

    /// `args` as text, or `None` if it does not fit in `N` bytes (the
    /// caller then has printk format it).
    pub(crate) fn format(&mut self, args: fmt::Arguments<'_>) -> Option<&str> {
        let mut out = SliceWriter::new(&mut self.buf);
        fmt::write(&mut out, args).ok()?;
        core::str::from_utf8(out.into_written()).ok()
    }
}
