//! `make bench`: what nsfilter costs per packet, measured in the lab VM.
//!
//! The VM runs under TCG with `-icount shift=0,sleep=off -smp 1`: guest time
//! advances with the instructions executed, so a packet rate measured in
//! guest time is repeatable (NOTES.md: ~0.7% spread) and the configurations
//! can be compared side by side in one run. Absolute numbers mean little
//! under emulation; the ratios do.

use crate::guest::{in_netns, insmod_path, quiet_pair, sh, GuestResult};
use crate::initramfs::guest_path;
use std::fmt::Write as _;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// Where the C twin is in the guest.
pub const TWIN: &str = "/lib/nsfilter/nsfilter_c.ko";

/// The marker before each measurement the agent prints.
pub const MARKER: &str = "@@bench ";

/// A configuration of the per-packet measurement.
struct Config {
    key: &'static str,
    what: &'static str,
    load: Option<(&'static str, &'static str)>,
}

const CONFIGS: [Config; 4] = [
    Config {
        key: "a",
        what: "no module",
        load: None,
    },
    Config {
        key: "b",
        what: "nsfilter, logging filtered out (hook + parse + counters + filter)",
        load: Some((guest_path::MODULE, "ports=1")),
    },
    Config {
        key: "c",
        what: "nsfilter logging under the default rate limit",
        load: Some((guest_path::MODULE, "")),
    },
    Config {
        key: "d",
        what: "C twin: same hook, same parse, counters, no log",
        load: Some((TWIN, "")),
    },
];

/// Sends 64-byte UDP datagrams from bench0 to bench1 for `window` of guest
/// time; returns datagrams per second. Each send runs the whole receive path
/// (veth, PRE_ROUTING hook, UDP) on the one CPU.
fn rate(tx: &UdpSocket, window: Duration) -> f64 {
    let payload = [0u8; 64];
    // Warm up caches and the neighbour entry.
    let start = Instant::now();
    while start.elapsed() < window / 10 {
        let _ = tx.send_to(&payload, "10.70.0.2:9000");
    }
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < window {
        for _ in 0..64 {
            if tx.send_to(&payload, "10.70.0.2:9000").is_ok() {
                sent += 1;
            }
        }
    }
    sent as f64 / start.elapsed().as_secs_f64()
}

fn unload(path: &str) -> GuestResult {
    let name = if path == TWIN {
        "nsfilter_c"
    } else {
        "nsfilter"
    };
    sh(&format!("rmmod {name}")).map(drop)
}

/// Guest side: `bench ROUNDS WINDOW_MS`.
pub fn guest(args: &[&str]) -> GuestResult {
    let rounds: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(5);
    let window = Duration::from_millis(args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000));
    quiet_pair("bench0", "bench1", 70)?;
    let _rx = in_netns(Some("bench1"), || UdpSocket::bind("10.70.0.2:9000"))?;
    let tx = in_netns(Some("bench0"), || UdpSocket::bind("10.70.0.1:9001"))?;
    for round in 1..=rounds {
        for c in &CONFIGS {
            if let Some((path, params)) = c.load {
                insmod_path(path, params)?;
            }
            let pps = rate(&tx, window);
            if let Some((path, _)) = c.load {
                unload(path)?;
            }
            println!("{MARKER}pps config={} round={round} value={pps:.0}", c.key);
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
        let pps = rate(&tx, window);
        let t = Instant::now();
        unload(guest_path::MODULE)?;
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

/// One measurement, as the host reads it back.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// `pps` or `scale`.
    pub kind: String,
    /// `key=value` fields.
    pub fields: Vec<(String, String)>,
}

impl Sample {
    fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn num(&self, key: &str) -> Option<f64> {
        self.get(key)?.parse().ok()
    }
}

/// Reads the measurements out of the console lines.
pub fn parse(lines: &[String]) -> Vec<Sample> {
    lines
        .iter()
        .filter_map(|l| l.split_once(MARKER).map(|(_, rest)| rest))
        .filter_map(|rest| {
            let mut words = rest.split_whitespace();
            let kind = words.next()?.to_string();
            let fields = words
                .filter_map(|w| {
                    w.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                })
                .collect();
            Some(Sample { kind, fields })
        })
        .collect()
}

/// Median, minimum and maximum.
pub fn stats(values: &[f64]) -> Option<(f64, f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    let median = if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    };
    Some((median, v[0], v[v.len() - 1]))
}

