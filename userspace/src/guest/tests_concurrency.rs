//! The VM tests of nsfilter under concurrency and failure: allocation
//! failures injected into namespace creation and into insmod while traffic
//! flows; module parameters rewritten from several threads under a flood;
//! a device renamed back and forth while packets enter through it. `make
//! stress` runs them on the debug kernel (KASAN, lockdep, fault injection,
//! PREEMPT) and on the race kernel (KCSAN).

use super::context::Ctx;
use super::module::{counter, param_read, param_write, proc_counters, LOADED_LINE};
use super::net::{ns_inode, quiet_pair, sh, udp_exchange, v4, Traffic};
use super::tests_reliability::kmemleak_check;
use super::{skip, GuestResult};
use crate::initramfs::guest_path;
use crate::sys;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::{Duration, Instant};

/// The most fault-injection points tried for one operation before the test
/// gives up (a bound, far above the few hundred allocations it makes).
const MAX_FAULT_POINTS: u32 = 20_000;

/// What happened to one operation run with its `n`th allocation failed.
struct Injected<T, U> {
    /// The operation's result.
    result: std::io::Result<T>,
    /// What the check after it found.
    checked: U,
    /// Whether the failure was injected (false: the operation made fewer
    /// than `n` allocations, so nothing was failed).
    injected: bool,
}

/// Runs `op` on a new thread whose `n`th fault-injection point fails
/// (`/proc/thread-self/fail-nth`), then `after` on the same thread, with no
/// failure pending. The file is opened and read through one descriptor, so
/// the check itself allocates nothing that could take the failure.
fn with_nth_failure<T: Send + 'static, U: Send + 'static>(
    n: u32,
    op: impl FnOnce() -> std::io::Result<T> + Send + 'static,
    after: impl FnOnce(&std::io::Result<T>) -> GuestResult<U> + Send + 'static,
) -> GuestResult<Injected<T, U>> {
    std::thread::spawn(move || -> GuestResult<Injected<T, U>> {
        let io = |e: std::io::Error| format!("/proc/thread-self/fail-nth: {e}");
        // Both descriptors are opened before the failure is armed (the file
        // cannot seek, so the read needs one of its own).
        let open = |write: bool| {
            OpenOptions::new()
                .read(!write)
                .write(write)
                .open("/proc/thread-self/fail-nth")
                .map_err(io)
        };
        let (mut arm, mut check) = (open(true)?, open(false)?);
        arm.write_all(n.to_string().as_bytes()).map_err(io)?;
        let result = op();
        let mut left = [0u8; 16];
        let len = check.read(&mut left).map_err(io)?;
        arm.write_all(b"0").map_err(io)?;
        let left = String::from_utf8_lossy(&left[..len]);
        let injected = left.trim() == "0";
        let checked = after(&result)?;
        Ok(Injected {
            result,
            checked,
            injected,
        })
    })
    .join()
    .map_err(|_| "a fault-injection thread panicked".to_string())?
}

/// Makes every slab and page allocation a fault-injection point, quietly:
/// by default both skip allocations that may sleep (`ignore-gfp-wait`).
fn enable_fault_points() -> GuestResult {
    sh("mount -t debugfs none /sys/kernel/debug 2>/dev/null; true")?;
    set_fault_attr("ignore-gfp-wait", "N")?;
    set_fault_attr("verbose", 0)
}

/// Writes `value` into the file `attr` of both fault-injection points,
/// failslab and fail_page_alloc (their debugfs folders).
fn set_fault_attr(attr: &str, value: impl std::fmt::Display) -> GuestResult {
    ["failslab", "fail_page_alloc"]
        .iter()
        .try_for_each(|point| {
            let path = format!("/sys/kernel/debug/{point}/{attr}");
            fs::write(&path, value.to_string()).map_err(|e| format!("{path}: {e}"))
        })
}

