//! Which container or systemd service a process runs in, read from its
//! `/proc/PID/cgroup`: the container runtimes name the cgroup after the
//! container's 64-hex-digit id, and systemd after the unit.

/// A container: its runtime and id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Container {
    /// `docker`, `podman`, `containerd`, `crio` or `kubernetes` (a
    /// `/kubepods/...` path that does not say which runtime).
    pub runtime: &'static str,
    /// The full id, 64 lowercase hex digits.
    pub id: String,
}

impl Container {
    /// The id as `docker ps` shows it: its first 12 digits.
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }

    /// `runtime:short-id`, e.g. `docker:3f1c2a9b8d7e`: how the tool names it.
    pub fn label(&self) -> String {
        format!("{}:{}", self.runtime, self.short_id())
    }
}

/// Whether `s` is a container id: exactly 64 hex digits.
fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The container a cgroup path component names, if it names one:
/// `docker-ID.scope`, `libpod-ID.scope`, `cri-containerd-ID.scope`,
/// `crio-ID.scope` (systemd's cgroup driver), or the bare `ID` under
/// `/docker/` or `/kubepods` (the cgroupfs driver).
fn component(parent: &[&str], part: &str) -> Option<Container> {
    let scoped = [
        ("docker-", "docker"),
        ("libpod-", "podman"),
        ("cri-containerd-", "containerd"),
        ("crio-", "crio"),
    ];
    if let Some(stem) = part.strip_suffix(".scope") {
        for (prefix, runtime) in scoped {
            if let Some(id) = stem.strip_prefix(prefix).filter(|id| is_id(id)) {
                return Some(Container {
                    runtime,
                    id: id.to_ascii_lowercase(),
                });
            }
        }
        return None;
    }
    if !is_id(part) {
        return None;
    }
    let runtime = if parent.last() == Some(&"docker") {
        "docker"
    } else if parent.iter().any(|p| p.starts_with("kubepods")) {
        "kubernetes"
    } else if parent.last() == Some(&"libpod_parent") {
        "podman"
    } else {
        return None;
    };
    Some(Container {
        runtime,
        id: part.to_ascii_lowercase(),
    })
}

/// The container named by the text of a `/proc/PID/cgroup` file, if any:
/// the deepest component of any line's path that names one. Conmon's
/// `libpod-conmon-ID.scope` is not the container and does not count.
pub fn container(cgroup_file: &str) -> Option<Container> {
    let mut found = None;
    for line in cgroup_file.lines() {
        // hierarchy-ID:controller-list:cgroup-path
        let Some(path) = line.splitn(3, ':').nth(2) else {
            continue;
        };
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        for i in (0..parts.len()).rev() {
            if let Some(c) = component(&parts[..i], parts[i]) {
                found = Some(c);
                break;
            }
        }
        if found.is_some() {
            break;
        }
    }
    found
}

/// Whether `s` is a systemd service's unit name: `NAME.service`, the name
/// of systemd's unit-name characters (`@` for an instance).
fn is_service(s: &str) -> bool {
    s.strip_suffix(".service").is_some_and(|stem| {
        !stem.is_empty()
            && stem
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
    })
}

/// The systemd service named by the text of a `/proc/PID/cgroup` file, if
/// any: the deepest component of a line's path that is a `.service` unit
/// (`/system.slice/NAME.service`, or a user's
/// `.../user@1000.service/app.slice/NAME.service`). A service run with
/// `PrivateNetwork=yes` has a network namespace of its own, which this
/// names.
pub fn service(cgroup_file: &str) -> Option<String> {
    cgroup_file.lines().find_map(|line| {
        line.splitn(3, ':')
            .nth(2)?
            .rsplit('/')
            .find(|part| is_service(part))
            .map(str::to_string)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f1c2a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a";

    fn of(path: &str) -> Option<(&'static str, String)> {
        container(&format!("0::{path}\n")).map(|c| (c.runtime, c.short_id().to_string()))
    }

    #[test]
    fn docker_both_drivers() {
        let want = Some(("docker", "3f1c2a9b8d7e".to_string()));
        assert_eq!(of(&format!("/system.slice/docker-{ID}.scope")), want);
        assert_eq!(of(&format!("/docker/{ID}")), want);
        // cgroup v1: one line per hierarchy.
        let v1 = format!("12:pids:/docker/{ID}\n11:cpu,cpuacct:/docker/{ID}\n0::/\n");
        assert_eq!(
            container(&v1).map(|c| c.label()),
            Some("docker:3f1c2a9b8d7e".into())
        );
    }

    #[test]
    fn podman_and_not_conmon() {
        let want = Some(("podman", "3f1c2a9b8d7e".to_string()));
        assert_eq!(
            of(&format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container")),
            want
        );
        assert_eq!(of(&format!("/machine.slice/libpod-{ID}.scope")), want);
        assert_eq!(of(&format!("/libpod_parent/{ID}")), want);
        assert_eq!(
            of(&format!("/machine.slice/libpod-conmon-{ID}.scope")),
            None
        );
    }

    #[test]
    fn containerd_crio_and_kubernetes() {
        let systemd = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_5678.slice/cri-containerd-{ID}.scope"
        );
        assert_eq!(of(&systemd), Some(("containerd", "3f1c2a9b8d7e".into())));
        assert_eq!(
            of(&format!("/kubepods.slice/crio-{ID}.scope")),
            Some(("crio", "3f1c2a9b8d7e".into()))
        );
        assert_eq!(
            of(&format!("/kubepods/burstable/pod0f6e-11aa/{ID}")),
            Some(("kubernetes", "3f1c2a9b8d7e".into()))
        );
        assert_eq!(
            of(&format!("/kubepods/besteffort/pod1/{}", ID.to_uppercase())).map(|c| c.1),
            Some("3f1c2a9b8d7e".into())
        );
    }

    #[test]
    fn plain_systemd_and_odd_paths_are_no_container() {
        assert_eq!(of("/user.slice/user-1000.slice/session-2.scope"), None);
        assert_eq!(of("/system.slice/ssh.service"), None);
        assert_eq!(of("/"), None);
        assert_eq!(
            of(&format!("/system.slice/docker-{}.scope", &ID[1..])),
            None
        );
        assert_eq!(of(&format!("/elsewhere/{ID}")), None);
        assert_eq!(container("garbage without colons"), None);
        assert_eq!(container(""), None);
    }

    #[test]
    fn services_are_the_deepest_service_unit() {
        let svc = |path: &str| service(&format!("0::{path}\n"));
        assert_eq!(
            svc("/system.slice/nsfilter-demo.service"),
            Some("nsfilter-demo.service".into())
        );
        assert_eq!(
            svc("/system.slice/system-getty.slice/getty@tty1.service"),
            Some("getty@tty1.service".into())
        );
        assert_eq!(
            svc("/user.slice/user-1000.slice/user@1000.service/app.slice/web.service"),
            Some("web.service".into())
        );
        assert_eq!(
            svc("/user.slice/user-1000.slice/user@1000.service/init.scope"),
            Some("user@1000.service".into())
        );
        assert_eq!(svc(&format!("/system.slice/docker-{ID}.scope")), None);
        assert_eq!(svc("/user.slice/user-0.slice/session-1.scope"), None);
        assert_eq!(svc("/init.scope"), None);
        assert_eq!(svc("/system.slice/.service"), None);
        assert_eq!(svc("/system.slice/a b.service"), None);
        // cgroup v1: systemd's own hierarchy names it.
        assert_eq!(
            service("12:cpu,cpuacct:/\n1:name=systemd:/system.slice/cron.service\n"),
            Some("cron.service".into())
        );
    }
}
