// SPDX-License-Identifier: GPL-2.0

//! nsfilter's hook in every network namespace, through pernet operations.
//!
//! # Why pernet operations
//!
//! Every namespace is on the kernel's `net_namespace_list`, but walking that
//! list by hand is racy: a namespace can be created after the walk, or die
//! during it, and the list's lock is not exported. `register_pernet_subsys()`
//! walks it under `pernet_ops_rwsem`, calls `init` for every namespace that
//! exists and every one created later, and tears down in an order that makes
//! the hook's lifetime provable: `pre_exit` (the hook is unregistered), then
//! an RCU grace period (no hook call can still be running), then `exit` (the
//! namespace's state is dropped). The same order runs for every namespace on
//! `unregister_pernet_subsys()`, that is on rmmod. The per-namespace `/proc`
//! file is created in `init` and removed in `pre_exit`, while the state it
//! shows is alive.

use super::net::{Net, Packet};
use crate::bindings;
use crate::textbuf::SliceWriter;
use core::{
    cell::UnsafeCell,
    ffi::{c_int, c_uint, c_void, CStr},
    fmt::{self, Write},
    marker::PhantomData,
    mem::{size_of, MaybeUninit},
    ptr::{self, addr_of_mut},
    sync::atomic::{AtomicBool, Ordering},
};
use kernel::{error::to_result, prelude::*, types::Opaque};

/// A packet hook with state of its own in each network namespace.
pub(crate) trait NetHook: 'static {
    /// What the hook keeps for one namespace, shared by the CPUs that run it.
    type NetState: Send + Sync;

    /// Creates the state of a namespace, before the hook runs in it.
    ///
    /// Called once for each namespace that exists at registration and for each
    /// one created later, in process context.
    fn init_net(net: &Net) -> Result<Self::NetState>;

    /// Looks at one packet entering the namespace whose state is `state`,
    /// inside the RCU read-side critical section that `rcu` stands for.
    ///
    /// Runs for every packet inside `nf_hook()`'s RCU read-side critical
    /// section: it must not sleep. That is softirq context on most kernels;
    /// on `PREEMPT_RT` softirqs run in per-CPU threads that can be preempted
    /// (RCU there is preemptible, and the grace periods this module waits
    /// for still wait for a preempted reader), and after a queueing hook
    /// `nf_reinject()` runs it in process context with bottom halves
    /// enabled. So it may be interrupted by itself on the same CPU and, on
    /// RT, migrate between two instructions: nothing in it may rely on
    /// staying on one CPU or on running alone on it (see `percpu.rs` and
    /// `counters.rs`). The packet is always accepted; nsfilter observes and
    /// never changes a verdict.
    fn packet(state: &Self::NetState, packet: &Packet<'_>, rcu: &RcuReader);

    /// Writes the text of `/proc/net/nsfilter` for the namespace `net`.
    fn show(state: &Self::NetState, net: &Net, out: &mut dyn Write) -> fmt::Result;

    /// Called once the hook is registered in every namespace, at load.
    fn loaded() {}

    /// Called at unload once no hook call is left running and every
    /// namespace's state is dropped: the last thing the module does.
    fn unloaded() {}
}

/// Proof that the holder runs inside an RCU read-side critical section: one
/// is made by the hook adapter for each hook call, and lent to the hook.
///
/// # Invariants
///
/// Made only inside an RCU read-side critical section (a hook call), and
/// never outlives it: it is neither `Clone` nor made anywhere else, and the
/// hook gets only a reference for the length of the call.
pub(crate) struct RcuReader {
    _private: (),
}

// SAFETY: By the type invariant, every `RcuReader` is made inside an RCU
// read-side critical section, the hook call's, and does not outlive it.
unsafe impl crate::rcu::ReadSide for RcuReader {}

/// The name of the per-namespace file in `/proc/net`.
const PROC_NAME: &CStr = c"nsfilter";

/// What the kernel stores for nsfilter in each namespace (`net_generic()`).
///
/// `ops.priv` points at `state`, so the hook finds its state without a lookup.
#[repr(C)]
struct PerNet<T: NetHook> {
    ops: Opaque<bindings::nf_hook_ops>,
    state: T::NetState,
}

/// A `static` the C side writes through; accessed only as the comments at
/// each use explain.
struct StaticCell<T>(UnsafeCell<MaybeUninit<T>>);

