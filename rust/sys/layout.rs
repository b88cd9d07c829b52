// SPDX-License-Identifier: GPL-2.0

//! The struct layouts the bindings assume, checked against the kernel's.
//!
//! bindgen lays structs out through libclang; the kernel was compiled by its
//! own compiler (gcc for Debian's kernels). They agree on everything
//! nsfilter reads except where bindgen misreads a declaration: on Debian's
//! 7.2.12 kernel it dropped struct ns_common's anonymous `struct ns_tree;`
//! member inside an anonymous union (an -fms-extensions construct), and the
//! module read `net->proc_net` 128 bytes early and crashed the kernel in
//! `proc_register()` when the first namespace was created. `Kbuild` now
//! makes ns_common opaque, the namespace's inode is read at the offset the
//! kernel's compiler gives, and [`check`] compares every other field the
//! Rust code reads with that compiler's offsets (`nsfilter_layout` in
//! `helpers.c`) before anything is registered.

use crate::bindings;
use core::mem::offset_of;
use kernel::prelude::*;

/// The offset the kernel's compiler gave `field` (`nsfilter_layout`).
pub(super) fn c_offset(field: bindings::nsfilter_layout_field) -> usize {
    // CAST: The enumerators are small indices (below `NSFILTER_LAYOUT_LEN`,
    // the array's length, so the indexing below never panics), and an
    // offset inside a struct fits `usize`.
    // SAFETY: `nsfilter_layout` is a `const` array defined in `helpers.c`,
    // initialised at build time and never written, so reading it races with
    // nothing.
    unsafe { bindings::nsfilter_layout[field as usize] as usize }
}

/// Refuses to load (`EINVAL`, with one line saying which field) if the
/// bindings put any field the Rust code reads elsewhere than the kernel does.
pub(super) fn check() -> Result {
    let fields = [
        (
            bindings::NSFILTER_LAYOUT_NET_PROC_NET,
            offset_of!(bindings::net, proc_net),
            "net.proc_net",
        ),
        (
            bindings::NSFILTER_LAYOUT_SKB_LEN,
            offset_of!(bindings::sk_buff, len),
            "sk_buff.len",
        ),
        (
            bindings::NSFILTER_LAYOUT_SKB_DATA_LEN,
            offset_of!(bindings::sk_buff, data_len),
            "sk_buff.data_len",
        ),
        (
            bindings::NSFILTER_LAYOUT_SKB_DATA,
            offset_of!(bindings::sk_buff, data),
            "sk_buff.data",
        ),
        (
            bindings::NSFILTER_LAYOUT_STATE_PF,
            offset_of!(bindings::nf_hook_state, pf),
            "nf_hook_state.pf",
        ),
        (
            bindings::NSFILTER_LAYOUT_STATE_NET,
            offset_of!(bindings::nf_hook_state, net),
            "nf_hook_state.net",
        ),
        (
            bindings::NSFILTER_LAYOUT_STATE_IN,
            offset_of!(bindings::nf_hook_state, in_),
            "nf_hook_state.in",
        ),
        (
            bindings::NSFILTER_LAYOUT_DEV_NAME,
            offset_of!(bindings::net_device, name),
            "net_device.name",
        ),
        (
            bindings::NSFILTER_LAYOUT_DEV_TYPE,
            offset_of!(bindings::net_device, type_),
            "net_device.type",
        ),
        (
            bindings::NSFILTER_LAYOUT_DEV_HARD_HEADER_LEN,
            offset_of!(bindings::net_device, hard_header_len),
            "net_device.hard_header_len",
        ),
    ];
    for (field, ours, name) in fields {
        let kernel = c_offset(field);
        if ours != kernel {
            super::print(
                super::Level::Err,
                format_args!(
                    "not loaded: its bindings put {name} at byte {ours}, the kernel at byte \
                     {kernel} (bindgen misread this kernel's headers; please report it)"
                ),
            );
            return Err(EINVAL);
        }
    }
    Ok(())
}
