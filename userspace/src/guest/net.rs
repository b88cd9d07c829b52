//! Network helpers for the guest: shell commands, namespaces, veth pairs,
//! UDP and TCP exchanges between namespaces, and background traffic.

use super::GuestResult;
use crate::initramfs::guest_path;
use crate::sys;
use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

/// How long to wait for log lines that the traffic should have produced.
pub(super) const LOG_WAIT: Duration = Duration::from_secs(5);

/// Runs `sh -c CMD` (with iproute2's `ip`); fails with its output if it fails.
pub(super) fn sh(cmd: &str) -> GuestResult<String> {
    let script = format!(". {} ; {cmd}", guest_path::PROFILE);
    let out = Command::new("/bin/sh")
        .args(["-c", &script])
        .output()
        .map_err(|e| format!("failed to start /bin/sh: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("'{cmd}' failed ({}): {}", out.status, text.trim()))
    }
}

/// The inode number of a namespace file (`/run/netns/NAME`, `/proc/1/ns/net`).
pub(super) fn ns_inode(path: &str) -> GuestResult<u64> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path)
        .map(|m| m.ino())
        .map_err(|e| format!("failed to stat {path}: {e}"))
}

/// The file of a named namespace, or of the initial one for `None`.
fn ns_file(ns: Option<&str>) -> String {
    ns.map_or_else(
        || "/proc/1/ns/net".to_string(),
        |n| format!("/run/netns/{n}"),
    )
}

/// Runs `f` on a thread inside namespace `ns` (the initial one for `None`).
/// Sockets it creates stay in that namespace wherever they are used later.
pub(super) fn in_netns<T: Send + 'static>(
    ns: Option<&str>,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> GuestResult<T> {
    let path = ns_file(ns);
    let file = File::open(&path).map_err(|e| format!("failed to open {path}: {e}"))?;
    std::thread::spawn(move || {
        sys::enter_netns(&file)?;
        f()
    })
    .join()
    .map_err(|_| "a namespace thread panicked".to_string())?
    .map_err(|e| format!("in namespace {path}: {e}"))
}

/// Creates namespaces `a` and `b` joined by veth `dev_a`–`dev_b`, with host
/// routes between `ip_a` and `ip_b` (the seed 001 lab).
pub(super) fn veth_pair(
    a: &str,
    dev_a: &str,
    ip_a: &str,
    b: &str,
    dev_b: &str,
    ip_b: &str,
) -> GuestResult {
    sh(&format!(
        "ip netns add {a} && ip netns add {b} && \
         ip link add name {dev_a} type veth peer name {dev_b} && \
         ip link set {dev_a} netns {a} && ip link set {dev_b} netns {b} && \
         ip netns exec {a} ip link set lo up && ip netns exec {b} ip link set lo up && \
         ip netns exec {a} ip link set {dev_a} up && ip netns exec {b} ip link set {dev_b} up && \
         ip netns exec {a} ip addr add {ip_a} dev {dev_a} && \
         ip netns exec {b} ip addr add {ip_b} dev {dev_b} && \
         ip netns exec {a} ip route add {ip_b} dev {dev_a} && \
         ip netns exec {b} ip route add {ip_a} dev {dev_b}"
    ))
    .map(drop)
}

/// Sends one UDP datagram from `from` in namespace `ns_from` to `to` in
/// `ns_to`, and checks it arrived.
pub(super) fn udp_exchange(
    ns_from: &str,
    from: SocketAddr,
    ns_to: &str,
    to: SocketAddr,
) -> GuestResult {
    let rx = in_netns(Some(ns_to), move || UdpSocket::bind(to))?;
    let tx = in_netns(Some(ns_from), move || UdpSocket::bind(from))?;
    tx.send_to(b"nsfilter", to)
        .map_err(|e| format!("UDP send failed: {e}"))?;
    rx.set_read_timeout(Some(LOG_WAIT))
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 16];
    rx.recv(&mut buf)
        .map_err(|e| format!("UDP datagram not received: {e}"))?;
    Ok(())
}

