//! The few Linux calls std does not offer, used by the agent in the guest:
//! `setns()` and `unshare()` for network namespaces, `AF_PACKET` and tap
//! devices to inject frames, and `finit_module()` to load a module from this
//! very thread.
//! This module holds all of the crate's `unsafe` code.

use std::ffi::{c_int, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

// CAST: the protocol numbers are 16-bit on the wire and in `sockaddr_ll`.
const ETH_P_ALL: u16 = libc::ETH_P_ALL as u16;

/// `struct ifreq` as `TUNSETIFF` reads it: the name, then the flags (the
/// rest of the 40-byte union unused).
#[repr(C)]
struct IfReqFlags {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    pad: [u8; 22],
}
const _: () = assert!(std::mem::size_of::<IfReqFlags>() == std::mem::size_of::<libc::ifreq>());

/// Moves the calling thread into the network namespace of `ns` (a file such
/// as `/run/netns/NAME` or `/proc/PID/ns/net`).
pub fn enter_netns(ns: &File) -> io::Result<()> {
    // SAFETY: `setns` only reads its arguments; the descriptor is open for
    // the duration of the call.
    let ret = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Moves the calling thread into a new, empty network namespace. The kernel
/// destroys it once nothing uses it, e.g. when the thread exits.
pub fn new_netns() -> io::Result<()> {
    // SAFETY: `unshare` only reads its argument.
    let ret = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Keeps the calling thread, and the threads it starts from now on, on the
/// CPUs in `cpus` (as `taskset` does).
pub fn set_cpus(cpus: &[usize]) -> io::Result<()> {
    // SAFETY: `cpu_set_t` is a plain bit array: all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        // SAFETY: `cpu` is within the set (checked above).
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: `sched_setaffinity` reads `size_of::<cpu_set_t>()` bytes of
    // `set`, which lives through the call; pid 0 is the calling thread.
    let ret = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Runs the calling thread under `SCHED_FIFO` at `priority` (1 to 99), so
/// that it preempts every ordinary (`SCHED_OTHER`) thread.
pub fn set_realtime(priority: c_int) -> io::Result<()> {
    // SAFETY: `sched_param` is a plain C struct of integers (musl's has
    // fields beyond glibc's): all zeroes is a valid value.
    let mut param: libc::sched_param = unsafe { std::mem::zeroed() };
    param.sched_priority = priority;
    // SAFETY: `pthread_self()` names the calling thread, alive during the
    // call; `pthread_setschedparam` only reads `param`, which outlives it.
    let err =
        unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) };
    if err == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(err))
    }
}

/// Makes the process that `cmd` starts die when the thread that starts it
/// ends, however it ends (a signal included): QEMU must not outlive the lab.
pub fn die_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // SAFETY: The closure runs in the child between fork and exec, and
    // calls only `prctl` and `getppid`, which are async-signal-safe, and
    // reads a copy of `parent`.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before the request: then the
            // child's parent is already another process.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                return Err(io::Error::from(io::ErrorKind::BrokenPipe));
            }
            Ok(())
        })
    };
}

/// Loads the kernel module in `file` with `params` (as `insmod` does), from
/// the calling thread: a fault injected into this thread (`fail-nth`)
/// lands in the module's loading.
pub fn finit_module(file: &File, params: &str) -> io::Result<()> {
    let params = CString::new(params).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: `finit_module(fd, params, flags)` reads the open descriptor and
    // the NUL-terminated string, both valid for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_finit_module,
            file.as_raw_fd(),
            params.as_ptr(),
            0 as c_int,
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A raw `AF_PACKET` socket that sends whole Ethernet frames out of one device.
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: c_int,
}

impl PacketSocket {
    /// Opens a packet socket for device `dev` of the calling thread's namespace.
    pub fn open(dev: &str) -> io::Result<Self> {
        let name = CString::new(dev).map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: `name` is a valid NUL-terminated string.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if ifindex == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: Plain system call with constant arguments.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW,
                c_int::from(ETH_P_ALL.to_be()),
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let ifindex = c_int::try_from(ifindex).map_err(|_| io::ErrorKind::InvalidData)?;
        Ok(Self { fd, ifindex })
    }

    /// Sends one frame (destination MAC first) as it is.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        let mut addr = libc::sockaddr_ll {
            // CAST: AF_PACKET fits the 16-bit family field.
            sll_family: libc::AF_PACKET as u16,
            sll_protocol: ETH_P_ALL.to_be(),
            sll_ifindex: self.ifindex,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 6,
            sll_addr: [0; 8],
        };
        addr.sll_addr[..6].copy_from_slice(frame.get(..6).ok_or(io::ErrorKind::InvalidInput)?);
        // SAFETY: `frame` and `addr` are valid for the lengths given.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&raw const addr).cast(),
                // CAST: The struct is 20 bytes.
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

/// A tap device of the calling thread's namespace, gone when this is
/// dropped. A frame written to it is received by the kernel in the writer's
/// own context: tun's write hands it to `netif_receive_skb()`
/// (`tun_rx_batched()` in `drivers/net/tun.c`), not to a CPU's backlog queue
/// as loopback and veth do, so no flood of other traffic can drop it before
/// the netfilter hooks, and they have run when the write returns.
pub struct Tap {
    file: File,
}

impl Tap {
    /// Creates tap device `name` (up to 15 bytes) in the calling thread's
    /// network namespace; it still has to be set up (`ip link set NAME up`).
    pub fn create(name: &str) -> io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")?;
        let mut req = IfReqFlags {
            name: [0; 16],
            // CAST: the flags are 16-bit in `struct ifreq`.
            flags: (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short,
            pad: [0; 22],
        };
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() >= req.name.len() || bytes.contains(&0) {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        req.name[..bytes.len()].copy_from_slice(bytes);
        // SAFETY: `TUNSETIFF` reads a `struct ifreq` (40 bytes, which
        // `IfReqFlags` is) through the pointer and writes the name back into
        // it; `req` is valid and exclusively borrowed for the call.
        let ret = unsafe {
            libc::ioctl(
                file.as_raw_fd(),
                libc::TUNSETIFF,
                &mut req as *mut IfReqFlags,
            )
        };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { file })
    }

    /// Receives one Ethernet frame (destination MAC first) on the device.
    pub fn receive(&self, frame: &[u8]) -> io::Result<()> {
        use std::io::Write;
        let written = (&self.file).write(frame)?;
        if written == frame.len() {
            Ok(())
        } else {
            Err(io::ErrorKind::WriteZero.into())
        }
    }
}