/// Defect 1 of the review: systematic fault injection into namespace
/// creation while nsfilter is loaded and traffic flows, then into insmod
/// itself (whose `init` hooks every existing namespace, the flooded ones
/// among them). For N = 1, 2, ... (`make stress`; every 20th at quick
/// sizes) the Nth allocation fails, until an operation succeeds with
/// nothing injected. Then insmod again with each allocation made under
/// nsfilter's own code failed in turn, every one at any size (a stack-trace
/// filter: about 25 where insmod makes hundreds). Every creation either fails
/// cleanly or succeeds with a hook that logs; every insmod either fails
/// with no module left or loads and logs. KASAN, lockdep and kmemleak stay
/// silent (the report watcher and a kmemleak scan).
pub(super) fn test_fault_injection(ctx: &mut Ctx) -> GuestResult {
    if fs::metadata("/proc/self/fail-nth").is_err() {
        return Err(skip(
            "no fault injection in this kernel (make stress: the debug kernel has it)",
        ));
    }
    enable_fault_points()?;
    let (_, fb) = quiet_pair("fa", "fb", 70)?;
    // The flood is sent and received on the last CPU (its sender pinned
    // there, RPS), and insmod runs on the first: while insmod registers the
    // flooded namespace's hook, hook calls run at once on the other CPU, as
    // on a busy host, and the sender never waits for insmod's CPU.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        return Err(format!("the guest sees {cpus} CPU: this test needs two"));
    }
    steer_rx("fb", cpus - 1)?;
    // The sender's thread is started from this one, pinned for the while.
    let flood = on_cpu(cpus - 1, cpus, || {
        Traffic::start(
            "fa",
            v4([10, 70, 0, 1], 9000),
            v4([10, 70, 0, 2], 9000),
            Duration::ZERO,
        )
    })?;
    let result = inject_into_netns(ctx).and_then(|netns| {
        let stride = ctx.scale.fault_stride;
        // The threads that load the module start from this one, on CPU 0.
        let all = on_cpu(0, cpus, || inject_into_insmod(ctx, fb, stride))?;
        // Then every allocation nsfilter's own code makes, each in turn:
        // those that fail one namespace's registration while the others'
        // hooks already see packets (defect 1 of the first review).
        let own = match module_code_start() {
            Some(start) => {
                require_frames_from(start)?;
                report_failures(true)?;
                let own = on_cpu(0, cpus, || inject_into_insmod(ctx, fb, 1));
                report_failures(false)?;
                require_frames_from(0)?;
                Some(own?)
            }
            None => None,
        };
        Ok((netns, all, own))
    });
    let sent = flood.stop();
    let ((created, failed), (loaded, refused), own) = result?;
    println!(
        "# fault injection: namespace creation {failed} failed, {created} succeeded; \
         insmod {refused} failed, {loaded} loaded; {sent} datagrams meanwhile"
    );
    match own {
        Some((loaded, refused)) => println!(
            "# insmod, every allocation under nsfilter's code: {refused} failed, {loaded} loaded"
        ),
        None => println!(
            "# no stack-trace filter in this kernel: nsfilter's own allocations not tried apart"
        ),
    }
    if failed == 0 || refused == 0 || own.is_some_and(|(_, refused)| refused == 0) {
        return Err("no injected failure made an operation fail".into());
    }
    kmemleak_check()
}

/// Has RPS deliver what namespace `ns`'s device of a [`quiet_pair`]
/// (`<ns>v`) receives to `cpu`, whichever CPU sent it.
fn steer_rx(ns: &str, cpu: usize) -> GuestResult {
    sh(&format!(
        "ip netns exec {ns} sh -c 'for q in /sys/class/net/{ns}v/queues/rx-*; do \
         echo {:x} > $q/rps_cpus || exit 1; done'",
        1u64 << cpu
    ))
    .map(drop)
}

/// Runs `f` with this thread, and the threads it starts meanwhile, kept on
/// `cpu`; then lets this thread run on all `cpus` again.
fn on_cpu<T>(cpu: usize, cpus: usize, f: impl FnOnce() -> GuestResult<T>) -> GuestResult<T> {
    let pin = |set: &[usize]| sys::set_cpus(set).map_err(|e| format!("sched_setaffinity: {e}"));
    pin(&[cpu])?;
    let result = f();
    pin(&(0..cpus).collect::<Vec<_>>())?;
    result
}

