//! Builds the lab VM's initramfs: busybox, iproute2's `ip` and nftables'
//! `nft` with their shared libraries, this very program (the in-guest agent),
//! the module and `/init`.

use crate::arch::Arch;
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

/// Where the guest's programs come from.
pub struct Programs {
    /// The agent, built for the guest's architecture.
    pub agent: PathBuf,
    /// The `nsfilter` command, built beside it.
    pub command: PathBuf,
    /// For a guest of another architecture than the host's: a root of its
    /// Debian packages (scripts/guest-root.sh) that holds busybox, `ip` and
    /// `nft` and their libraries, with that architecture's multiarch name.
    /// `None`: the host's own programs.
    pub root: Option<(PathBuf, &'static str)>,
}

impl Programs {
    /// The programs for a guest of `arch`: the host's own and this very
    /// program where they match; otherwise the agent cargo built for
    /// `arch`'s Rust target beside this program (`target/TRIPLE/release`),
    /// and the programs of `root`.
    pub fn for_arch(arch: Arch, root: Option<&Path>) -> Result<Programs> {
        let exe = std::env::current_exe().step(|| "failed to find this program's path".into())?;
        if arch == Arch::host() {
            // Cargo builds the workspace's two programs side by side.
            let command = exe.with_file_name("nsfilter");
            return Ok(Programs {
                agent: exe,
                command,
                root: None,
            });
        }
        let root = root.ok_or_else(|| {
            Error::Usage(format!(
                "an {} kernel needs --guest-root, a root of {} programs (make passes it)",
                arch.name(),
                arch.name()
            ))
        })?;
        if !root.join("usr/sbin/ip").is_file() {
            return Err(Error::Setup(format!(
                "{} holds no usr/sbin/ip: not a guest root (run 'make kernel' with \
                 KERNEL=lab-{1} or debian-{1})",
                root.display(),
                arch.name()
            )));
        }
        // target/release/nsfilter-lab -> target/TRIPLE/release/
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .map(|target| target.join(arch.rust_target()).join("release"))
            .ok_or_else(|| Error::Setup(format!("no folder above {}", exe.display())))?;
        let agent = dir.join("nsfilter-lab");
        if !agent.is_file() {
            return Err(Error::Setup(format!(
                "no nsfilter-lab built for {0} at {1} (run 'make lab' with KERNEL=lab-{0} \
                 or debian-{0})",
                arch.name(),
                agent.display()
            )));
        }
        Ok(Programs {
            command: dir.join("nsfilter"),
            agent,
            root: Some((root.to_path_buf(), arch.multiarch())),
        })
    }
}

/// What goes into an initramfs.
pub struct Contents<'a> {
    /// Where the programs come from.
    pub programs: &'a Programs,
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
    let programs = contents.programs;
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
    match &programs.root {
        None => {
            copy_file(&mut w, &mut dirs, Path::new(BUSYBOX), BUSYBOX, 0o755)?;
            copy_binary(&mut w, &mut dirs, Path::new(IPROUTE2), guest_path::IP)?;
            copy_binary(&mut w, &mut dirs, Path::new(NFTABLES), guest_path::NFT)?;
        }
        Some((root, multiarch)) => {
            // Debian's busybox-static, at /usr/bin in its package.
            let busybox = root.join("usr/bin/busybox");
            copy_file(&mut w, &mut dirs, &busybox, BUSYBOX, 0o755)?;
            for (program, guest) in [(IPROUTE2, guest_path::IP), (NFTABLES, guest_path::NFT)] {
                copy_from_root(&mut w, &mut dirs, root, multiarch, program, guest)?;
            }
        }
    }
    w.symlink("/bin/sh", "busybox").map_err(write)?;
    copy_binary(&mut w, &mut dirs, &programs.agent, guest_path::AGENT)?;
    if !programs.command.is_file() {
        return Err(Error::Setup(format!(
            "no {} beside the lab program (build both with 'make lab')",
            programs.command.display()
        )));
    }
    copy_binary(&mut w, &mut dirs, &programs.command, guest_path::NSFILTER)?;
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

/// Copies `program` of a guest root and, found in that root, the shared
/// libraries it needs and theirs, and its loader at the path it asks for.
/// `ldd` cannot run another architecture's loader, so each file's
/// `readelf -d -l` says what it needs.
fn copy_from_root<W: std::io::Write>(
    w: &mut CpioWriter<W>,
    dirs: &mut BTreeSet<String>,
    root: &Path,
    multiarch: &str,
    program: &str,
    guest: &str,
) -> Result<()> {
    let host = in_root(root, program)
        .ok_or_else(|| Error::Setup(format!("no {program} in {}", root.display())))?;
    copy_file(w, dirs, &host, guest, 0o755)?;
    let mut todo = vec![host];
    while let Some(file) = todo.pop() {
        let (interpreter, needed) = elf_needs(&file)?;
        if let Some(interp) = interpreter {
            let found = in_root(root, &interp).ok_or_else(|| {
                Error::Setup(format!(
                    "no {interp} (loader of {program}) in {}",
                    root.display()
                ))
            })?;
            if dirs.insert(interp.clone()) {
                copy_file(w, dirs, &found, &interp, 0o755)?;
            }
        }
        for name in needed {
            let (guest_lib, found) = [format!("/usr/lib/{multiarch}"), format!("/lib/{multiarch}")]
                .into_iter()
                .chain(["/usr/lib".into(), "/lib".into()])
                .map(|dir| format!("{dir}/{name}"))
                .find_map(|path| Some((path.clone(), in_root(root, &path)?)))
                .ok_or_else(|| {
                    Error::Setup(format!(
                        "no {name} (needed by {program}) in {}",
                        root.display()
                    ))
                })?;
            if dirs.insert(guest_lib.clone()) {
                copy_file(w, dirs, &found, &guest_lib, 0o755)?;
                todo.push(found);
            }
        }
    }
    Ok(())
}

/// `path` inside `root`, with symbolic links followed inside it (an
/// absolute target is read from `root` too), and a path under `/lib`,
/// `/bin` or `/sbin` also looked for under `/usr`: an unpacked root lacks
/// the links of Debian's merged `/usr`.
fn in_root(root: &Path, path: &str) -> Option<PathBuf> {
    let path = path.trim_start_matches('/');
    [path.to_string(), format!("usr/{path}")]
        .into_iter()
        .find_map(|p| {
            let mut at = root.join(p);
            for _ in 0..40 {
                match fs::read_link(&at) {
                    Ok(target) => {
                        at = match target.strip_prefix("/") {
                            Ok(absolute) => root.join(absolute),
                            Err(_) => at.parent()?.join(target),
                        }
                    }
                    Err(_) => break,
                }
            }
            at.is_file().then_some(at)
        })
}

/// The loader a program asks for, and the libraries it needs, from
/// `readelf -d -l`.
fn elf_needs(file: &Path) -> Result<(Option<String>, Vec<String>)> {
    let out = Command::new("readelf")
        .args(["-d", "-l", "--wide"])
        .arg(file)
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                Error::Setup("readelf not found (package binutils; run 'make setup')".into())
            }
            _ => Error::Io {
                step: format!("failed to run readelf on {}", file.display()),
                source: e,
            },
        })?;
    if !out.status.success() {
        return Err(Error::Setup(format!(
            "readelf could not read {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(parse_readelf(&String::from_utf8_lossy(&out.stdout)))
}

/// Parses `readelf -d -l`: the `[Requesting program interpreter: PATH]`
/// line and each `(NEEDED) Shared library: [NAME]`.
pub fn parse_readelf(text: &str) -> (Option<String>, Vec<String>) {
    let bracketed = |line: &str, key: &str| -> Option<String> {
        let rest = &line[line.find(key)? + key.len()..];
        Some(rest[..rest.find(']')?].trim().to_string())
    };
    let interpreter = text
        .lines()
        .find_map(|l| bracketed(l, "[Requesting program interpreter:"));
    let needed = text
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| bracketed(l, "Shared library: ["))
        .collect();
    (interpreter, needed)
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
    fn readelf_output_is_parsed() {
        let text = "      [Requesting program interpreter: /lib/ld-linux-aarch64.so.1]\n\
                    \n\
                    Dynamic section at offset 0x1 contains 30 entries:\n\
                    \x20 0x0000000000000001 (NEEDED)             Shared library: [libmnl.so.0]\n\
                    \x20 0x0000000000000001 (NEEDED)             Shared library: [libc.so.6]\n\
                    \x20 0x000000000000000e (SONAME)             Library soname: [libx.so.1]\n";
        assert_eq!(
            parse_readelf(text),
            (
                Some("/lib/ld-linux-aarch64.so.1".to_string()),
                vec!["libmnl.so.0".to_string(), "libc.so.6".to_string()]
            )
        );
        assert_eq!(parse_readelf("static"), (None, Vec::new()));
    }

    #[test]
    fn paths_resolve_inside_a_root() {
        let root = std::env::temp_dir().join(format!("nsfilter-root-{}", std::process::id()));
        let lib = root.join("usr/lib/aarch64-linux-gnu");
        fs::create_dir_all(&lib).unwrap();
        fs::write(lib.join("ld-2.so"), b"loader").unwrap();
        std::os::unix::fs::symlink("ld-2.so", lib.join("ld.so.1")).unwrap();
        std::os::unix::fs::symlink(
            "/usr/lib/aarch64-linux-gnu/ld.so.1",
            root.join("usr/lib/ld.so"),
        )
        .unwrap();
        // Merged /usr: /lib/... is found under usr/lib; an absolute link is
        // followed inside the root, never on the host.
        assert_eq!(in_root(&root, "/lib/ld.so"), Some(lib.join("ld-2.so")));
        assert_eq!(
            in_root(&root, "/usr/lib/aarch64-linux-gnu/ld.so.1"),
            Some(lib.join("ld-2.so"))
        );
        assert_eq!(in_root(&root, "/lib/missing.so"), None);
        fs::remove_dir_all(&root).unwrap();
    }

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