// SAFETY: Sharing a `StaticCell` shares its `T` between CPUs, hence
// `T: Send`. Each `StaticCell` below is written only by
// `Registration::register` before the kernel is given its address (guarded by
// `REGISTERED`), and after that only by the kernel under `pernet_ops_rwsem`;
// nsfilter reads `NET_ID` only in pernet callbacks, after the kernel wrote it.
unsafe impl<T: Send> Sync for StaticCell<T> {}

impl<T> StaticCell<T> {
    const fn new() -> Self {
        Self(UnsafeCell::new(MaybeUninit::zeroed()))
    }

    const fn get(&self) -> *mut T {
        // CAST: `MaybeUninit<T>` has the layout of `T`.
        self.0.get().cast::<T>()
    }
}

/// `struct pernet_operations`, owned by the kernel while registered.
#[repr(transparent)]
struct PernetOps(bindings::pernet_operations);

// SAFETY: The pointers inside are to static functions and to `NET_ID`, valid
// on every CPU, and to the kernel's list of pernet operations, which the
// kernel reads and writes only under `pernet_ops_rwsem`, from any CPU.
unsafe impl Send for PernetOps {}

/// The pernet operations; the kernel links them into its list while registered.
static PERNET_OPS: StaticCell<PernetOps> = StaticCell::new();
/// The `net_generic()` id the kernel assigns to nsfilter's per-namespace data.
static NET_ID: StaticCell<c_uint> = StaticCell::new();
/// Whether a [`Registration`] exists; the statics above serve only one.
static REGISTERED: AtomicBool = AtomicBool::new(false);

/// The address of the pernet operations, as the kernel takes it.
fn pernet_ops() -> *mut bindings::pernet_operations {
    // CAST: `PernetOps` is `repr(transparent)` over `pernet_operations`.
    PERNET_OPS.get().cast()
}

/// nsfilter's hook, registered in every network namespace while this lives:
/// the module itself (`module!`'s type is a `Registration`).
///
/// # Why it cannot be leaked
///
/// A `Registration` that was never dropped would leave the kernel calling
/// hooks in freed module memory after `rmmod`, and `mem::forget` is safe
/// Rust. So no code outside this file can make one: the only constructor is
/// private, and the only caller is [`kernel::Module::init`] below, which
/// hands the value straight to `module!`. The macro keeps it in the
/// module's own storage and drops it in the module's exit function, before
/// the module's memory is freed; a second one is refused (`EBUSY`).
///
/// # Invariants
///
/// `PERNET_OPS` is registered with the kernel for `T` and `REGISTERED` is set.
pub(crate) struct Registration<T: NetHook> {
    _hook: PhantomData<T>,
}

impl<T: NetHook + Send + Sync> kernel::Module for Registration<T> {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let this = Self::register()?;
        T::loaded();
        Ok(this)
    }
}

impl<T: NetHook> Registration<T> {
    /// Registers `T` in every current and future network namespace.
    ///
    /// Fails with `EBUSY` if a registration already exists, or with the error
    /// of the first namespace whose set-up failed (then none is left hooked).
    fn register() -> Result<Self> {
        const {
            // `net_generic()` storage comes from `kzalloc()`, aligned to 8.
            assert!(core::mem::align_of::<PerNet<T>>() <= 8);
        }
        super::layout::check()?;
        if REGISTERED.swap(true, Ordering::AcqRel) {
            return Err(EBUSY);
        }
        let ops = bindings::pernet_operations {
            init: Some(Adapter::<T>::init_net),
            pre_exit: Some(Adapter::<T>::pre_exit_net),
            exit: Some(Adapter::<T>::exit_net),
            id: NET_ID.get(),
            size: size_of::<PerNet<T>>(),
            // SAFETY: All-zero is a valid `pernet_operations` (null pointers,
            // `None` callbacks, an empty list head the kernel initialises).
            ..unsafe { MaybeUninit::zeroed().assume_init() }
        };
        // SAFETY: `REGISTERED` was false, so the kernel does not hold
        // `PERNET_OPS` and nothing else reads or writes it.
        unsafe { PERNET_OPS.get().write(PernetOps(ops)) };
        // SAFETY: `PERNET_OPS` is initialised and static; the kernel owns it
        // until `unregister_pernet_subsys()` in `drop`.
        let ret = to_result(unsafe { bindings::register_pernet_subsys(pernet_ops()) });
        if let Err(e) = ret {
            REGISTERED.store(false, Ordering::Release);
            return Err(e);
        }
        // INVARIANT: Registered just above, and `REGISTERED` is set.
        Ok(Self { _hook: PhantomData })
    }
}