/// Where module code can start: the end of the kernel's text, from
/// `/proc/kallsyms` (on x86-64 modules live above the kernel's image, and
/// nothing but module code runs there); `None` where the kernel has no
/// stack-trace filter for fault injection (`require-start`) or the
/// architecture places modules elsewhere.
fn module_code_start() -> Option<u64> {
    if !cfg!(target_arch = "x86_64")
        || fs::metadata("/sys/kernel/debug/failslab/require-start").is_err()
    {
        return None;
    }
    let symbols = fs::read_to_string("/proc/kallsyms").ok()?;
    symbols.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let address = fields.next()?;
        let name = fields.nth(1)?;
        (name == "_etext")
            .then(|| u64::from_str_radix(address, 16).ok())
            .flatten()
            .filter(|&a| a != 0)
    })
}

/// Makes fail-nth count only the allocations with a return address at or
/// above `start` on their stack (`require-start`; 0 counts every one): from
/// the end of the kernel's text, those made under module code, which in the
/// guest is nsfilter's alone.
fn require_frames_from(start: u64) -> GuestResult {
    set_fault_attr("require-start", format_args!("{start:#x}"))
}

/// Has each injected failure log its call stack (`verbose` 2), or nothing.
/// The dump runs inside the failing allocation, so in insmod's filtered
/// pass it holds open defect 1's window: when the IPv6 half of a
/// namespace's registration fails, the IPv4 half has been visible to the
/// packets since just before, and stays so until the dump has been
/// written (symbolising a stack under KASAN and lockdep takes far longer
/// than one packet's trip through the flooded namespace's hook).
/// `loglevel=2` keeps the dumps off the console, and `enable_fault_points`
/// sets `verbose` 0 for the passes that inject thousands of failures.
fn report_failures(on: bool) -> GuestResult {
    set_fault_attr("verbose", if on { 2 } else { 0 })
}

/// Namespace creation with each of its allocations failed in turn; returns
/// (creations that succeeded, creations that failed).
fn inject_into_netns(ctx: &mut Ctx) -> GuestResult<(u32, u32)> {
    ctx.load()?;
    let (mut created, mut failed) = (0, 0);
    for n in (1..=MAX_FAULT_POINTS).step_by(ctx.scale.fault_stride as usize) {
        ctx.mark();
        let outcome = with_nth_failure(n, sys::new_netns, |result| -> GuestResult<u64> {
            if result.is_err() {
                return Ok(0);
            }
            // Created: its hook must log a ping (a child process inherits
            // this thread's namespace).
            let ino = fs::metadata("/proc/thread-self/ns/net")
                .map_err(|e| format!("/proc/thread-self/ns/net: {e}"))?
                .ino();
            let status = Command::new("/bin/sh")
                .args([
                    "-c",
                    &format!(
                        ". {} ; ip link set lo up && ping -c 1 -W 5 127.0.0.1 >/dev/null",
                        guest_path::PROFILE
                    ),
                ])
                .status()
                .map_err(|e| format!("failed to start /bin/sh: {e}"))?;
            if !status.success() {
                return Err("ping in the new namespace failed".into());
            }
            Ok(ino)
        })?;
        if (n - 1) % 100 < ctx.scale.fault_stride {
            println!("# namespace creation: {n} fault points so far, {failed} failed");
        }
        if outcome.result.is_err() {
            failed += 1;
        } else {
            created += 1;
            let tag = format!("nsfilter: NETNS={} IN=lo ", outcome.checked);
            let found = ctx
                .kmsg
                .wait_until(Duration::from_secs(5), |seen| {
                    seen.iter()
                        .any(|l| l.starts_with(&tag) && l.contains(" PROTO=ICMP TYPE=8 "))
                })
                .map_err(|e| e.to_string())?;
            if !found {
                return Err(format!(
                    "the namespace created with allocation {n} failed logged no ping"
                ));
            }
        }
        if !outcome.injected {
            if outcome.result.is_err() {
                return Err(format!(
                    "namespace creation failed with no fault injected: {:?}",
                    outcome.result
                ));
            }
            ctx.unload()?;
            return Ok((created, failed));
        }
    }
    Err(format!(
        "namespace creation still failed after {MAX_FAULT_POINTS} points"
    ))
}