/// Sends one UDP datagram from `from` in namespace `ns_from` to `to` in
/// `ns_to`, and one back to where it came from; returns that source as the
/// receiver saw it (after any NAT on the way).
pub(super) fn udp_round_trip(
    ns_from: &str,
    from: SocketAddr,
    ns_to: &str,
    to: SocketAddr,
) -> GuestResult<SocketAddr> {
    let rx = in_netns(Some(ns_to), move || UdpSocket::bind(to))?;
    let tx = in_netns(Some(ns_from), move || UdpSocket::bind(from))?;
    for s in [&rx, &tx] {
        s.set_read_timeout(Some(LOG_WAIT))
            .map_err(|e| e.to_string())?;
    }
    tx.send_to(b"nsfilter", to)
        .map_err(|e| format!("UDP send failed: {e}"))?;
    let mut buf = [0u8; 16];
    let (_, seen) = rx
        .recv_from(&mut buf)
        .map_err(|e| format!("UDP datagram not received: {e}"))?;
    rx.send_to(b"nsfilter", seen)
        .map_err(|e| format!("UDP reply to {seen} failed: {e}"))?;
    let (_, back) = tx
        .recv_from(&mut buf)
        .map_err(|e| format!("UDP reply not received: {e}"))?;
    if back != to {
        return Err(format!("the UDP reply came from {back}, not from {to}"));
    }
    Ok(seen)
}

/// A TCP connection between two namespaces, open until dropped.
pub(super) struct TcpConn {
    /// The client's end.
    pub(super) client: TcpStream,
    /// The server's end, as `accept` returned it: held, never read, so that
    /// the connection stays open.
    _server: TcpStream,
    /// The client's address as the server saw it (after any NAT).
    pub(super) peer: SocketAddr,
}

impl TcpConn {
    /// The client's own port.
    pub(super) fn client_port(&self) -> GuestResult<u16> {
        Ok(self.client.local_addr().map_err(|e| e.to_string())?.port())
    }
}

/// Opens a TCP connection from `ns_from` to `to` in `ns_to` and returns it
/// once accepted: the handshake is over, and nothing more is sent until it is
/// dropped.
pub(super) fn tcp_open(ns_from: &str, ns_to: &str, to: SocketAddr) -> GuestResult<TcpConn> {
    let listener = in_netns(Some(ns_to), move || TcpListener::bind(to))?;
    let client = in_netns(Some(ns_from), move || {
        TcpStream::connect_timeout(&to, LOG_WAIT)
    })?;
    let (server, peer) = listener
        .accept()
        .map_err(|e| format!("TCP accept failed: {e}"))?;
    Ok(TcpConn {
        client,
        _server: server,
        peer,
    })
}

/// Opens a TCP connection from `ns_from` to `to` in `ns_to`; returns the
/// client's port.
pub(super) fn tcp_connect(ns_from: &str, ns_to: &str, to: SocketAddr) -> GuestResult<u16> {
    tcp_open(ns_from, ns_to, to)?.client_port()
}

pub(super) fn v4(a: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::from(a), port))
}

/// A quiet pair of namespaces `a`–`b` over veth `{a}v`–`{b}v`, 10.N.0.1 and
/// 10.N.0.2/24, with IPv6 off so that only the test's packets are counted.
pub(super) fn quiet_pair(a: &str, b: &str, n: u8) -> GuestResult<(u64, u64)> {
    sh(&format!(
        "ip netns add {a} && ip netns add {b} && \
         ip link add {a}v type veth peer name {b}v && \
         ip link set {a}v netns {a} && ip link set {b}v netns {b} && \
         ip netns exec {a} sysctl -qw net.ipv6.conf.all.disable_ipv6=1 && \
         ip netns exec {b} sysctl -qw net.ipv6.conf.all.disable_ipv6=1 && \
         ip netns exec {a} ip addr add 10.{n}.0.1/24 dev {a}v && \
         ip netns exec {b} ip addr add 10.{n}.0.2/24 dev {b}v && \
         ip netns exec {a} ip link set {a}v up && ip netns exec {b} ip link set {b}v up"
    ))?;
    Ok((
        ns_inode(&format!("/run/netns/{a}"))?,
        ns_inode(&format!("/run/netns/{b}"))?,
    ))
}

/// UDP datagrams sent from namespace `ns` on a thread, until stopped (or
/// dropped), with `pause` between them.
pub(super) struct Traffic {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Traffic {
    pub(super) fn start(
        ns: &str,
        from: SocketAddr,
        to: SocketAddr,
        pause: Duration,
    ) -> GuestResult<Self> {
        use std::sync::atomic::{AtomicBool, Ordering};
        let tx = in_netns(Some(ns), move || UdpSocket::bind(from))?;
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut sent = 0;
            while !flag.load(Ordering::Relaxed) {
                if tx.send_to(b"nsfilter", to).is_ok() {
                    sent += 1;
                }
                if !pause.is_zero() {
                    std::thread::sleep(pause);
                }
            }
            sent
        });
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the traffic; returns how many datagrams were sent.
    pub(super) fn stop(mut self) -> u64 {
        self.halt()
    }

    fn halt(&mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or(0)
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.halt();
    }
}
