// SPDX-License-Identifier: GPL-2.0

//! Per-CPU storage: one `T` for each possible CPU, in the kernel's per-CPU
//! areas.
//!
//! 6.12's `kernel` crate has no per-CPU API, and the kernel's own is macros
//! and inline functions (`alloc_percpu_gfp()`, `raw_cpu_ptr()`,
//! `per_cpu_ptr()`, `for_each_possible_cpu()`): `helpers.c` wraps each in a
//! function. [`PerCpu`] owns an allocation and hands out shared references
//! only, so `T` is meant to be atomics: any CPU may read any slot while its
//! owner updates it, and a caller that moves to another CPU between taking
//! its slot and using it (a preemptible caller) updates another CPU's slot,
//! which is still sound and, with atomic read-modify-writes, still exact.
//!
//! A [`PerCpu`] lives inside a namespace's state, and the pernet adapter's
//! ordering (the hook unregistered, a grace period, then the state dropped)
//! is what keeps every user of it within its life; the type itself does not
//! check for use after its drop. (An earlier version cleared its pointer in
//! `drop` and warned when it found it null; but the state lives in the
//! namespace's `net_generic()` memory, which the kernel frees right after
//! `exit`, so the check could only fire in that short window, and it cost a
//! load and a branch on every packet. KASAN watches the freed memory on the
//! debug kernel, and the `namespace_deaths_under_flood` test looks for the
//! symptom on every kernel.)

use crate::bindings;
use core::{ffi::c_void, marker::PhantomData, ptr};
use kernel::prelude::*;

/// The possible CPUs, in order (`for_each_possible_cpu()`).
fn possible_cpus() -> impl Iterator<Item = core::ffi::c_int> {
    let mut cpu = -1;
    core::iter::from_fn(move || {
        // SAFETY: `nsfilter_next_possible_cpu()` reads the possible-CPU mask,
        // which is fixed after boot, and takes any CPU number or -1.
        cpu = unsafe { bindings::nsfilter_next_possible_cpu(cpu) };
        (cpu >= 0).then_some(cpu)
    })
    .fuse()
}

/// One `T` for each possible CPU.
///
/// # Invariants
///
/// `ptr` is a non-null per-CPU pointer returned by `nsfilter_alloc_percpu()`
/// for `size_of::<T>()` bytes aligned to `align_of::<T>()`, not yet freed,
/// and the slot of every possible CPU holds an initialised `T`.
pub(crate) struct PerCpu<T> {
    ptr: *mut c_void,
    _owns: PhantomData<T>,
}

// SAFETY: Sending a `PerCpu` sends the ownership of its `T`s (dropped by the
// receiver), hence `T: Send`; the receiver also shares them with every CPU
// through `local`, hence `T: Sync`. The per-CPU memory itself, and so `ptr`,
// is valid on every CPU.
unsafe impl<T: Send + Sync> Send for PerCpu<T> {}

// SAFETY: A shared `PerCpu` hands out only `&T`, to any CPU's slot from any
// CPU: sound when `T: Sync`.
unsafe impl<T: Sync> Sync for PerCpu<T> {}

impl<T: Default> PerCpu<T> {
    /// Allocates a `T::default()` for each possible CPU.
    ///
    /// Sleeps: process context only (as pernet `init` is).
    pub(crate) fn new() -> Result<Self> {
        const {
            // What `pcpu_alloc_noprof()` accepts: a size of 1 to
            // `PCPU_MIN_UNIT_SIZE` (32 KiB) bytes, aligned to at most a page.
            assert!(core::mem::size_of::<T>() > 0);
            assert!(core::mem::size_of::<T>() <= 32 << 10);
            assert!(core::mem::align_of::<T>() <= 4096);
        }
        // SAFETY: The size and alignment are within what the allocator
        // takes (checked above); the caller may sleep, as `GFP_KERNEL` needs.
        let raw = unsafe {
            bindings::nsfilter_alloc_percpu(core::mem::size_of::<T>(), core::mem::align_of::<T>())
        };
        if raw.is_null() {
            return Err(ENOMEM);
        }
        for cpu in possible_cpus() {
            // SAFETY: `raw` is a live per-CPU allocation and `cpu` a
            // possible CPU, so this is that CPU's slot: valid for a `T`,
            // aligned, and not yet seen by anyone but this function.
            unsafe {
                bindings::nsfilter_per_cpu_ptr(raw, cpu)
                    .cast::<T>()
                    .write(T::default())
            };
        }
        // INVARIANT: Allocated for `T` above, not null, and every possible
        // CPU's slot initialised.
        Ok(Self {
            ptr: raw,
            _owns: PhantomData,
        })
    }
}

impl<T> PerCpu<T> {
    /// The slot of the CPU this runs on.
    ///
    /// Called where the caller may be preempted (on PREEMPT_RT the hook
    /// runs in a preemptible softirq thread, and `nf_reinject()` runs it in
    /// process context), the caller may run on another CPU by the time it
    /// uses the slot: it then uses that CPU's slot, which is as sound as any
    /// shared reference to a `T: Sync`.
    pub(crate) fn local(&self) -> &T {
        // SAFETY: `ptr` is a live per-CPU allocation for `T` (type
        // invariant). The helper is `raw_cpu_ptr()`: the address of the
        // current CPU's slot, with no check that the caller cannot migrate
        // (which `this_cpu_ptr()` makes under `CONFIG_DEBUG_PREEMPT`); that
        // slot stays valid for as long as `self`, whatever CPU uses it.
        let slot = unsafe { bindings::nsfilter_raw_cpu_ptr(self.ptr) };
        // SAFETY: The slot holds an initialised `T` for as long as `self`
        // (type invariant), and only shared references to it are ever made.
        unsafe { &*slot.cast::<T>() }
    }

    /// Every possible CPU's slot, in CPU order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        possible_cpus().map(move |cpu| {
            // SAFETY: `ptr` is live and `cpu` possible: the slot holds an
            // initialised `T` for as long as `self` (type invariant), and
            // only shared references to it are ever made.
            unsafe { &*bindings::nsfilter_per_cpu_ptr(self.ptr, cpu).cast::<T>() }
        })
    }
}

impl<T> Drop for PerCpu<T> {
    fn drop(&mut self) {
        let ptr = self.ptr;
        for cpu in possible_cpus() {
            // SAFETY: Every slot holds an initialised `T` (type invariant),
            // dropped once here; `&mut self` means no reference to it is left.
            unsafe { ptr::drop_in_place(bindings::nsfilter_per_cpu_ptr(ptr, cpu).cast::<T>()) };
        }
        // SAFETY: `ptr` came from `nsfilter_alloc_percpu()` (type invariant)
        // and is freed once, here; `free_percpu()` may be called from any
        // context.
        unsafe { bindings::nsfilter_free_percpu(ptr) };
    }
}

impl<T> crate::counters::PerCpu<T> for PerCpu<T> {
    fn local(&self) -> &T {
        PerCpu::local(self)
    }

    fn each(&self, f: &mut dyn FnMut(&T)) {
        self.iter().for_each(f)
    }
}
