//! Every network namespace on the machine and its names: `ip netns` names
//! (nsfs mounts in `/run/netns`), other nsfs mounts (Docker's
//! `/run/docker/netns/...`), the processes in it and their containers.
//! Also resolves what the user typed (`blue`, `4026532124`, `docker:3f1c2a9b8d7e`)
//! to an inode.

use crate::cgroup::{self, Container};
use crate::error::{usage, Result};
use crate::root::Root;
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The inode the kernel gives the initial network namespace since Linux
/// 6.17 (`PROC_NET_INIT_INO`); before, it is allocated like any other.
const PROC_NET_INIT_INO: u64 = 0xEFFF_FFF9;

/// A process in a namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    /// Its pid, in the tool's pid namespace.
    pub pid: u32,
    /// Its command name, `/proc/PID/comm`.
    pub comm: String,
}

/// One network namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Namespace {
    /// Its inode number: the `NETNS=` of its log lines.
    pub inode: u64,
    /// Whether it is the initial namespace (pid 1's).
    pub initial: bool,
    /// Its `ip netns` names, sorted.
    pub names: Vec<String>,
    /// Other places it is mounted (not in `/run/netns`), sorted.
    pub mounts: Vec<PathBuf>,
    /// The processes in it, by pid.
    pub processes: Vec<Process>,
    /// The containers its processes belong to, sorted, each once.
    pub containers: Vec<Container>,
    /// The systemd services its processes run in, sorted, each once; none
    /// for the initial namespace, where every daemon runs.
    pub services: Vec<String>,
}

impl Namespace {
    /// The names the log shows for it: `ip netns` names, then containers,
    /// then services.
    pub fn labels(&self) -> Vec<String> {
        let mut out = self.names.clone();
        out.extend(self.containers.iter().map(Container::label));
        out.extend(self.services.iter().cloned());
        out
    }
}

/// What discovery found.
#[derive(Clone, Debug, Default)]
pub struct Machine {
    /// The namespaces, the initial one first, then by inode.
    pub namespaces: Vec<Namespace>,
    /// Processes whose namespace could not be read (no permission).
    pub hidden: usize,
}

/// The inode in a namespace link's text, `net:[4026531840]`.
pub fn parse_link(text: &str) -> Option<u64> {
    text.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') << 6 | (d[1] - b'0') << 3 | (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The network namespaces mounted somewhere, from the text of
/// `/proc/self/mountinfo`: (mount point, inode), in mount order.
pub fn nsfs_mounts(mountinfo: &str) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(dash) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if fields.get(dash + 1) != Some(&"nsfs") || dash < 5 {
            continue;
        }
        if let Some(inode) = parse_link(&unescape_mount(fields[3])) {
            out.push((PathBuf::from(unescape_mount(fields[4])), inode));
        }
    }
    out
}

/// Reads a namespace link, `/proc/PID/ns/net`.
fn read_link(path: &Path) -> io::Result<u64> {
    let target = fs::read_link(path)?;
    parse_link(&target.to_string_lossy()).ok_or_else(|| io::ErrorKind::InvalidData.into())
}