impl<T: NetHook> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: Registered by the type invariant. This runs `pre_exit`
        // (unhook), an RCU grace period, then `exit` (drop the state) for every
        // namespace, so no hook call is running when it returns.
        unsafe { bindings::unregister_pernet_subsys(pernet_ops()) };
        REGISTERED.store(false, Ordering::Release);
        T::unloaded();
    }
}

/// The C callbacks, turning raw pointers into safe references for `T`.
struct Adapter<T: NetHook>(PhantomData<T>);

impl<T: NetHook> Adapter<T> {
    /// The `PerNet<T>` slot of namespace `net`.
    ///
    /// # Safety
    ///
    /// `net` must be a live namespace and `PERNET_OPS` registered (the kernel
    /// has assigned `NET_ID`), as in any pernet callback.
    unsafe fn slot(net: *mut bindings::net) -> *mut PerNet<T> {
        // SAFETY: `NET_ID` was written by the kernel before it called any
        // callback, and `net` is live (the caller guarantees both).
        unsafe { bindings::nsfilter_net_generic(net, *NET_ID.get()) }.cast::<PerNet<T>>()
    }

    /// `pernet_operations.init`: creates the state and hooks the namespace.
    ///
    /// # Safety
    ///
    /// Called by the kernel only, for a live `net`, with the slot zeroed.
    unsafe extern "C" fn init_net(net: *mut bindings::net) -> c_int {
        // SAFETY: `net` is live for this call (the kernel's guarantee).
        let state = match T::init_net(unsafe { Net::from_raw(net) }) {
            Ok(state) => state,
            Err(e) => return e.to_errno(),
        };
        // SAFETY: As required by `slot`; the slot is ours alone until the hook
        // is registered below.
        let slot = unsafe { Self::slot(net) };
        // SAFETY: `slot` is valid, aligned (checked in `register`) storage of
        // `PerNet<T>` size, not yet initialised.
        unsafe { addr_of_mut!((*slot).state).write(state) };
        let ops = bindings::nf_hook_ops {
            hook: Some(Self::hook),
            // SAFETY: Computing an address inside `slot`, initialised above.
            priv_: unsafe { addr_of_mut!((*slot).state) }.cast::<c_void>(),
            pf: bindings::NFPROTO_INET as u8,
            hooknum: bindings::NF_INET_PRE_ROUTING,
            priority: bindings::NF_IP_PRI_FIRST,
            // SAFETY: All-zero is valid for the remaining fields (no device,
            // an ordinary hook type, an unused RCU head).
            ..unsafe { MaybeUninit::zeroed().assume_init() }
        };
        // SAFETY: As above, for the `ops` field.
        unsafe { (*slot).ops.get().write(ops) };
        // SAFETY: `net` is live and `ops` lives in the namespace's storage
        // until `exit`, after `pre_exit` has unregistered it.
        let mut ret = unsafe { bindings::nf_register_net_hook(net, (*slot).ops.get()) };
        if ret == 0 {
            // SAFETY: `net` is live; `proc_net` is its `/proc/net` folder.
            // `show` finds the state through `net`; the file is removed in
            // `pre_exit`, before the state is dropped.
            let entry = unsafe {
                bindings::proc_create_net_single(
                    PROC_NAME.as_ptr(),
                    0o444,
                    (*net).proc_net,
                    Some(Self::show),
                    ptr::null_mut(),
                )
            };
            if entry.is_null() {
                // SAFETY: Registered just above.
                unsafe { bindings::nf_unregister_net_hook(net, (*slot).ops.get()) };
                ret = ENOMEM.to_errno();
            }
        }
        if ret != 0 {
            // The hook may have been visible even when registration failed:
            // for `NFPROTO_INET`, `nf_register_net_hook()` registers IPv4,
            // then IPv6, and when the IPv6 half fails it unregisters IPv4
            // again without waiting for RCU (net/netfilter/core.c). A CPU may
            // still be inside the hook, reading the state, and the kernel
            // frees the slot as soon as this returns (`ops_init()`). Wait for
            // every such call to end first.
            // SAFETY: Process context: pernet `init` may sleep.
            unsafe { bindings::synchronize_net() };
            // SAFETY: The hook is unregistered and no call of it is running
            // (the grace period above), so nothing else can see the state;
            // the kernel frees the slot without calling `exit`.
            unsafe { ptr::drop_in_place(addr_of_mut!((*slot).state)) };
        }
        ret
    }

