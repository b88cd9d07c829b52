//! Builds the lab VM's initramfs: busybox, iproute2's `ip` and nftables'
//! `nft` with their shared libraries, this very program (the in-guest agent),
//! the module and `/init`.

use crate::cpio::CpioWriter;
use crate::error::{on, Context, Error, Result};
use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where things are inside the guest.
pub mod guest_path {
    /// The agent: this same program, run in the guest.
    pub const AGENT: &str = "/bin/nsfilter-lab";
    /// The host-side `nsfilter` command (names, log, stat, filter), which
    /// the lab VM offers too.
    pub const NSFILTER: &str = "/usr/bin/nsfilter";
    /// The module.
    pub const MODULE: &str = "/lib/nsfilter/nsfilter.ko";
    /// iproute2's `ip` (busybox has its own `ip`, which cannot do `netns`).
    pub const IP: &str = "/usr/sbin/ip";
    /// nftables' `nft`, for rules beside nsfilter's hook (NAT, the kernel's
    /// own `log`, chains at other priorities).
    pub const NFT: &str = "/usr/sbin/nft";
    /// The agent's arguments, one per line.
    pub const ARGS: &str = "/etc/nsfilter/args";
    /// Shell functions that make `ip` mean iproute2's in the guest's shells.
    pub const PROFILE: &str = "/etc/nsfilter/profile";
}

/// The marker `/init` prints with the agent's exit status.
pub const EXIT_MARKER: &str = "@@nsfilter-guest-exit ";
/// The marker `/init` prints first: the kernel booted and user space runs.
pub const START_MARKER: &str = "@@nsfilter-guest-start@@";
/// The marker before the guest's `uname -r`, printed by `/init` at boot.
pub const RELEASE_MARKER: &str = "@@nsfilter-release ";
/// The marker before each kernel log line about taint (the kernel's own
/// words on an out-of-tree or unsigned module), printed by the agent at the
/// end from what its report watcher kept (the log itself may have wrapped).
pub const TAINT_LOG_MARKER: &str = "@@nsfilter-taint-log ";

const BUSYBOX: &str = "/bin/busybox";
const IPROUTE2: &str = "/usr/sbin/ip";
const NFTABLES: &str = "/usr/sbin/nft";

/// What goes into an initramfs.
pub struct Contents<'a> {
    /// The module to load, if any.
    pub module: Option<&'a Path>,
    /// The agent's arguments.
    pub agent_args: &'a [String],
    /// Host files or folders to copy in, with their path in the guest.
    pub extra: &'a [(PathBuf, String)],
    /// A distribution kernel's modules: a folder copied to `/lib/modules`
    /// whose file `load` lists the modules `/init` loads, in that order.
    pub kernel_modules: Option<&'a Path>,
}

/// Writes the initramfs for `contents` to `out`.
pub fn build(contents: &Contents<'_>, out: &Path) -> Result<()> {
    let agent = std::env::current_exe().step(|| "failed to find this program's path".into())?;
    let file = File::create(out).step(on("create", out))?;
    let mut w = CpioWriter::new(BufWriter::new(file));
    let write = |e| Error::Io {
        step: format!("failed to write {}", out.display()),
        source: e,
    };

    let mut dirs = BTreeSet::new();
    for d in [
        "/bin",
        "/sbin",
        "/usr/bin",
        "/usr/sbin",
        "/etc/nsfilter",
        "/lib/nsfilter",
        "/proc",
        "/sys",
        "/dev",
        "/run",
        "/tmp",
        "/var",
        "/root",
    ] {
        add_dirs(&mut w, &mut dirs, d).map_err(write)?;
    }
    w.symlink("/var/run", "/run").map_err(write)?;
    copy_file(&mut w, &mut dirs, Path::new(BUSYBOX), BUSYBOX, 0o755)?;
    w.symlink("/bin/sh", "busybox").map_err(write)?;
    copy_binary(&mut w, &mut dirs, Path::new(IPROUTE2), guest_path::IP)?;
    copy_binary(&mut w, &mut dirs, Path::new(NFTABLES), guest_path::NFT)?;
    copy_binary(&mut w, &mut dirs, &agent, guest_path::AGENT)?;
    // Cargo builds the workspace's two programs side by side (userspace/target).
    let command = agent.with_file_name("nsfilter");
    if !command.is_file() {
        return Err(Error::Setup(format!(
            "no {} beside the lab program (build both with 'make lab')",
            command.display()
        )));
    }
    copy_binary(&mut w, &mut dirs, &command, guest_path::NSFILTER)?;
    if let Some(module) = contents.module {
        copy_file(&mut w, &mut dirs, module, guest_path::MODULE, 0o644)?;
    }
    for (host, guest) in contents.extra {
        copy_tree(&mut w, &mut dirs, host, guest)?;
    }
    if let Some(modules) = contents.kernel_modules {
        copy_tree(&mut w, &mut dirs, modules, "/lib/modules")?;
    }

    let args = contents.agent_args.join("\n");
    w.file(guest_path::ARGS, 0o644, args.as_bytes())
        .map_err(write)?;
    w.file(guest_path::PROFILE, 0o644, PROFILE.as_bytes())
        .map_err(write)?;
    w.file("/etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n")
        .map_err(write)?;
    w.file("/etc/group", 0o644, b"root:x:0:\n").map_err(write)?;
    let init = INIT
        .replace("@AGENT@", guest_path::AGENT)
        .replace("@EXIT@", EXIT_MARKER)
        .replace("@START@", START_MARKER)
        .replace("@RELEASE@", RELEASE_MARKER);
    w.file("/init", 0o755, init.as_bytes()).map_err(write)?;
    w.finish()
        .map_err(write)?
        .into_inner()
        .map_err(|e| write(e.into_error()))?;
    Ok(())
}