/// Finds every namespace that a process is in or a mount holds.
pub fn discover(root: &Root) -> Machine {
    let mut by_inode: BTreeMap<u64, Namespace> = BTreeMap::new();
    let mut hidden = 0;

    // Processes.
    let mut pids: Vec<u32> = fs::read_dir(&root.proc)
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    pids.sort_unstable();
    for pid in pids {
        let dir = root.proc.join(pid.to_string());
        let inode = match read_link(&dir.join("ns/net")) {
            Ok(inode) => inode,
            // Gone meanwhile, or a kernel without network namespaces.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(_) => {
                hidden += 1;
                continue;
            }
        };
        let comm = fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let ns = namespace(&mut by_inode, inode);
        ns.processes.push(Process {
            pid,
            comm: comm.trim_end_matches('\n').to_string(),
        });
        let cgroup_file = fs::read_to_string(dir.join("cgroup")).unwrap_or_default();
        if let Some(c) = cgroup::container(&cgroup_file) {
            if !ns.containers.contains(&c) {
                ns.containers.push(c);
            }
        } else if let Some(unit) = cgroup::service(&cgroup_file) {
            if !ns.services.contains(&unit) {
                ns.services.push(unit);
            }
        }
    }

    // Mounts: `ip netns` names, and any other nsfs mount of a netns.
    let mounts = fs::read_to_string(root.proc.join("self/mountinfo"))
        .ok()
        .map(|text| nsfs_mounts(&text));
    let mut named: Vec<(String, u64)> = Vec::new();
    if let Ok(dir) = fs::read_dir(&root.run_netns) {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = root.run_netns.join(&name);
            let inode = match &mounts {
                // Mounted there (the last mount on a path is the one seen);
                // a file without a mount is left over from a failed `ip netns add`.
                Some(m) => m.iter().rev().find(|(p, _)| *p == path).map(|(_, i)| *i),
                None => fs::metadata(&path).ok().map(|m| m.ino()),
            };
            if let Some(inode) = inode {
                named.push((name, inode));
            }
        }
    }
    for (name, inode) in named {
        namespace(&mut by_inode, inode).names.push(name);
    }
    for (path, inode) in mounts.unwrap_or_default() {
        if path.parent() != Some(root.run_netns.as_path()) {
            let ns = namespace(&mut by_inode, inode);
            if !ns.mounts.contains(&path) {
                ns.mounts.push(path);
            }
        }
    }

    let initial = read_link(&root.proc.join("1/ns/net")).ok().or_else(|| {
        by_inode
            .contains_key(&PROC_NET_INIT_INO)
            .then_some(PROC_NET_INIT_INO)
    });
    let mut namespaces: Vec<Namespace> = by_inode.into_values().collect();
    for ns in &mut namespaces {
        ns.initial = Some(ns.inode) == initial;
        ns.names.sort();
        ns.mounts.sort();
        ns.containers.sort();
        if ns.initial {
            ns.services.clear();
        }
        ns.services.sort();
    }
    namespaces.sort_by_key(|ns| (!ns.initial, ns.inode));
    Machine { namespaces, hidden }
}

/// The namespace `inode` in `map`, created empty if new.
fn namespace(map: &mut BTreeMap<u64, Namespace>, inode: u64) -> &mut Namespace {
    map.entry(inode).or_insert_with(|| Namespace {
        inode,
        ..Namespace::default()
    })
}

impl Machine {
    /// The namespace with this inode.
    pub fn find(&self, inode: u64) -> Option<&Namespace> {
        self.namespaces.iter().find(|ns| ns.inode == inode)
    }

    /// The log's names for namespace `inode`; none if it is unknown.
    pub fn labels(&self, inode: u64) -> Vec<String> {
        self.find(inode).map(Namespace::labels).unwrap_or_default()
    }

    /// The inode that `spec` names: an `ip netns` name, an inode number, a
    /// container (`docker:3f1c2a9b8d7e`, or a unique prefix of at least 4
    /// digits of its id), a systemd service (`NAME.service`) or the path of
    /// an nsfs mount. Anything else is a usage error.
    pub fn resolve(&self, spec: &str) -> Result<u64> {
        if let Some(ns) = self
            .namespaces
            .iter()
            .find(|ns| ns.names.iter().any(|n| n == spec))
        {
            return Ok(ns.inode);
        }
        if !spec.is_empty() && spec.bytes().all(|b| b.is_ascii_digit()) {
            return spec
                .parse()
                .map_err(|_| usage(format!("namespace inode {spec} is out of range")));
        }
        let id = spec.rsplit(':').next().unwrap_or(spec).to_ascii_lowercase();
        let runtime = spec.rsplit_once(':').map(|(r, _)| r);
        let is_hex = id.len() >= 4 && id.bytes().all(|b| b.is_ascii_hexdigit());
        let mut hits: Vec<u64> = Vec::new();
        for ns in &self.namespaces {
            let by_container = is_hex
                && ns
                    .containers
                    .iter()
                    .any(|c| c.id.starts_with(&id) && runtime.is_none_or(|r| r == c.runtime));
            let by_mount = ns.mounts.iter().any(|m| m.as_os_str() == spec);
            let by_service = ns.services.iter().any(|u| u == spec);
            if (by_container || by_mount || by_service) && !hits.contains(&ns.inode) {
                hits.push(ns.inode);
            }
        }
        match hits.as_slice() {
            [inode] => Ok(*inode),
            [] => Err(usage(format!(
                "unknown network namespace '{spec}': not an 'ip netns' name, an inode number, a container or a service (see 'nsfilter netns')"
            ))),
            _ => Err(usage(format!(
                "'{spec}' names more than one network namespace (give more of the container id)"
            ))),
        }
    }
}

#[cfg(test)]
pub mod tests {
    //! A fake `/proc` and `/run/netns` in a temporary folder, shared with
    //! the other modules' tests.

