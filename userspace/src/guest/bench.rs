//! The guest's half of `make bench`: a quiet pair of namespaces, the UDP
//! datagram rate between them with each configuration loaded in turn, then
//! with more and more namespaces in existence; each measurement printed
//! after `MARKER` for the host (`crate::bench`) to read back and report.

use super::module::{counter, insmod_path, proc_counters_file};
use super::net::{in_netns, quiet_pair, sh};
use super::GuestResult;
use crate::initramfs::guest_path;
use crate::kmsg::Kmsg;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// Where the C twin is in the guest.
const TWIN: &str = "/lib/nsfilter/nsfilter_c.ko";
/// Where the floor module (a hook that only accepts) is in the guest.
const NULL: &str = "/lib/nsfilter/nsfilter_null.ko";

/// The marker before each measurement the agent prints.
pub const MARKER: &str = "@@bench ";

/// The namespaces the traffic runs between; every setting applies to both.
const MEASURED: [&str; 2] = ["bench0", "bench1"];

/// What a configuration puts in the packet's way.
pub(crate) enum Setup {
    /// Nothing: the kernel's own receive path.
    Nothing,
    /// A module (guest path) loaded with these parameters.
    Module(&'static str, &'static str),
    /// An nft ruleset (the `nft -f` text) in each measured namespace.
    Nft(&'static str),
    /// nsfilter loaded with these parameters, then a crowd of
    /// [`CROWD`] namespaces that each send [`CROWD_BURST`] datagrams through
    /// it (to their loopback), as a crowd of containers flooding the
    /// host-wide budget would.
    Crowd(&'static str),
}

/// The namespaces of configuration h's crowd.
const CROWD: usize = 100;
/// The datagrams each of them sends before the window.
const CROWD_BURST: usize = 20;

/// A configuration of the per-packet measurement.
pub(crate) struct Config {
    /// The letter the report names it by.
    pub(crate) key: &'static str,
    /// What it measures, as the report says it.
    pub(crate) what: &'static str,
    /// What is loaded or set for it.
    pub(crate) setup: Setup,
}

/// (f): nft's chain at PRE_ROUTING, first among the usual priorities
/// (`raw`; nsfilter's hook is first of all), for both families, with
/// nsfilter's default rate limit (`log_rate=100 log_burst=200`) in front of
/// `log`, whose line is the kernel's LOG format that nsfilter also writes:
/// every packet goes to the limit and is logged under it.
const NFT_LOG_ALL: &str = "table inet nsbench {
  chain pre {
    type filter hook prerouting priority raw; policy accept;
    limit rate 100/second burst 200 packets log
  }
}
";

/// (g): the same chain with a match no packet of the benchmark passes (UDP
/// to port 1, as nsfilter's `ports=1` in (b)): nft's fast path.
const NFT_LOG_NONE: &str = "table inet nsbench {
  chain pre {
    type filter hook prerouting priority raw; policy accept;
    udp dport 1 limit rate 100/second burst 200 packets log
  }
}
";

/// The configurations, in the order each round measures them.
pub(crate) const CONFIGS: [Config; 8] = [
    Config {
        key: "a",
        what: "no module",
        setup: Setup::Nothing,
    },
    Config {
        key: "b",
        what: "nsfilter, logging filtered out (hook + parse + counters + filter)",
        setup: Setup::Module(guest_path::MODULE, "ports=1"),
    },
    Config {
        key: "c",
        what: "nsfilter logging under the default rate limit",
        setup: Setup::Module(guest_path::MODULE, ""),
    },
    Config {
        key: "d",
        what: "C twin of b: the same work in C, filtered out",
        setup: Setup::Module(TWIN, "ports=1"),
    },
    Config {
        key: "e",
        what: "floor: same pernet hook registration, hook only accepts (C)",
        setup: Setup::Module(NULL, ""),
    },
    Config {
        key: "f",
        what: "nft: limit 100/s burst 200 + log, every packet (no module)",
        setup: Setup::Nft(NFT_LOG_ALL),
    },
    Config {
        key: "g",
        what: "nft: same chain, a rule that never matches (no module)",
        setup: Setup::Nft(NFT_LOG_NONE),
    },
    Config {
        key: "h",
        what: "nsfilter, budget used up by 100 namespaces: lines refused",
        setup: Setup::Crowd("log_rate=1000000 log_burst=1000000 budget_rate=1 budget_burst=1"),
    },
];