    /// `pernet_operations.pre_exit`: unhooks the namespace.
    ///
    /// # Safety
    ///
    /// Called by the kernel only, after a successful `init_net` for `net`.
    unsafe extern "C" fn pre_exit_net(net: *mut bindings::net) {
        // SAFETY: `init_net` registered these ops in `net`, and they have not
        // been unregistered since.
        unsafe { bindings::nf_unregister_net_hook(net, (*Self::slot(net)).ops.get()) };
        // SAFETY: `init_net` created this entry in `net`'s `/proc/net`; removal
        // waits for readers that are inside `show`.
        unsafe { bindings::remove_proc_entry(PROC_NAME.as_ptr(), (*net).proc_net) };
    }

    /// The `show` callback of `/proc/net/nsfilter`.
    ///
    /// # Safety
    ///
    /// Called by the seq_file code only, for a file made by `init_net`.
    unsafe extern "C" fn show(seq: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
        // SAFETY: For a `proc_create_net_single()` file the seq_file holds
        // the namespace, alive while the file is open.
        let net = unsafe { bindings::nsfilter_seq_file_net(seq) };
        // SAFETY: The file exists only between `init_net` and `pre_exit_net`,
        // while the state in the slot is alive.
        let state = unsafe { &(*Self::slot(net)).state };
        let mut buf = [0u8; 1024];
        let mut out = SliceWriter::new(&mut buf);
        // SAFETY: `net` is live, as above.
        if T::show(state, unsafe { Net::from_raw(net) }, &mut out).is_err() {
            return ENOSPC.to_errno();
        }
        let text = out.written();
        // SAFETY: `seq` is valid and `text` is readable for its length.
        unsafe { bindings::seq_write(seq, text.as_ptr().cast::<c_void>(), text.len()) };
        // `seq_write()` returns -1 when the seq_file's buffer is full; the
        // seq_file then grows its buffer and calls `show` again by itself
        // (`seq_read_iter()` checks `seq_has_overflowed()`). That is not an
        // error of `show`, whose negative return would fail the read(2).
        0
    }

    /// `pernet_operations.exit`: drops the namespace's state.
    ///
    /// # Safety
    ///
    /// Called by the kernel only, after `pre_exit_net` and an RCU grace period.
    unsafe extern "C" fn exit_net(net: *mut bindings::net) {
        // SAFETY: The hook was unregistered in `pre_exit_net` and a grace
        // period has passed, so no hook call still reads the state.
        unsafe { ptr::drop_in_place(addr_of_mut!((*Self::slot(net)).state)) };
    }

    /// The netfilter hook function.
    ///
    /// # Safety
    ///
    /// Called by netfilter only, with the `priv` of ops registered by
    /// `init_net`, a valid `skb` and a valid `state`.
    unsafe extern "C" fn hook(
        priv_: *mut c_void,
        skb: *mut bindings::sk_buff,
        state: *const bindings::nf_hook_state,
    ) -> c_uint {
        // SAFETY: `priv_` points at the namespace's state, alive until `exit`,
        // which waits for every running hook call.
        let net_state = unsafe { &*priv_.cast::<T::NetState>() };
        // SAFETY: Netfilter passes a valid `skb` and `state` for the call,
        // with `skb->data` at the network header at `NF_INET_PRE_ROUTING`.
        let packet = unsafe { Packet::from_raw(skb, state) };
        // INVARIANT: A hook call runs inside `nf_hook()`'s
        // `rcu_read_lock()` (net/netfilter/core.c; `nf_reinject()` takes it
        // too), and the reader is dropped when the call returns.
        let rcu = RcuReader { _private: () };
        T::packet(net_state, &packet, &rcu);
        bindings::NF_ACCEPT
    }
}
