// SPDX-License-Identifier: GPL-2.0

//! Module parameters: `helpers.c` declares them with `module_param_cb()`
//! (the same `struct kernel_param` in `__param` and `parm=` text in
//! `.modinfo` on every kernel nsfilter supports), and their `set` and `get`
//! reach a [`Params`] implementation through [`module_params!`].
//!
//! The logic implements [`Params`]; this module turns the C calls into safe
//! ones and never learns what the parameters mean.

use crate::textbuf::SliceWriter;
use core::{
    ffi::{c_char, c_int, c_ulong, CStr},
    fmt::{self, Write},
};
use kernel::prelude::*;

/// The module parameters, numbered as `helpers.c` declares them.
pub(crate) trait Params {
    /// Sets parameter number `id` from `value`, or refuses the value (the old
    /// one stays). `None` is a parameter given bare, with no `=`, as
    /// `insmod nsfilter.ko enabled`. Runs in process context and may sleep;
    /// the kernel serialises the calls with its module parameter lock.
    fn set(id: usize, value: Option<&[u8]>) -> Result;

    /// Writes the value of parameter number `id` as `set` accepts it.
    fn get(id: usize, out: &mut dyn Write) -> fmt::Result;
}

/// The size of the buffer the kernel hands to a parameter's `get`.
const PARAM_BUF_SIZE: usize = kernel::page::PAGE_SIZE;

/// `kernel_param_ops.set` for parameter number `id`, handed to `T`.
///
/// # Safety
///
/// `val` must be null or a NUL-terminated string valid for the call, as the
/// kernel passes it to `kernel_param_ops.set`.
pub(crate) unsafe fn set<T: Params>(id: c_ulong, val: *const c_char) -> c_int {
    let value = if val.is_null() {
        None
    } else {
        // SAFETY: A NUL-terminated string valid for the call (the caller's
        // guarantee).
        Some(unsafe { CStr::from_ptr(val) }.to_bytes())
    };
    // CAST: Parameter numbers are small constants.
    match T::set(id as usize, value) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// `kernel_param_ops.get` for parameter number `id`, handed to `T`.
///
/// # Safety
///
/// `buf` must point to a writable buffer of `PAGE_SIZE` bytes, as the kernel
/// passes it to `kernel_param_ops.get`.
pub(crate) unsafe fn get<T: Params>(id: c_ulong, buf: *mut c_char) -> c_int {
    // SAFETY: `buf` is `PARAM_BUF_SIZE` writable bytes (the caller's guarantee).
    let buf = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), PARAM_BUF_SIZE) };
    let mut out = SliceWriter::new(buf);
    // CAST: Parameter numbers are small constants.
    if T::get(id as usize, &mut out).is_err() || out.write_str("\n").is_err() {
        return EINVAL.to_errno();
    }
    // CAST: At most `PAGE_SIZE`.
    out.written().len() as c_int
}

/// Binds the module parameters declared in `helpers.c` to a [`Params`]
/// implementation: defines the two functions their C ops call.
///
/// # Examples
///
/// ```ignore
/// sys::module_params!(hook::Parameters);
/// ```
macro_rules! module_params {
    ($params:ty) => {
        /// `kernel_param_ops.set` of the parameter numbered `id` (see
        /// `helpers.c`).
        ///
        /// # Safety
        ///
        /// Called by the kernel only (through `helpers.c`), with `val` null or
        /// a NUL-terminated string valid for the call.
        #[no_mangle]
        unsafe extern "C" fn nsfilter_param_set(
            id: core::ffi::c_ulong,
            val: *const core::ffi::c_char,
        ) -> core::ffi::c_int {
            // SAFETY: As the kernel guarantees for `kernel_param_ops.set`.
            unsafe { $crate::sys::params::set::<$params>(id, val) }
        }

        /// `kernel_param_ops.get` of the parameter numbered `id` (see
        /// `helpers.c`).
        ///
        /// # Safety
        ///
        /// Called by the kernel only (through `helpers.c`), with `buf`
        /// pointing to a writable buffer of `PAGE_SIZE` bytes.
        #[no_mangle]
        unsafe extern "C" fn nsfilter_param_get(
            id: core::ffi::c_ulong,
            buf: *mut core::ffi::c_char,
        ) -> core::ffi::c_int {
            // SAFETY: As the kernel guarantees for `kernel_param_ops.get`.
            unsafe { $crate::sys::params::get::<$params>(id, buf) }
        }
    };
}
pub(crate) use module_params;
