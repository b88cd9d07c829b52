// SPDX-License-Identifier: GPL-2.0

//! A network namespace and a packet as the hook sees them: read-only views
//! of kernel objects that are valid while a callback runs.

use crate::bindings;
use crate::packet::{Bytes, Family, Frame, Link};
use core::{
    ffi::{c_int, c_uint, c_void},
    marker::PhantomData,
    ptr::{self, addr_of},
};
use kernel::types::Opaque;

/// A network namespace.
///
/// # Invariants
///
/// The pointer inside is a valid `struct net` for the lifetime of the reference.
#[repr(transparent)]
pub(crate) struct Net(Opaque<bindings::net>);

impl Net {
    /// Creates a reference to a [`Net`] from a raw pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a live `struct net` for the whole lifetime `'a`.
    pub(super) unsafe fn from_raw<'a>(ptr: *const bindings::net) -> &'a Self {
        // CAST: `Net` is `repr(transparent)` over `bindings::net`.
        // SAFETY: The caller guarantees the pointer is valid for `'a`.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The namespace's inode number, as in `/proc/<pid>/ns/net` and `ip netns`.
    pub(crate) fn inode(&self) -> u32 {
        // `ns` is opaque to the bindings (see `layout.rs`): the field is at
        // the offset the kernel's compiler gave it.
        let at = super::layout::c_offset(bindings::NSFILTER_LAYOUT_NET_INUM);
        // SAFETY: The pointer is valid by the type invariant, and `at` is the
        // offset of `ns.inum`, an `unsigned int`, inside `struct net` as the
        // kernel was compiled, so the read is in bounds and aligned. `inum`
        // is set when the namespace is allocated and never changes
        // afterwards.
        unsafe { self.0.get().cast::<u8>().add(at).cast::<u32>().read() }
    }

    /// Whether this is the initial namespace, the host's own.
    pub(crate) fn is_initial(&self) -> bool {
        // SAFETY: The pointer is valid by the type invariant;
        // `nsfilter_net_is_init()` only compares it with `&init_net`.
        unsafe { bindings::nsfilter_net_is_init(self.0.get()) }
    }

    /// Whether the user namespace that owns this namespace is the initial
    /// one (it is not for a namespace an unprivileged user made through a
    /// user namespace, `unshare -rn`).
    pub(crate) fn in_initial_userns(&self) -> bool {
        // SAFETY: The pointer is valid by the type invariant; `net->user_ns`
        // is set by `copy_net_ns()` before the namespace is published, holds
        // a reference until `cleanup_net()`, and is never written in between,
        // so a plain read cannot race with a write.
        unsafe { bindings::nsfilter_net_in_init_userns(self.0.get()) }
    }
}

/// One packet at a netfilter hook, read-only.
///
/// # Invariants
///
/// `skb` and `state` are valid for `'a`, and `skb->data` points at the network
/// header (true at `NF_INET_PRE_ROUTING`).
pub(crate) struct Packet<'a> {
    skb: *const bindings::sk_buff,
    state: *const bindings::nf_hook_state,
    _lifetime: PhantomData<&'a ()>,
}

impl Packet<'_> {
    /// A view of the packet `skb` seen at a hook with `state`.
    ///
    /// # Safety
    ///
    /// `skb` and `state` must be valid for the lifetime of the view, and
    /// `skb->data` must point at the network header (as at
    /// `NF_INET_PRE_ROUTING`).
    pub(super) unsafe fn from_raw(
        skb: *const bindings::sk_buff,
        state: *const bindings::nf_hook_state,
    ) -> Self {
        // INVARIANT: The caller's guarantee.
        Self {
            skb,
            state,
            _lifetime: PhantomData,
        }
    }
}

impl<'a> Packet<'a> {
    /// The family of the hook that saw the packet, if IPv4 or IPv6.
    pub(crate) fn family(&self) -> Option<Family> {
        // SAFETY: `state` is valid by the type invariant.
        let pf = c_uint::from(unsafe { (*self.state).pf });
        match pf {
            bindings::NFPROTO_IPV4 => Some(Family::Ipv4),
            bindings::NFPROTO_IPV6 => Some(Family::Ipv6),
            _ => None,
        }
    }