/// The report: a table for people and JSON for the results folder.
pub fn report(samples: &[Sample], workflow: &[(String, f64)]) -> Result<(String, String), String> {
    let mut text = String::new();
    let mut json = String::from("{\n  \"per_packet\": {\n");
    let mut medians = std::collections::BTreeMap::new();
    let _ = writeln!(
        text,
        "Per-packet cost: UDP datagrams/s between two namespaces (guest time, icount)"
    );
    let _ = writeln!(
        text,
        "{:<3} {:<66} {:>9} {:>19}",
        "", "configuration", "median", "min-max"
    );
    for (i, c) in CONFIGS.iter().enumerate() {
        let values: Vec<f64> = samples
            .iter()
            .filter(|s| s.kind == "pps" && s.get("config") == Some(c.key))
            .filter_map(|s| s.num("value"))
            .collect();
        let (median, min, max) =
            stats(&values).ok_or(format!("no measurement for configuration {}", c.key))?;
        medians.insert(c.key, median);
        let _ = writeln!(
            text,
            "{:<3} {:<66} {median:>9.0} {:>9.0}-{:<9.0}",
            c.key, c.what, min, max
        );
        let comma = if i + 1 < CONFIGS.len() { "," } else { "" };
        let _ = writeln!(
            json,
            "    \"{}\": {{\"what\": \"{}\", \"median_pps\": {median:.0}, \"min_pps\": {min:.0}, \"max_pps\": {max:.0}, \"runs\": {}}}{comma}",
            c.key,
            c.what,
            values.len(),
        );
    }
    let ratio = |x: &str, y: &str| medians[x] / medians[y];
    let ratios = [
        ("b/a", ratio("b", "a"), "target >= 0.98"),
        ("c/a", ratio("c", "a"), "target >= 0.90"),
        ("b/d", ratio("b", "d"), "target >= 1.00 within noise"),
    ];
    let _ = writeln!(text, "\nRatios of medians (higher is faster):");
    json.push_str("  },\n  \"ratios\": {");
    for (i, (name, value, target)) in ratios.iter().enumerate() {
        let _ = writeln!(text, "  {name} = {value:.4}   ({target})");
        let _ = write!(
            json,
            "{}\"{name}\": {value:.4}",
            if i == 0 { "" } else { ", " }
        );
    }
    // Per-packet cost in guest nanoseconds (1 ns per instruction under icount).
    let ns = |k: &str| 1e9 / medians[k];
    let _ = writeln!(
        text,
        "  per packet: a {:.0} ns, b {:.0} ns (+{:.0}), c {:.0} ns (+{:.0}), d {:.0} ns (+{:.0}) of guest time",
        ns("a"),
        ns("b"),
        ns("b") - ns("a"),
        ns("c"),
        ns("c") - ns("a"),
        ns("d"),
        ns("d") - ns("a")
    );
    json.push_str("},\n  \"scale\": [");
    let _ = writeln!(
        text,
        "\nScale: nsfilter fast path with many namespaces in existence"
    );
    let _ = writeln!(
        text,
        "  {:>10} {:>12} {:>12} {:>12}",
        "namespaces", "datagrams/s", "insmod ms", "rmmod ms"
    );
    let scale: Vec<&Sample> = samples.iter().filter(|s| s.kind == "scale").collect();
    for (i, s) in scale.iter().enumerate() {
        let n = s.get("namespaces").unwrap_or("?");
        let (pps, ins, rm) = (
            s.num("pps").unwrap_or(0.0),
            s.num("insmod_ms").unwrap_or(0.0),
            s.num("rmmod_ms").unwrap_or(0.0),
        );
        let _ = writeln!(text, "  {n:>10} {pps:>12.0} {ins:>12.1} {rm:>12.1}");
        let _ = write!(
            json,
            "{}{{\"namespaces\": {n}, \"pps\": {pps:.0}, \"insmod_ms\": {ins:.2}, \"rmmod_ms\": {rm:.2}}}",
            if i == 0 { "" } else { ", " }
        );
    }
    json.push_str("],\n  \"workflow_seconds\": {");
    if !workflow.is_empty() {
        let _ = writeln!(text, "\nWorkflow (wall time on this machine)");
    }
    for (i, (name, secs)) in workflow.iter().enumerate() {
        let _ = writeln!(text, "  {name:<48} {secs:>7.2} s");
        let _ = write!(
            json,
            "{}\"{name}\": {secs:.2}",
            if i == 0 { "" } else { ", " }
        );
    }
    json.push_str("}\n}\n");
    Ok((text, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_read_from_console_lines_and_reported() {
        let mut lines = vec!["[ 1.0] noise".to_string()];
        for (c, v) in [("a", 100.0), ("b", 99.0), ("c", 95.0), ("d", 98.0)] {
            for round in 1..=3 {
                lines.push(format!(
                    "{MARKER}pps config={c} round={round} value={}",
                    v + f64::from(round)
                ));
            }
        }
        lines.push(format!(
            "{MARKER}scale namespaces=10 pps=99 insmod_ms=1.50 rmmod_ms=2.00"
        ));
        let samples = parse(&lines);
        assert_eq!(samples.len(), 13);
        let (text, json) = report(&samples, &[("VM cycle".into(), 2.0)]).unwrap();
        assert!(text.contains("b/a = 0.9902"), "{text}");
        assert!(json.contains("\"b/a\": 0.9902"), "{json}");
        assert!(json.contains("\"namespaces\": 10"), "{json}");
        assert!(text.contains("VM cycle"));
        assert_eq!(stats(&[3.0, 1.0, 2.0]), Some((2.0, 1.0, 3.0)));
        assert_eq!(stats(&[4.0, 1.0, 2.0, 3.0]), Some((2.5, 1.0, 4.0)));
        assert!(
            report(&samples[..3], &[]).is_err(),
            "a missing configuration is an error"
        );
    }
}
