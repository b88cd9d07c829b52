//! The `nsfilter` binary as a user runs it: exit codes and one-line errors,
//! over an empty fake root (no module, no namespaces).

use std::process::{Command, Output};

fn nsfilter(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nsfilter"))
        .args(args)
        .output()
        .expect("run nsfilter")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_exits_0() {
    for args in [
        &["--help"][..],
        &["netns", "-h"],
        &["log", "--help"],
        &["stat", "--help"],
        &["filter", "--help"],
    ] {
        let o = nsfilter(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("Usage: nsfilter"),
            "{args:?}"
        );
        assert!(o.stderr.is_empty());
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["bogus"][..],
        &[],
        &["log", "--bogus"],
        &["filter", "--ports"],
    ] {
        let o = nsfilter(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = stderr(&o);
        assert!(err.starts_with("nsfilter: error: "), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn runtime_failures_exit_1() {
    let dir = std::env::temp_dir().join(format!("nsfilter-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = dir.to_str().unwrap();
    let o = nsfilter(&["--root", root, "stat"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "nsfilter: error: module nsfilter is not loaded (no /sys/module/nsfilter)\n"
    );
    let o = nsfilter(&["--root", root, "log"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("nsfilter: error: cannot read "),
        "{}",
        stderr(&o)
    );
    let o = nsfilter(&["--root", root, "log", "--netns", "nowhere"]);
    assert_eq!(o.status.code(), Some(2));
    let o = nsfilter(&["--root", root, "netns"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "NETNS  NAMES  CONTAINERS  SERVICES  PROCESSES\n"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