/// insmod with its allocations 1, 1 + `stride`, ... failed in turn, while
/// `fb` is flooded; returns (loads, refusals).
fn inject_into_insmod(ctx: &mut Ctx, fb: u64, stride: u32) -> GuestResult<(u32, u32)> {
    let (mut loaded, mut refused) = (0, 0);
    for n in (1..=MAX_FAULT_POINTS).step_by(stride as usize) {
        let module = File::open(guest_path::MODULE)
            .map_err(|e| format!("failed to open {}: {e}", guest_path::MODULE))?;
        ctx.mark();
        let outcome = with_nth_failure(n, move || sys::finit_module(&module, ""), |_| Ok(()))?;
        if (n - 1) % 100 < stride {
            println!("# insmod: {n} fault points so far, {refused} failed");
        }
        let is_loaded = fs::read_to_string("/proc/modules")
            .map_err(|e| e.to_string())?
            .contains("nsfilter ");
        match (&outcome.result, is_loaded) {
            (Ok(()), true) => {
                loaded += 1;
                // Loaded: it logs the flood in `fb`, then unloads cleanly.
                ctx.expect(&[LOADED_LINE])?;
                let tag = format!("nsfilter: NETNS={fb} ");
                let logs = ctx
                    .kmsg
                    .wait_until(Duration::from_secs(5), |seen| {
                        seen.iter().any(|l| l.starts_with(&tag))
                    })
                    .map_err(|e| e.to_string())?;
                if !logs {
                    return Err(format!(
                        "loaded with allocation {n} failed, but logs nothing in the flooded namespace"
                    ));
                }
                ctx.unload()?;
            }
            (Err(_), false) => refused += 1,
            (r, loaded) => {
                return Err(format!(
                    "insmod with allocation {n} failed returned {r:?}, module loaded: {loaded}"
                ))
            }
        }
        if !outcome.injected {
            if outcome.result.is_err() {
                return Err(format!(
                    "insmod failed with no fault injected: {:?}",
                    outcome.result
                ));
            }
            return Ok((loaded, refused));
        }
    }
    Err(format!(
        "insmod still failed after {MAX_FAULT_POINTS} points"
    ))
}