/// Loads or sets what `setup` says.
fn apply(setup: &Setup) -> GuestResult {
    match setup {
        Setup::Nothing => Ok(()),
        Setup::Module(path, params) => insmod_path(path, params),
        Setup::Crowd(params) => {
            insmod_path(guest_path::MODULE, params)?;
            sh(&format!(
                "for i in $(seq {CROWD}); do \
                   ip netns add crowd$i && ip -n crowd$i link set lo up || exit 1; \
                 done"
            ))?;
            for i in 1..=CROWD {
                in_netns(Some(&format!("crowd{i}")), || {
                    let socket = UdpSocket::bind("127.0.0.1:9100")?;
                    for _ in 0..CROWD_BURST {
                        socket.send_to(&[0u8; 64], "127.0.0.1:9100")?;
                    }
                    Ok(())
                })?;
            }
            Ok(())
        }
        Setup::Nft(rules) => {
            for ns in MEASURED {
                sh(&format!("ip netns exec {ns} nft -f - <<'EOF'\n{rules}EOF"))?;
            }
            Ok(())
        }
    }
}

/// Undoes [`apply`].
fn undo(setup: &Setup) -> GuestResult {
    match setup {
        Setup::Nothing => Ok(()),
        Setup::Crowd(_) => sh(&format!(
            "rmmod nsfilter && for i in $(seq {CROWD}); do ip netns del crowd$i || exit 1; done"
        ))
        .map(drop),
        Setup::Module(path, _) => {
            let name = path
                .rsplit('/')
                .next()
                .and_then(|f| f.strip_suffix(".ko"))
                .unwrap_or(path);
            sh(&format!("rmmod {name}")).map(drop)
        }
        Setup::Nft(_) => {
            for ns in MEASURED {
                sh(&format!("ip netns exec {ns} nft delete table inet nsbench"))?;
            }
            Ok(())
        }
    }
}

/// What one window measured, per second of guest time.
struct Window {
    /// Datagrams sent (each received, through the hooks, before the send
    /// returns).
    pps: f64,
    /// Datagrams sent in all, the warm-up's too: what the hooks saw since
    /// the configuration was set.
    total: u64,
    /// Kernel log records written.
    records: f64,
    /// Of those, the lines of a benchmark packet (nsfilter's or nft's).
    lines: f64,
}

