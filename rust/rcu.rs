// SPDX-License-Identifier: GPL-2.0

//! The RCU read side in the types: code that is only correct inside an RCU
//! read-side critical section takes a proof of one.
//!
//! The settings' filter lists are published the RCU way (`settings.rs`): a
//! reader sees one whole version of them only if it runs inside a read-side
//! critical section, which every hook call does (`nf_hook()` holds
//! `rcu_read_lock()` around the hooks). A future caller outside one would
//! compile and silently lose that guarantee, so the reader takes a
//! [`ReadSide`] instead: only a type whose values exist solely inside such a
//! section may implement it, and implementing it is `unsafe`, so the claim
//! is made, and argued, in one place (`sys::RcuReader`, made by the hook
//! adapter for the duration of one hook call; and the host tests' reader).

/// A value that exists only inside an RCU read-side critical section.
///
/// # Safety
///
/// Every value of the implementing type must be made inside an RCU
/// read-side critical section and must not outlive it: while a reference to
/// one is held, a grace period that began after the section did cannot end.
pub(crate) unsafe trait ReadSide {}