/// Defect 2 of the review: every list parameter written in a tight loop by
/// several threads while UDP floods two namespaces (one sender per vCPU).
/// Readers in the packet path must never wait for a writer: no stall or
/// lockup report (the report watcher), every write accepted, packets keep
/// arriving throughout; after it, each list reads back as some writer's
/// last value, and the packet path filters by what the lists say.
pub(super) fn test_param_writes_under_flood(ctx: &mut Ctx) -> GuestResult {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    ctx.load()?;
    let (_, pb) = quiet_pair("pa", "pb", 71)?;
    let (_, qb) = quiet_pair("qa", "qb", 72)?;
    // Each flood is received on a CPU of its own, by RPS: the sender queues
    // each datagram to that CPU and interrupts it (an IPI), whose softirq
    // then runs the hook on top of whatever that CPU was doing, a parameter
    // write included. Without it, a packet is received on its sender's CPU
    // when the sender's send ends, never inside a write running there; and
    // a write that a packet's softirq interrupts on its own CPU is exactly
    // where a reader waiting for writers would spin forever (defect 2).
    // The lab starts every suite's VM with two CPUs; a guest that sees one
    // (as the lab kernels did, from a BIOS table that listed one: see
    // `vm::TWO_CPUS`) tests no concurrency here.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        return Err(format!("the guest sees {cpus} CPU: this test needs two"));
    }
    steer_rx("pb", 0)?;
    steer_rx("qb", cpus - 1)?;
    let floods = [
        Traffic::start(
            "pa",
            v4([10, 71, 0, 1], 9000),
            v4([10, 71, 0, 2], 9000),
            Duration::ZERO,
        )?,
        Traffic::start(
            "qa",
            v4([10, 72, 0, 1], 9000),
            v4([10, 72, 0, 2], 9000),
            Duration::ZERO,
        )?,
    ];
    // Values that let the flood be logged sometimes and filtered other times.
    let ports = [
        "9000",
        "53,9000,8080",
        "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16",
        "",
    ];
    let netns = [
        format!("{pb}"),
        format!("{pb},{qb}"),
        format!("{qb}"),
        String::new(),
    ];
    let protocols = ["udp", "tcp,udp,icmp", "other", ""];
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    // Each writer's last value of each list (writer, name, value).
    let last_written = Arc::new(std::sync::Mutex::new(Vec::<(&str, String)>::new()));
    // Each writer sends its result when it ends: a write stuck in the
    // kernel (a reader spinning on the writer, defect 2) must fail this
    // test within a bound, not hang the suite.
    let (done_tx, done) = std::sync::mpsc::channel::<GuestResult>();
    for w in 0..3 {
        let (stop, writes, netns) = (stop.clone(), writes.clone(), netns.clone());
        let last_written = last_written.clone();
        let done_tx = done_tx.clone();
        std::thread::spawn(move || {
            let result = (move || -> GuestResult {
                let mut mine: Vec<(&str, String)> = Vec::new();
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    let (name, value) = match i % 3 {
                        0 => ("ports", ports[i / 3 % ports.len()].to_string()),
                        1 => ("netns", netns[i / 3 % netns.len()].clone()),
                        _ => ("protocols", protocols[i / 3 % protocols.len()].to_string()),
                    };
                    param_write(name, &value)
                        .map_err(|e| format!("writing {name}={value:?} failed: {e}"))?;
                    writes.fetch_add(1, Ordering::Relaxed);
                    mine.retain(|(n, _)| *n != name);
                    mine.push((name, value));
                    i += 1;
                }
                last_written
                    .lock()
                    .map_err(|_| "the list of last values is poisoned".to_string())?
                    .extend(mine);
                Ok(())
            })();
            let _ = done_tx.send(result);
        });
    }
    drop(done_tx);
    // Packets keep arriving in both namespaces, second after second.
    let seconds = ctx.scale.param_write_secs;
    let received = |ns: &str| -> GuestResult<u64> {
        let c = proc_counters(ns)?;
        counter(&c, "packets_ipv4")
    };
    let mut last = (received("pb")?, received("qb")?);
    let mut stalled = None;
    for s in 0..seconds {
        std::thread::sleep(Duration::from_secs(1));
        let now = (received("pb")?, received("qb")?);
        if now.0 == last.0 || now.1 == last.1 {
            stalled = Some(s + 1);
        }
        last = now;
    }
    stop.store(true, Ordering::Relaxed);
    let mut result = Ok(());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    for ended in 0..3 {
        let wait = deadline.saturating_duration_since(std::time::Instant::now());
        match done.recv_timeout(wait) {
            Ok(r) => result = result.and(r),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err("a writer panicked".into())
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                return Err(format!(
                    "{ended} of 3 writers returned within 20 s of the stop: a parameter \
                     write is stuck in the kernel ({} writes done, {} and {} packets \
                     reached the two namespaces)",
                    writes.load(Ordering::Relaxed),
                    last.0,
                    last.1
                ))
            }
        }
    }
    let sent: u64 = floods.into_iter().map(Traffic::stop).sum();
    result?;
    println!(
        "# {} parameter writes by 3 threads in {seconds} s under a flood of {sent} datagrams; \
         {} and {} packets reached the two namespaces",
        writes.load(Ordering::Relaxed),
        last.0,
        last.1
    );
    if let Some(s) = stalled {
        return Err(format!("packets stopped arriving in second {s}"));
    }
    // Each list reads back as the last value some writer wrote to it (the
    // kernel's parameter lock orders the writes; one of the three writers'
    // last is the last of all), never as a value of another writer's earlier
    // round, a mix of two or a torn list.
    let finals = last_written
        .lock()
        .map_err(|_| "a writer panicked".to_string())?
        .clone();
    for name in ["ports", "netns", "protocols"] {
        let now = param_read(name)?;
        let candidates: Vec<&String> = finals
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v)
            .collect();
        if !candidates.contains(&&now) {
            return Err(format!(
                "{name} reads {now:?}, not the last value of any writer: {candidates:?}"
            ));
        }
    }
    // And the packet path obeys what the lists say now: a datagram to port
    // 9000 of pb is filtered with ports=1, and not with ports=9000 (logged,
    // or refused by the rate limit the flood spent).
    param_write("netns", "").map_err(|e| format!("netns: {e}"))?;
    param_write("protocols", "").map_err(|e| format!("protocols: {e}"))?;
    for (i, (value, filtered)) in [("1", true), ("9000", false), ("1", true)]
        .into_iter()
        .enumerate()
    {
        param_write("ports", value).map_err(|e| format!("ports={value}: {e}"))?;
        let before = proc_counters("pb")?;
        udp_exchange(
            "pa",
            v4([10, 71, 0, 1], 42000 + i as u16),
            "pb",
            v4([10, 71, 0, 2], 9000),
        )?;
        let after = proc_counters("pb")?;
        let delta = |name: &str| -> GuestResult<u64> {
            Ok(counter(&after, name)? - counter(&before, name)?)
        };
        let passed = delta("logged")? + delta("suppressed")? + delta("suppressed_budget")?;
        let want = if filtered { (1, 0) } else { (0, 1) };
        if (delta("filtered")?, passed) != want {
            return Err(format!(
                "with ports={value} after the writes, a datagram to port 9000 was \
                 filtered {} and passed {passed} times",
                delta("filtered")?
            ));
        }
    }
    ctx.unload()
}

