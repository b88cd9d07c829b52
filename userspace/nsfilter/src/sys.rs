//! The one Linux call std does not offer that the command needs: `setns()`,
//! to read a namespace's `/proc/net/nsfilter` from inside it. This module
//! holds all of the command's `unsafe` code.

use std::ffi::c_int;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

extern "C" {
    fn setns(fd: c_int, nstype: c_int) -> c_int;
}

/// `CLONE_NEWNET`, the same on every architecture (uapi/linux/sched.h).
const CLONE_NEWNET: c_int = 0x4000_0000;

/// Moves the calling thread into the network namespace of `ns` (a file such
/// as `/run/netns/NAME` or `/proc/PID/ns/net`).
pub fn enter_netns(ns: &File) -> io::Result<()> {
    // SAFETY: `setns` only reads its arguments; the descriptor is open for
    // the duration of the call.
    let ret = unsafe { setns(ns.as_raw_fd(), CLONE_NEWNET) };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
