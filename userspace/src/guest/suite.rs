//! The VM test suite: its tests, in the order KTAP numbers them, and the
//! runner that gives each a fresh `Ctx` and a clean VM and prints KTAP.

use super::context::{Ctx, Scale};
use super::labs::clean_up;
use super::module::rmmod;
use super::reports;
use super::tests_budget::test_budget;
use super::tests_concurrency::{
    test_fault_injection, test_param_writes_under_flood, test_rename_under_traffic,
};
use super::tests_controls::{test_bad_parameters, test_params, test_rate_change, test_rate_limit};
use super::tests_core::{
    test_bridge, test_hook_priority, test_initial_and_netns1, test_ipip, test_ipv6,
    test_load_unload, test_malformed, test_namespace_lifecycle, test_namespaces_before_insmod,
    test_nat, test_veth_pair,
};
use super::tests_counters::{test_counters_per_protocol, test_proc_counters};
use super::tests_logformat::test_logformat;
use super::tests_names::test_names;
use super::tests_reliability::{
    kmemleak_check, test_churn, test_fuzz, test_load_unload_flood, test_namespace_deaths,
};
use super::{GuestResult, SKIP};
use std::fs;

/// One test of the suite.
struct Test {
    name: &'static str,
    run: fn(&mut Ctx) -> GuestResult,
}

const SUITE: &[Test] = &[
    Test {
        name: "load_unload",
        run: test_load_unload,
    },
    Test {
        name: "veth_pair_lab",
        run: test_veth_pair,
    },
    Test {
        name: "initial_and_netns1_lab",
        run: test_initial_and_netns1,
    },
    Test {
        name: "nat_masquerade_lab",
        run: test_nat,
    },
    Test {
        name: "bridge_lab",
        run: test_bridge,
    },
    Test {
        name: "ipip_tunnel_lab",
        run: test_ipip,
    },
    Test {
        name: "namespace_lifecycle",
        run: test_namespace_lifecycle,
    },
    Test {
        name: "namespaces_before_insmod",
        run: test_namespaces_before_insmod,
    },
    Test {
        name: "hook_runs_first",
        run: test_hook_priority,
    },
    Test {
        name: "ipv6_tcp_udp",
        run: test_ipv6,
    },
    Test {
        name: "malformed_injected_frames",
        run: test_malformed,
    },
    Test {
        name: "params_at_runtime",
        run: test_params,
    },
    Test {
        name: "rate_limit_is_per_namespace",
        run: test_rate_limit,
    },
    Test {
        name: "rate_change_takes_effect_at_once",
        run: test_rate_change,
    },
    Test {
        name: "host_budget_under_a_crowd",
        run: test_budget,
    },
    Test {
        name: "proc_counters_per_namespace",
        run: test_proc_counters,
    },
    Test {
        name: "counters_per_protocol",
        run: test_counters_per_protocol,
    },
    Test {
        name: "bad_parameters",
        run: test_bad_parameters,
    },
    Test {
        name: "fuzz_injected_packets",
        run: test_fuzz,
    },
    Test {
        name: "namespace_churn",
        run: test_churn,
    },
    Test {
        name: "load_unload_under_flood",
        run: test_load_unload_flood,
    },
    Test {
        name: "namespace_deaths_under_flood",
        run: test_namespace_deaths,
    },
    Test {
        name: "fault_injection_netns_and_insmod",
        run: test_fault_injection,
    },
    Test {
        name: "param_writes_under_flood",
        run: test_param_writes_under_flood,
    },
    Test {
        name: "device_rename_under_traffic",
        run: test_rename_under_traffic,
    },
    Test {
        name: "logformat_kernel_is_the_oracle",
        run: test_logformat,
    },
    Test {
        name: "names_resolve_stat_filter_log",
        run: test_names,
    },
];

/// Tests that break the test path on purpose, for `scripts/lab-selftest.sh`:
/// run only when the filter names one of them exactly.
const SELFTESTS: &[Test] = &[
    Test {
        name: "selftest_not_ok",
        run: |_| Err("this test fails on purpose".into()),
    },
    Test {
        name: "selftest_skip",
        run: |_| Err(super::skip("this test skips on purpose")),
    },
    Test {
        name: "selftest_missing_result",
        run: |_| std::process::exit(0),
    },
    Test {
        name: "selftest_panic",
        run: |_| panic!("the agent panics on purpose"),
    },
    Test {
        name: "selftest_kernel_report",
        // Passes its own checks; the report written meanwhile (SLUB's
        // shape, no colon after BUG) must fail it.
        run: |_| {
            std::fs::write(
                "/dev/kmsg",
                "<3>BUG kmalloc-64 (Not tainted): selftest: a report during a test\n",
            )
            .map_err(|e| format!("/dev/kmsg: {e}"))
        },
    },
    Test {
        name: "selftest_lost_records",
        run: |_| lost_records(),
    },
    Test {
        name: "selftest_hang",
        run: |_| loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
    },
];

/// Writes several times the kernel log's size while the report watcher is
/// held off it: the log overruns the watcher, which must fail the test (a
/// report lost that way would otherwise go unseen).
fn lost_records() -> GuestResult {
    use std::io::Write;
    // Userspace writes to /dev/kmsg are rate limited unless this is on.
    // The sysctl wants the trailing newline (`devkmsg_sysctl_set_loglvl()`
    // refuses a value whose length is not the name's plus one).
    fs::write("/proc/sys/kernel/printk_devkmsg", "on\n")
        .map_err(|e| format!("printk_devkmsg: {e}"))?;
    let _held = reports::hold();
    let mut kmsg = fs::OpenOptions::new()
        .write(true)
        .open("/dev/kmsg")
        .map_err(|e| format!("/dev/kmsg: {e}"))?;
    let record = format!("<6>selftest: filling the log {}\n", "x".repeat(200));
    // 8 MiB: more than any log buffer the lab kernels have.
    for _ in 0..(8 << 20) / record.len() {
        kmsg.write_all(record.as_bytes())
            .map_err(|e| format!("/dev/kmsg: {e}"))?;
    }
    Ok(())
}

