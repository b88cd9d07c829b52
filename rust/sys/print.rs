// SPDX-License-Identifier: GPL-2.0

//! Lines for the kernel log, at a level chosen at run time.
//!
//! The `kernel` crate's `pr_*!` macros fix the level at compile time, and
//! from Linux 6.19 on they format through `kernel::fmt::Display` rather than
//! `core::fmt::Display`. nsfilter calls `_printk()` itself with the `%pA`
//! format, which hands a `core::fmt::Arguments` to the kernel crate's
//! `rust_fmt_argument()` on every kernel version it supports: the same code,
//! and the same text, on 6.12 and 7.x.

use crate::bindings;
use core::{
    ffi::{c_int, c_void, CStr},
    fmt,
};

/// A kernel log level (`KERN_*`) that nsfilter writes at.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Level {
    /// `KERN_EMERG`.
    Emerg,
    /// `KERN_ALERT`.
    Alert,
    /// `KERN_CRIT`.
    Crit,
    /// `KERN_ERR`.
    Err,
    /// `KERN_WARNING`, the default of the kernel's `LOG` target.
    Warning,
    /// `KERN_NOTICE`.
    Notice,
    /// `KERN_INFO`.
    Info,
    /// `KERN_DEBUG`.
    Debug,
}

impl Level {
    /// The level with number `n` (0, `KERN_EMERG`, to 7, `KERN_DEBUG`);
    /// anything above 7 is `KERN_DEBUG`.
    pub(crate) fn from_number(n: u32) -> Self {
        match n {
            0 => Self::Emerg,
            1 => Self::Alert,
            2 => Self::Crit,
            3 => Self::Err,
            4 => Self::Warning,
            5 => Self::Notice,
            6 => Self::Info,
            _ => Self::Debug,
        }
    }

    /// The format string for a text already formatted: the `KERN_*`
    /// prefix, the module's name, `%.*s`.
    fn format_str(self) -> &'static CStr {
        match self {
            Self::Emerg => c"\x010nsfilter: %.*s\n",
            Self::Alert => c"\x011nsfilter: %.*s\n",
            Self::Crit => c"\x012nsfilter: %.*s\n",
            Self::Err => c"\x013nsfilter: %.*s\n",
            Self::Warning => c"\x014nsfilter: %.*s\n",
            Self::Notice => c"\x015nsfilter: %.*s\n",
            Self::Info => c"\x016nsfilter: %.*s\n",
            Self::Debug => c"\x017nsfilter: %.*s\n",
        }
    }

    /// The format string: the `KERN_*` prefix, the module's name, `%pA`.
    fn format(self) -> &'static CStr {
        match self {
            Self::Emerg => c"\x010nsfilter: %pA\n",
            Self::Alert => c"\x011nsfilter: %pA\n",
            Self::Crit => c"\x012nsfilter: %pA\n",
            Self::Err => c"\x013nsfilter: %pA\n",
            Self::Warning => c"\x014nsfilter: %pA\n",
            Self::Notice => c"\x015nsfilter: %pA\n",
            Self::Info => c"\x016nsfilter: %pA\n",
            Self::Debug => c"\x017nsfilter: %pA\n",
        }
    }
}

/// Writes `nsfilter: ` and `args` as one line of the kernel log at `level`.
///
/// Formats straight into the log buffer: nothing is allocated. May be called
/// in any context, the packet path's softirq included (on `PREEMPT_RT` too,
/// where printk hands the consoles to their own threads).
pub(crate) fn print(level: Level, args: fmt::Arguments<'_>) {
    // SAFETY: The format string is a static NUL-terminated string with one
    // conversion, `%pA`, whose argument is a pointer to `fmt::Arguments`:
    // `vsprintf()` passes it to the kernel crate's `rust_fmt_argument()`,
    // which formats it while `args` is alive (for the whole call).
    unsafe {
        bindings::_printk(
            level.format().as_ptr(),
            core::ptr::from_ref(&args).cast::<c_void>(),
        )
    };
}

/// Writes `nsfilter: ` and `text` as one line of the kernel log at `level`:
/// [`print`] for a text formatted already, which printk copies rather than
/// formats. In any context, as [`print`].
pub(crate) fn print_str(level: Level, text: &str) {
    // A line is far shorter than `c_int::MAX`; a longer text is cut there.
    let len = c_int::try_from(text.len()).unwrap_or(c_int::MAX);
    // SAFETY: The format string is a static NUL-terminated string with one
    // conversion, `%.*s`, whose arguments are an `int` precision and a
    // pointer to at least that many readable bytes: `text` is valid for its
    // length for the whole call, and `vsprintf()`'s `string()` reads at most
    // `len` bytes of it (stopping earlier at a NUL byte), never past it.
    unsafe { bindings::_printk(level.format_str().as_ptr(), len, text.as_ptr()) };
}