    /// The namespace the packet is entering.
    pub(crate) fn net(&self) -> &'a Net {
        // SAFETY: `state` is valid by the type invariant, and `state->net` is
        // the namespace the packet is in, alive while the hook runs.
        unsafe { Net::from_raw((*self.state).net) }
    }

    /// The name of the device the packet came in on (empty if none), copied
    /// out of the device.
    ///
    /// A rename (`dev_change_name()`) or a move to another namespace rewrites
    /// `dev->name` in place, under RTNL, while packets keep arriving through
    /// the device; the packet path takes no lock against that. So the name is
    /// copied byte by byte with `READ_ONCE` semantics, as the kernel's own
    /// lockless readers do (`nf_log_syslog` prints it with `%s`), and the
    /// copy stops at the first NUL: a name torn by a concurrent rename is a
    /// mix of the old and the new one, but never holds a NUL.
    pub(crate) fn in_dev_name(&self) -> IfName {
        let mut name = IfName {
            bytes: [0; IFNAMSIZ],
            len: 0,
        };
        // SAFETY: `state` is valid by the type invariant.
        let dev = unsafe { (*self.state).in_ };
        if dev.is_null() {
            return name;
        }
        // SAFETY: A non-null input device stays allocated while the hook runs:
        // netfilter runs hooks inside `rcu_read_lock()` and a device is freed
        // only after a grace period (`netdev_run_todo()`). `name` is an array
        // of `IFNAMSIZ` bytes inside it; only its address is taken here.
        let src = unsafe { addr_of!((*dev).name) }.cast::<u8>();
        for (i, out) in name.bytes.iter_mut().enumerate() {
            // SAFETY: `i < IFNAMSIZ`, within the array. A volatile byte load
            // is the kernel's `READ_ONCE()`: one access that the compiler may
            // not tear, repeat or elide, racing with the plain stores of a
            // rename as the kernel's memory model allows for marked reads.
            let b = unsafe { ptr::read_volatile(src.add(i)) };
            if b == 0 {
                break;
            }
            *out = b;
            name.len = i + 1;
        }
        name
    }
}

/// The length of a device name buffer, with its NUL (`IFNAMSIZ`).
// CAST: `IFNAMSIZ` is 16.
const IFNAMSIZ: usize = bindings::IFNAMSIZ as usize;

/// A device name copied out of its `struct net_device`: no NUL inside.
pub(crate) struct IfName {
    bytes: [u8; IFNAMSIZ],
    len: usize,
}

impl IfName {
    /// The name's bytes (empty for a packet with no input device).
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Bytes for Packet<'_> {
    fn len(&self) -> usize {
        // SAFETY: `skb` is valid by the type invariant.
        unsafe { (*self.skb).len as usize }
    }

    fn get<'b>(&'b self, offset: usize, buf: &'b mut [u8]) -> Option<&'b [u8]> {
        let count = buf.len();
        let end = offset.checked_add(count)?;
        // SAFETY: `skb` is valid by the type invariant; nothing changes these
        // fields while a hook runs.
        let (len, data_len, data) =
            unsafe { ((*self.skb).len, (*self.skb).data_len, (*self.skb).data) };
        if end > len as usize {
            return None;
        }
        let head_len = (len - data_len) as usize;
        if end <= head_len {
            // SAFETY: `[data, data + head_len)` is the linear part of the
            // packet, readable while the hook runs, and `offset + count` is
            // within it (checked above).
            return Some(unsafe { core::slice::from_raw_parts(data.add(offset), count) });
        }
        // The bytes reach into paged data: copy them, as `skb_header_pointer()`
        // does. `end <= len <= i32::MAX`, so the casts below are lossless.
        // SAFETY: `skb` is valid, `offset + count <= skb->len` (checked above)
        // and `buf` has room for `count` bytes.
        let ret = unsafe {
            bindings::skb_copy_bits(
                self.skb,
                offset as c_int,
                buf.as_mut_ptr().cast::<c_void>(),
                count as c_int,
            )
        };
        (ret == 0).then_some(&*buf)
    }