    use super::*;
    use std::os::unix::fs::symlink;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A temporary folder, removed when dropped.
    pub struct TempDir(pub PathBuf);

    impl TempDir {
        /// A new, empty folder.
        pub fn new() -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "nsfilter-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).unwrap();
            Self(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// A fake machine: a folder with `proc/`, `run/netns/`, `sys/`, `dev/`.
    pub struct Fake {
        /// The folder.
        pub dir: TempDir,
        /// Its paths.
        pub root: Root,
        mountinfo: String,
    }

    impl Fake {
        /// An empty machine.
        pub fn new() -> Self {
            let dir = TempDir::new();
            let root = Root::under(&dir.0);
            for d in [&root.proc, &root.run_netns, &root.sys] {
                fs::create_dir_all(d).unwrap();
            }
            fs::create_dir_all(root.proc.join("self")).unwrap();
            fs::create_dir_all(root.kmsg.parent().unwrap()).unwrap();
            let fake = Self {
                dir,
                root,
                mountinfo: "22 27 0:21 / /proc rw,relatime - proc proc rw\n".into(),
            };
            fake.write_mountinfo();
            fake
        }

        fn write_mountinfo(&self) {
            fs::write(self.root.proc.join("self/mountinfo"), &self.mountinfo).unwrap();
        }

        /// A process `pid` called `comm` in namespace `inode`, in `cgroup`.
        pub fn process(&self, pid: u32, comm: &str, inode: u64, cgroup: &str) {
            let dir = self.root.proc.join(pid.to_string());
            fs::create_dir_all(dir.join("ns")).unwrap();
            symlink(format!("net:[{inode}]"), dir.join("ns/net")).unwrap();
            fs::write(dir.join("comm"), format!("{comm}\n")).unwrap();
            fs::write(dir.join("cgroup"), format!("0::{cgroup}\n")).unwrap();
        }

        /// An nsfs mount of namespace `inode` at `path` (absolute, or a
        /// name in `run/netns`).
        pub fn mount(&mut self, path: &str, inode: u64) {
            let path = if path.starts_with('/') {
                PathBuf::from(path)
            } else {
                let p = self.root.run_netns.join(path);
                fs::write(&p, "").unwrap();
                p
            };
            let escaped = path.to_string_lossy().replace(' ', "\\040");
            self.mountinfo.push_str(&format!(
                "{} 30 0:4 net:[{inode}] {escaped} rw shared:5 - nsfs nsfs rw\n",
                100 + self.mountinfo.lines().count()
            ));
            self.write_mountinfo();
        }
    }

    const ID: &str = "3f1c2a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a";

    /// The machine most tests use: the initial namespace, `blue` (a name
    /// and a process), `red` (only a name), a Docker container.
    pub fn sample() -> Fake {
        let mut f = Fake::new();
        f.process(1, "systemd", 4026531840, "/init.scope");
        f.process(2, "kthreadd", 4026531840, "/");
        f.process(10, "sshd", 4026531840, "/system.slice/ssh.service");
        f.process(
            11,
            "bash",
            4026531840,
            "/user.slice/user-0.slice/session-1.scope",
        );
        f.process(300, "sleep", 4026532124, "/user.slice/session-1.scope");
        f.process(
            400,
            "nginx",
            4026532300,
            &format!("/system.slice/docker-{ID}.scope"),
        );
        f.process(
            401,
            "nginx",
            4026532300,
            &format!("/system.slice/docker-{ID}.scope"),
        );
        f.mount("blue", 4026532124);
        f.mount("red", 4026532200);
        f.mount("/run/docker/netns/a1b2c3", 4026532300);
        // A name left over by a failed `ip netns add`: no mount.
        fs::write(f.root.run_netns.join("stale"), "").unwrap();
        f
    }

    #[test]
    fn link_and_mountinfo_parsing() {
        assert_eq!(parse_link("net:[4026531840]"), Some(4026531840));
        assert_eq!(parse_link("mnt:[4026531840]"), None);
        assert_eq!(parse_link("net:[x]"), None);
        let text = "22 27 0:21 / /proc rw - proc proc rw\n\
                    601 27 0:4 net:[4026532124] /run/netns/my\\040ns rw shared:1 - nsfs nsfs rw\n\
                    602 27 0:4 mnt:[4026532999] /tmp/m rw - nsfs nsfs rw\n\
                    bad line\n";
        assert_eq!(
            nsfs_mounts(text),
            vec![(PathBuf::from("/run/netns/my ns"), 4026532124)]
        );
    }

    #[test]
    fn discovers_names_processes_and_containers() {
        let f = sample();
        let m = discover(&f.root);
        let inodes: Vec<u64> = m.namespaces.iter().map(|n| n.inode).collect();
        assert_eq!(inodes, [4026531840, 4026532124, 4026532200, 4026532300]);
        let init = &m.namespaces[0];
        assert!(init.initial);
        assert_eq!(init.processes.len(), 4);
        assert_eq!(
            init.processes[0],
            Process {
                pid: 1,
                comm: "systemd".into()
            }
        );
        assert!(init.names.is_empty() && init.containers.is_empty());
        let blue = m.find(4026532124).unwrap();
        assert_eq!(blue.names, ["blue"]);
        assert_eq!(blue.processes[0].pid, 300);
        assert!(!blue.initial);
        let red = m.find(4026532200).unwrap();
        assert_eq!(red.names, ["red"]);
        assert!(red.processes.is_empty());
        let docker = m.find(4026532300).unwrap();
        assert_eq!(docker.labels(), ["docker:3f1c2a9b8d7e"]);
        assert_eq!(docker.mounts, [PathBuf::from("/run/docker/netns/a1b2c3")]);
        assert_eq!(m.labels(4026532124), ["blue"]);
        assert!(m.labels(1).is_empty());
        assert_eq!(m.hidden, 0);
    }

    #[test]
    fn services_name_their_own_namespaces_only() {
        let f = sample();
        f.process(
            500,
            "ping",
            4026532500,
            "/system.slice/nsfilter-demo.service",
        );
        f.process(
            501,
            "sleep",
            4026532500,
            "/system.slice/nsfilter-demo.service",
        );
        f.process(20, "cron", 4026531840, "/system.slice/cron.service");
        let m = discover(&f.root);
        let demo = m.find(4026532500).unwrap();
        assert_eq!(demo.services, ["nsfilter-demo.service"]);
        assert_eq!(m.labels(4026532500), ["nsfilter-demo.service"]);
        // Every daemon runs in the initial namespace: none names it.
        assert!(m.find(4026531840).unwrap().services.is_empty());
        assert!(m.find(4026532300).unwrap().services.is_empty());
        assert_eq!(m.resolve("nsfilter-demo.service"), Ok(4026532500));
        assert!(m.resolve("cron.service").is_err());
        assert!(m.resolve("nsfilter-demo").is_err());
    }

    #[test]
    fn resolves_names_inodes_containers_and_mounts() {
        let m = discover(&sample().root);
        assert_eq!(m.resolve("blue"), Ok(4026532124));
        assert_eq!(m.resolve("red"), Ok(4026532200));
        assert_eq!(m.resolve("4026531840"), Ok(4026531840));
        assert_eq!(m.resolve("12"), Ok(12));
        assert_eq!(m.resolve("docker:3f1c2a9b8d7e"), Ok(4026532300));
        assert_eq!(m.resolve("3f1c"), Ok(4026532300));
        assert_eq!(m.resolve(ID), Ok(4026532300));
        assert_eq!(m.resolve("/run/docker/netns/a1b2c3"), Ok(4026532300));
        for bad in ["green", "stale", "podman:3f1c2a9b8d7e", "3f1", ""] {
            let e = m.resolve(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
            assert!(
                e.to_string().starts_with("unknown network namespace '"),
                "{e}"
            );
        }
        assert!(m.resolve("99999999999999999999").is_err());
    }

    #[test]
    fn no_mountinfo_falls_back_to_stat_and_fixed_initial_inode() {
        let f = Fake::new();
        fs::remove_file(f.root.proc.join("self/mountinfo")).unwrap();
        fs::write(f.root.run_netns.join("blue"), "").unwrap();
        let ino = fs::metadata(f.root.run_netns.join("blue")).unwrap().ino();
        // pid 1 unreadable: the fixed inode of 6.16+ marks the initial one.
        f.process(5, "init", PROC_NET_INIT_INO, "/");
        fs::create_dir_all(f.root.proc.join("6/ns")).unwrap();
        fs::create_dir(f.root.proc.join("6/ns/net")).unwrap();
        let m = discover(&f.root);
        assert_eq!(m.resolve("blue"), Ok(ino));
        assert!(m.find(PROC_NET_INIT_INO).unwrap().initial);
        assert_eq!(m.hidden, 1);
    }
}