/// The guest's PID 1: mounts, then runs the agent and reports its status.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s
# iproute2's ip, not busybox's, for programs that look it up on PATH
# (such as `ip netns exec NS ip ...`).
rm -f /bin/ip /sbin/ip /usr/bin/ip
ln -s /usr/sbin/ip /sbin/ip
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /run/netns /lib/modules/$(uname -r)
touch /lib/modules/$(uname -r)/modules.dep
# A distribution kernel's modules that the labs need, in dependency order.
if [ -f /lib/modules/load ]; then
	while read -r m; do insmod "$m" || echo "nsfilter-lab: could not load $m"; done </lib/modules/load
fi
# As Debian's udev does (50-udev-default.rules): any user may open the tun
# device (making a tap still takes CAP_NET_ADMIN in the namespace).
if [ -e /dev/net/tun ]; then chmod 0666 /dev/net/tun; fi
echo
echo "@RELEASE@$(uname -r)@@"
echo "@START@"
@AGENT@ guest
status=$?
echo "@EXIT@$status@@"
reboot -f
"#;

/// Busybox prefers its own applets to programs on `PATH`; a shell function
/// comes first, so `ip` in the guest's shells is iproute2's.
const PROFILE: &str = "ip() { /usr/sbin/ip \"$@\"; }\n";

fn add_dirs<W: std::io::Write>(
    w: &mut CpioWriter<W>,
    done: &mut BTreeSet<String>,
    path: &str,
) -> std::io::Result<()> {
    let mut at = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        at.push('/');
        at.push_str(part);
        if done.insert(at.clone()) {
            w.dir(&at, 0o755)?;
        }
    }
    Ok(())
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("/", |(p, _)| p)
}

fn copy_file<W: std::io::Write>(
    w: &mut CpioWriter<W>,
    dirs: &mut BTreeSet<String>,
    host: &Path,
    guest: &str,
    mode: u32,
) -> Result<()> {
    let data = fs::read(host).step(on("read", host))?;
    let write = |source| Error::Io {
        step: format!("failed to add {} to the initramfs", host.display()),
        source,
    };
    add_dirs(w, dirs, parent(guest)).map_err(write)?;
    w.file(guest, mode, &data).map_err(write)
}

/// Copies a dynamically linked program and the shared libraries it needs.
fn copy_binary<W: std::io::Write>(
    w: &mut CpioWriter<W>,
    dirs: &mut BTreeSet<String>,
    host: &Path,
    guest: &str,
) -> Result<()> {
    copy_file(w, dirs, host, guest, 0o755)?;
    for lib in shared_libraries(host)? {
        let guest_lib = lib.to_string_lossy().into_owned();
        if dirs.insert(guest_lib.clone()) {
            copy_file(w, dirs, &lib, &guest_lib, 0o755)?;
        }
    }
    Ok(())
}

/// The shared libraries `ldd` lists for `binary`, loader included.
fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .step(|| format!("failed to run ldd on {}", binary.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("not a dynamic executable") || !out.status.success() {
        return Ok(Vec::new());
    }
    Ok(parse_ldd(&text))
}

/// Parses `ldd` output: `name => /path (addr)` and `/path (addr)` lines.
pub fn parse_ldd(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.trim(),
                None => line,
            };
            let path = path.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// Copies a host file or folder (recursively) to `guest`.
fn copy_tree<W: std::io::Write>(
    w: &mut CpioWriter<W>,
    dirs: &mut BTreeSet<String>,
    host: &Path,
    guest: &str,
) -> Result<()> {
    let meta = fs::metadata(host).step(on("read", host))?;
    if meta.is_dir() {
        add_dirs(w, dirs, guest).map_err(|source| Error::Io {
            step: format!("failed to add {} to the initramfs", host.display()),
            source,
        })?;
        let mut entries: Vec<_> = fs::read_dir(host)
            .step(on("list", host))?
            .collect::<std::io::Result<_>>()
            .step(on("list", host))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            copy_tree(
                w,
                dirs,
                &entry.path(),
                &format!("{}/{name}", guest.trim_end_matches('/')),
            )?;
        }
        Ok(())
    } else {
        use std::os::unix::fs::PermissionsExt;
        copy_file(w, dirs, host, guest, meta.permissions().mode() & 0o7777)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_is_parsed() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f37)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f37)\n";
        assert_eq!(
            parse_ldd(text),
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
    }
}