    fn gso_tcp(&self) -> bool {
        // SAFETY: `skb` is valid by the type invariant. The helper is
        // `skb_is_gso() && skb_is_gso_tcp()`, which read `skb_shinfo(skb)`,
        // the shared info at `skb->end` that every skb has.
        unsafe { bindings::nsfilter_skb_gso_tcp(self.skb) }
    }
}

impl Packet<'_> {
    /// Where the MAC header lies in the buffer, if the packet has one set.
    fn mac(&self) -> Option<bindings::nsfilter_mac> {
        let mut mac = bindings::nsfilter_mac {
            head: ptr::null(),
            mac: 0,
            mac_len: 0,
            tail: 0,
        };
        // SAFETY: `skb` is valid by the type invariant and `mac` is a local
        // the helper may write. The helper reads `skb->mac_header`,
        // `network_header`, `head` and `tail`, which nothing changes while a
        // hook runs on the packet.
        unsafe { bindings::nsfilter_skb_mac(self.skb, &mut mac) }.then_some(mac)
    }
}

impl Frame for Packet<'_> {
    fn mark(&self) -> u32 {
        // SAFETY: `skb` is valid by the type invariant; the helper returns
        // `skb->mark`.
        unsafe { bindings::nsfilter_skb_mark(self.skb) }
    }

    fn link(&self) -> Option<Link> {
        // SAFETY: `state` is valid by the type invariant.
        let dev = unsafe { (*self.state).in_ };
        if dev.is_null() {
            return None;
        }
        // SAFETY: A non-null input device stays allocated while the hook
        // runs (see `in_dev_name()`); only the two fields' addresses are
        // taken here. At PRE_ROUTING the input device is `skb->dev`, the
        // device that `dump_mac_header()` reads: `ip_rcv()` and `ipv6_rcv()`
        // pass `skb->dev` as the hook's input device.
        let (type_ptr, hhl_ptr) =
            unsafe { (addr_of!((*dev).type_), addr_of!((*dev).hard_header_len)) };
        // SAFETY: Both point into the live device (above), aligned as their
        // C types. They are not constant while the device passes packets:
        // `ipgre_link_update()` (net/ipv4/ip_gre.c) rewrites
        // `hard_header_len` of a live GRE device under RTNL, and
        // `dev_set_type()`-style changes (bonding, `ipgre_changelink()`)
        // rewrite `type` with packets in flight. Nothing nsfilter may take
        // orders those writes with the hook, as for the kernel's own
        // lockless reader (`dump_mac_header()` reads them plainly), so each
        // is read once with `READ_ONCE` semantics: a volatile load of an
        // aligned `u16`, one access that cannot be torn, repeated or elided.
        // The two values may come from before and after a change; the line
        // then shows the bytes of the old or of the new layout, and no value
        // can make a read leave the packet: `mac_byte()` checks every offset
        // against the packet's own buffer, not against these fields.
        let (dev_type, hard_header_len) =
            unsafe { (ptr::read_volatile(type_ptr), ptr::read_volatile(hhl_ptr)) };
        let mac = self.mac();
        Some(Link {
            dev_type,
            hard_header_len,
            mac_len: mac.as_ref().map(|m| m.mac_len),
            headroom: mac.map_or(0, |m| m.mac as usize),
        })
    }

    fn mac_bytes(&self, offset: isize, out: &mut [u8]) -> usize {
        let Some(mac) = self.mac() else {
            return 0;
        };
        let Some(at) = (mac.mac as usize).checked_add_signed(offset) else {
            return 0;
        };
        let n = (mac.tail as usize).saturating_sub(at).min(out.len());
        if n == 0 {
            return 0;
        }
        // SAFETY: `[head, head + tail)` is the packet's buffer from its start
        // to the end of its linear data (`skb_tail_pointer()`): allocated,
        // and not written by anyone while a hook runs on the packet.
        // `[at, at + n)` is within it (`at + n <= tail`, above), and `out`
        // is a distinct local buffer of at least `n` bytes. The kernel's
        // `dump_mac_header()` reads these same bytes.
        unsafe { ptr::copy_nonoverlapping(mac.head.add(at), out.as_mut_ptr(), n) };
        n
    }
}
