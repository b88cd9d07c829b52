//! Where the machine's files are: `/proc`, `/run/netns`, `/sys` and
//! `/dev/kmsg`, or the same under another folder (`--root DIR`), so that the
//! tests can run every command over a fake tree without root.

use std::path::{Path, PathBuf};

/// The paths every command reads and writes.
#[derive(Clone, Debug)]
pub struct Root {
    /// procfs: `/proc`.
    pub proc: PathBuf,
    /// Where `ip netns` mounts named namespaces: `/run/netns`.
    pub run_netns: PathBuf,
    /// sysfs: `/sys`.
    pub sys: PathBuf,
    /// The kernel log device: `/dev/kmsg`.
    pub kmsg: PathBuf,
}

impl Root {
    /// The real machine's paths.
    pub fn system() -> Self {
        Self::under(Path::new("/"))
    }

    /// The same paths under `dir` instead of `/`.
    pub fn under(dir: &Path) -> Self {
        Self {
            proc: dir.join("proc"),
            run_netns: dir.join("run/netns"),
            sys: dir.join("sys"),
            kmsg: dir.join("dev/kmsg"),
        }
    }

    /// `/sys/module/nsfilter`: present while the module is loaded.
    pub fn module_dir(&self) -> PathBuf {
        self.sys.join("module/nsfilter")
    }

    /// `/sys/module/nsfilter/parameters/NAME`.
    pub fn param(&self, name: &str) -> PathBuf {
        self.module_dir().join("parameters").join(name)
    }
}