/// Whether a test of the suite is named `name`.
pub(crate) fn is_test(name: &str) -> bool {
    SUITE.iter().any(|t| t.name == name)
}

/// Whether the test `name` is one that `filter` selects: its name contains
/// the filter or, for `a,b`, `a` or `b`.
fn selected(filter: &str, name: &str) -> bool {
    filter.split(',').any(|f| name.contains(f))
}

/// Runs the tests whose name contains `filter` (or, for `a,b`, `a` or
/// `b`), printing KTAP. A filter that matches no test is a failure, not an
/// empty success.
pub(super) fn run_suite(filter: &str, scale: &'static Scale) -> i32 {
    let tests: Vec<&Test> = match SELFTESTS.iter().find(|t| t.name == filter) {
        Some(selftest) => vec![selftest],
        None => SUITE.iter().filter(|t| selected(filter, t.name)).collect(),
    };
    println!("KTAP version 1");
    println!("1..{}", tests.len());
    if tests.is_empty() {
        println!("# no test name contains '{filter}'");
        return 1;
    }
    let mut failed = 0;
    for (i, test) in tests.iter().enumerate() {
        // Progress: each test's name when it starts, its time when it ends.
        println!("# {}/{} {} ...", i + 1, tests.len(), test.name);
        let started = std::time::Instant::now();
        let reports_before = reports::mark();
        let result = Ctx::new(scale).and_then(|mut ctx| {
            let r = (test.run)(&mut ctx);
            // Leave a clean VM for the next test whatever happened.
            let _ = clean_up();
            if fs::read_to_string("/proc/modules").is_ok_and(|m| m.contains("nsfilter ")) {
                let _ = rmmod();
            }
            r
        });
        // A kernel report during the test fails it, whatever it checked.
        let reported = reports::since(&reports_before);
        let result = match (result, reported.is_empty()) {
            (r, true) => r,
            (r, false) => Err(format!(
                "the kernel reported during this test:\n{}{}",
                reported.join("\n"),
                r.err().map_or(String::new(), |e| format!("\n{e}"))
            )),
        };
        println!(
            "# {} took {:.1} s",
            test.name,
            started.elapsed().as_secs_f64()
        );
        match result {
            Ok(()) => println!("ok {} {}", i + 1, test.name),
            Err(e) if e.starts_with(SKIP) => {
                println!("ok {} {} # SKIP {}", i + 1, test.name, &e[SKIP.len()..]);
            }
            Err(e) => {
                failed += 1;
                for line in e.lines() {
                    println!("# {line}");
                }
                println!("not ok {} {}", i + 1, test.name);
            }
        }
    }
    if SELFTESTS.iter().all(|t| t.name != filter) {
        if let Err(e) = after_the_suite() {
            failed += 1;
            for line in e.lines() {
                println!("# {line}");
            }
        }
    }
    i32::from(failed > 0)
}

/// What is checked once every test has run, on a kernel that can: lockdep
/// still on (it switches itself off at its first report, and every later
/// locking bug would go unseen, so a run that ends with it off proves
/// nothing about locking), and a last kmemleak scan with no leak of
/// nsfilter's. A failure makes the agent exit non-zero.
fn after_the_suite() -> GuestResult {
    if let Ok(stats) = fs::read_to_string("/proc/lockdep_stats") {
        lockdep_still_on(&stats)?;
        println!("# after the suite: lockdep still on");
    }
    kmemleak_check()
}

/// Whether `/proc/lockdep_stats` says lockdep is still on (`debug_locks:
/// 1`); anything else, a missing line included, is a failure.
fn lockdep_still_on(stats: &str) -> GuestResult {
    let on = stats
        .lines()
        .find_map(|l| l.trim().strip_prefix("debug_locks:"))
        .map(str::trim);
    if on == Some("1") {
        return Ok(());
    }
    Err(format!(
        "after the suite: lockdep is off (debug_locks: {}): it switched itself off, \
         and the tests after that were not checked for locking bugs",
        on.unwrap_or("not in /proc/lockdep_stats")
    ))
}

#[cfg(test)]
mod tests {
    use super::{lockdep_still_on, selected, SUITE};

    /// The text /proc/lockdep_stats ends with, on and off.
    #[test]
    fn lockdep_off_fails_the_run() {
        let on =
            " chain lookup hits:              1\n debug_locks:                             1\n";
        assert!(lockdep_still_on(on).is_ok());
        let off = on.replace("   1\n", "   0\n");
        assert!(lockdep_still_on(&off)
            .unwrap_err()
            .contains("debug_locks: 0"));
        assert!(lockdep_still_on(" chain lookup hits: 1\n").is_err());
    }

    #[test]
    fn a_filter_selects_by_substring_and_a_list_by_any_of_its_parts() {
        assert!(selected("", "load_unload"));
        assert!(selected("unload", "load_unload"));
        assert!(!selected("ipip", "load_unload"));
        let race = "namespace_churn,load_unload_under_flood,namespace_deaths_under_flood,param_writes_under_flood,device_rename_under_traffic";
        let chosen: Vec<&str> = SUITE
            .iter()
            .map(|t| t.name)
            .filter(|n| selected(race, n))
            .collect();
        assert_eq!(
            chosen,
            [
                "namespace_churn",
                "load_unload_under_flood",
                "namespace_deaths_under_flood",
                "param_writes_under_flood",
                "device_rename_under_traffic"
            ]
        );
    }
}
