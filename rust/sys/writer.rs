// SPDX-License-Identifier: GPL-2.0

//! A [`core::fmt::Write`] into a fixed buffer, for text handed to C.

use core::fmt::{self, Write};

/// A [`Write`] into a byte buffer that refuses to overflow it.
pub(super) struct SliceWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> SliceWriter<'a> {
    /// A writer that fills `buf` from its start.
    pub(super) fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// What was written so far.
    pub(super) fn written(&self) -> &[u8] {
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