/// Defect 3 of the review: a device renamed back and forth (`ip -batch`)
/// while a flood enters through it. The renames are done with the device up
/// (6.12's `dev_change_name()` no longer refuses that), so `dev->name` is
/// rewritten in place while
/// hook calls read it on the other CPU: every `IN=` must be a name the
/// device had, or a byte-wise mix of the two, never empty and never holding
/// a NUL (which the line would show escaped, `\x00`). Renaming a device
/// that is down would test nothing: taking it down waits for the hook calls
/// in flight (`synchronize_net()` in `dev_deactivate_many()`), and a device
/// that is down receives no packet (`enqueue_to_backlog()`).
pub(super) fn test_rename_under_traffic(ctx: &mut Ctx) -> GuestResult {
    const A: &str = "rn";
    const B: &str = "rnbbbbbbbbbbbbb";
    let renames = ctx.scale.renames;
    ctx.load_with("log_rate=1000000 log_burst=1000000 budget_rate=1000000 budget_burst=1000000")?;
    sh(&format!(
        "ip netns add ra && ip netns add rb && \
         ip link add rav type veth peer name {A} && \
         ip link set rav netns ra && ip link set {A} netns rb && \
         for n in ra rb; do ip netns exec $n sysctl -qw net.ipv6.conf.all.disable_ipv6=1; done && \
         ip netns exec ra ip addr add 10.73.0.1/24 dev rav && \
         ip netns exec rb ip addr add 10.73.0.2/24 dev {A} && \
         ip netns exec ra ip link set rav up && ip netns exec rb ip link set {A} up && \
         ip netns exec ra ip neigh add 10.73.0.2 lladdr \
           $(ip netns exec rb cat /sys/class/net/{A}/address) dev rav"
    ))?;
    let rb = ns_inode("/run/netns/rb")?;
    let mut batch = String::new();
    for _ in 0..renames / 2 {
        for (from, to) in [(A, B), (B, A)] {
            batch.push_str(&format!("link set dev {from} name {to}\n"));
        }
    }
    fs::write("/tmp/renames", batch).map_err(|e| format!("writing /tmp/renames: {e}"))?;
    ctx.mark();
    let flood = Traffic::start(
        "ra",
        v4([10, 73, 0, 1], 9000),
        v4([10, 73, 0, 2], 9000),
        Duration::ZERO,
    )?;
    let started = Instant::now();
    let renamed = sh("ip netns exec rb ip -batch /tmp/renames");
    let sent = flood.stop();
    renamed?;
    let _ = ctx.kmsg.poll();
    let tag = format!("nsfilter: NETNS={rb} IN=");
    let (mut as_a, mut as_b, mut mixed) = (0u64, 0u64, 0u64);
    for line in ctx.kmsg.seen.iter().filter_map(|l| l.strip_prefix(&tag)) {
        let name = line.split(' ').next().unwrap_or("");
        let ok = !name.is_empty()
            && !name.contains('\\')
            && name
                .bytes()
                .enumerate()
                .all(|(i, c)| A.as_bytes().get(i) == Some(&c) || B.as_bytes().get(i) == Some(&c));
        if !ok {
            return Err(format!("IN={name:?} is no name the device had: {line}"));
        }
        match name {
            A => as_a += 1,
            B => as_b += 1,
            _ => mixed += 1,
        }
    }
    println!(
        "# {renames} renames in {:.1} s under a flood of {sent} datagrams: \
         {as_a} lines as {A}, {as_b} as {B}, {mixed} torn",
        started.elapsed().as_secs_f64()
    );
    if as_a == 0 || as_b == 0 {
        return Err("packets did not enter under both names".into());
    }
    ctx.unload()
}