/// Sends 64-byte UDP datagrams from bench0 to bench1 for `window` of guest
/// time; returns the rates. Each send runs the whole receive path (veth,
/// PRE_ROUTING hook, UDP) on the one CPU. The kernel log is read after the
/// window, and the agent's report watcher, which reads it every 20 ms, is
/// held off during it: its reads would be charged to the packets, in
/// proportion to the log's volume.
fn rate(tx: &UdpSocket, window: Duration) -> GuestResult<Window> {
    let payload = [0u8; 64];
    // Warm up caches and the neighbour entry.
    let start = Instant::now();
    let mut warmup = 0u64;
    while start.elapsed() < window / 10 {
        if tx.send_to(&payload, "10.70.0.2:9000").is_ok() {
            warmup += 1;
        }
    }
    let mut log = Kmsg::open().map_err(|e| format!("/dev/kmsg: {e}"))?;
    let held = super::reports::hold();
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < window {
        for _ in 0..64 {
            if tx.send_to(&payload, "10.70.0.2:9000").is_ok() {
                sent += 1;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    drop(held);
    log.poll().map_err(|e| format!("/dev/kmsg: {e}"))?;
    if log.lost > 0 {
        return Err(format!("{} kernel log records were lost unread", log.lost));
    }
    let records = log.take();
    let lines = records
        .iter()
        .filter(|(_, l)| l.contains(" SRC=10.70.0.1 DST=10.70.0.2 "))
        .count();
    Ok(Window {
        // CAST: counts far below 2^53.
        pps: sent as f64 / secs,
        total: warmup + sent,
        records: records.len() as f64 / secs,
        lines: lines as f64 / secs,
    })
}

/// After configuration `key`'s window, with it still loaded: nsfilter (b)
/// and its C twin (d) each counted every datagram bench1 received since it
/// was loaded (`sent`) as IPv4 and UDP, and filtered every one; so the two
/// did the same work.
fn check(key: &str, sent: u64) -> GuestResult {
    let file = match key {
        "b" => "nsfilter",
        "d" => "nsfilter_c",
        "h" => return check_crowd(sent),
        _ => return Ok(()),
    };
    let c = proc_counters_file(MEASURED[1], file)?;
    let found = ["packets_ipv4", "udp", "filtered", "logged", "malformed"]
        .iter()
        .map(|name| counter(&c, name))
        .collect::<GuestResult<Vec<u64>>>()?;
    if found != [sent, sent, sent, 0, 0] {
        return Err(format!(
            "configuration {key}: /proc/net/{file} says {c:?} after {sent} datagrams: \
             each should be one IPv4 UDP packet, filtered"
        ));
    }
    Ok(())
}

/// After configuration h's window: bench1's hook saw every datagram, its
/// own limit refused none, and the budget all but the few lines it let
/// through (at 1 a second, burst 1).
fn check_crowd(sent: u64) -> GuestResult {
    let c = proc_counters_file(MEASURED[1], "nsfilter")?;
    let get = |name| counter(&c, name);
    let (packets, limit, budget, logged) = (
        get("packets_ipv4")?,
        get("suppressed")?,
        get("suppressed_budget")?,
        get("logged")?,
    );
    if packets != sent || limit != 0 || budget + logged != sent || logged > 5 {
        return Err(format!(
            "configuration h: /proc/net/nsfilter says {c:?} after {sent} datagrams: \
             the budget should have refused all but a few lines"
        ));
    }
    Ok(())
}

/// Guest side: `bench ROUNDS WINDOW_MS`.
pub(super) fn guest(args: &[&str]) -> GuestResult {
    let rounds: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(5);
    let window = Duration::from_millis(args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000));
    quiet_pair(MEASURED[0], MEASURED[1], 70)?;
    // A permanent neighbour entry: a learnt one goes stale after 15-45 s of
    // guest time, and for the 5 s it then spends in DELAY every datagram
    // takes the slower neighbour output path (~80 more instructions each),
    // which moved whole configurations by 1.2% in one round out of three.
    sh(&format!(
        "mac=$(ip netns exec {b} cat /sys/class/net/{b}v/address) && \
         ip netns exec {a} ip neigh replace 10.70.0.2 lladdr $mac dev {a}v nud permanent",
        a = MEASURED[0],
        b = MEASURED[1]
    ))?;
    // nft's `log` in a namespace other than the initial one logs nothing
    // unless this is set (`nf_log_syslog`'s `nf_log_allowed()`); nsfilter
    // logs in every namespace.
    sh("sysctl -qw net.netfilter.nf_log_all_netns=1")?;
    let _rx = in_netns(Some("bench1"), || UdpSocket::bind("10.70.0.2:9000"))?;
    let tx = in_netns(Some("bench0"), || UdpSocket::bind("10.70.0.1:9001"))?;
    // Unreported windows until two in a row agree within 0.1% (at most 10):
    // the first measurement after boot and set-up came out 9-12% low in two
    // runs out of four (work the guest still had to do), which the spread
    // check caught; nothing measured should pay for it.
    let mut last = rate(&tx, window)?.pps;
    for settled in 1..10 {
        let next = rate(&tx, window)?.pps;
        if (next - last).abs() <= last * 0.001 {
            println!("{MARKER}warmup windows={} value={next:.0}", settled + 1);
            break;
        }
        last = next;
    }
    // Round 0 is measured like the others and not reported. In every run
    // of 2026-11-25, until the first module was loaded, 'no module'
    // measured 130,192 pps (the warm-up windows and round 0's first
    // configuration) and from then on 147,54x; the configurations with a
    // module measured the same before and after. No other task ran
    // meanwhile (per-task CPU times); the receive softirq took 46% of the
    // window's CPU time against 36% later. Since the initramfs grew this
    // lasted into the first reported round, and the spread guard refused
    // every run. In the run of 2026-12-04 (same code, freshly built cache)
    // the slow state never came: 147,54x from the first window. Whatever
    // it is, round 0 (every configuration loaded and unloaded once) keeps
    // it out of the figures.
    for round in 0..=rounds {
        for c in &CONFIGS {
            apply(&c.setup)?;
            let w = rate(&tx, window)?;
            check(c.key, w.total)?;
            undo(&c.setup)?;
            let kind = if round == 0 { "unreported" } else { "pps" };
            println!(
                "{MARKER}{kind} config={} round={round} value={:.0} records={:.1} lines={:.1}",
                c.key, w.pps, w.records, w.lines
            );
        }
    }
    // Scale: the fast path with 1, 10, 100 and 1,000 namespaces in existence
    // (traffic in one pair), and insmod/rmmod time as the count grows.
    let mut keep = Vec::new();
    let mut existing = 3; // The initial namespace and the bench pair.
    for target in [1usize, 10, 100, 1000] {
        while existing < target {
            keep.push(in_netns(None, || {
                crate::sys::new_netns()?;
                std::fs::File::open("/proc/thread-self/ns/net")
            })?);
            existing += 1;
        }
        let t = Instant::now();
        insmod_path(guest_path::MODULE, "ports=1")?;
        let insmod = t.elapsed();
        let pps = rate(&tx, window)?.pps;
        let t = Instant::now();
        undo(&Setup::Module(guest_path::MODULE, ""))?;
        let rmmod = t.elapsed();
        println!(
            "{MARKER}scale namespaces={} pps={pps:.0} insmod_ms={:.2} rmmod_ms={:.2}",
            existing.max(target),
            insmod.as_secs_f64() * 1e3,
            rmmod.as_secs_f64() * 1e3
        );
    }
    Ok(())
}
