//! The lesson behind `make run`: the five labs one after the other, with
//! the lines each namespace logged (name beside inode) and its counters.

use super::context::{Ctx, QUICK};
use super::labs::{clean_up, LABS};
use super::module::{LOADED_LINE, UNLOADED_LINE};
use super::net::{ns_inode, sh};
use super::GuestResult;
use crate::initramfs::guest_path::NSFILTER;
use std::fs;
use std::process::Command;

/// Names of the namespaces that exist now, by inode (`init` for the first).
fn namespace_names() -> Vec<(u64, String)> {
    let mut names: Vec<(u64, String)> = Vec::new();
    if let Ok(ino) = ns_inode("/proc/1/ns/net") {
        names.push((ino, "init".into()));
    }
    if let Ok(dir) = fs::read_dir("/run/netns") {
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Ok(ino) = ns_inode(&format!("/run/netns/{name}")) {
                names.push((ino, name));
            }
        }
    }
    names
}

/// Prints the nsfilter lines seen, grouped by namespace, name beside inode.
fn print_by_namespace(ctx: &mut Ctx) {
    let names = namespace_names();
    let lines = ctx.nsfilter_lines();
    for (ino, name) in &names {
        let tag = format!("nsfilter: NETNS={ino} ");
        let mine: Vec<&String> = lines.iter().filter(|l| l.starts_with(&tag)).collect();
        if mine.is_empty() {
            continue;
        }
        println!("  namespace {name} (inode {ino}): {} lines", mine.len());
        for l in mine {
            println!("    {}", l.trim_start_matches("nsfilter: "));
        }
        let ns = if name == "init" {
            String::new()
        } else {
            format!("ip netns exec {name} ")
        };
        if let Ok(text) = sh(&format!("{ns}cat /proc/net/nsfilter")) {
            let fields: Vec<String> = text
                .lines()
                .filter(|l| !l.starts_with("netns ") && !l.ends_with(" 0"))
                .map(|l| l.replacen(' ', "=", 1))
                .collect();
            // The initial namespace outlives the labs: its counters hold
            // every lab's packets since insmod, not only the lines above.
            let since = if name == "init" {
                " (since insmod, every lab)"
            } else {
                ""
            };
            println!("    /proc/net/nsfilter{since}: {}", fields.join(" "));
        }
    }
}

/// Shows what the `nsfilter` command says about the namespaces that exist
/// now: their names, and their counters.
fn print_names() -> GuestResult {
    println!(
        "\n== Namespaces by name: the nsfilter command\n  \
         The kernel knows a namespace by its inode; `nsfilter netns` names each\n  \
         one (ip netns names, the processes in it, a container's id), `nsfilter\n  \
         stat` shows their counters side by side (and `nsfilter log` adds\n  \
         NAME= after NETNS=, `nsfilter filter --netns NAME` filters by name)."
    );
    for cmd in ["netns", "stat"] {
        let out = Command::new(NSFILTER)
            .arg(cmd)
            .output()
            .map_err(|e| format!("failed to run {NSFILTER}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "nsfilter {cmd} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        println!("  $ nsfilter {cmd}");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            println!("  {line}");
        }
    }
    Ok(())
}

/// The lesson behind `make run`: the five labs, one after the other, with the
/// lines each namespace logged.
pub(super) fn lesson() -> GuestResult {
    let mut ctx = Ctx::new(&QUICK)?;
    println!("== Loading nsfilter");
    ctx.load()?;
    println!("  {LOADED_LINE}");
    for (i, (title, what, lab)) in LABS.iter().enumerate() {
        println!("\n== {title}\n  {what}");
        ctx.mark();
        lab(&mut ctx)?;
        print_by_namespace(&mut ctx);
        if i == 0 {
            print_names()?;
        }
        clean_up()?;
    }
    println!("\n== Unloading nsfilter");
    ctx.unload()?;
    println!("  {UNLOADED_LINE}");
    Ok(())
}
