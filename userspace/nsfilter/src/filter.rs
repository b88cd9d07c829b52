//! `nsfilter filter`: sets the module's `netns`, `ports` and `protocols`
//! parameters (in `/sys/module/nsfilter/parameters/`), namespaces given by
//! name, and shows them with the namespaces' names.

use crate::error::{usage, Error, Result};
use crate::netns::{self, Machine};
use crate::root::Root;
use std::fs;
use std::io::{self, Write};

/// The options of `nsfilter filter`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Namespaces (names, inodes, containers), each possibly a comma list.
    pub netns: Vec<String>,
    /// The `ports` list as given.
    pub ports: Option<String>,
    /// The `protocols` list as given.
    pub protocols: Option<String>,
    /// Empty every list first.
    pub clear: bool,
}

/// How many namespaces or ports the module keeps at most.
const MAX_ITEMS: usize = 16;

/// The protocol names the module knows.
const PROTOCOLS: [&str; 7] = ["tcp", "udp", "udplite", "sctp", "icmp", "icmpv6", "other"];

/// Fails unless the module is loaded.
pub fn require_module(root: &Root) -> Result<()> {
    if root.module_dir().is_dir() {
        Ok(())
    } else {
        Err(Error::Failed(
            "module nsfilter is not loaded (no /sys/module/nsfilter)".into(),
        ))
    }
}

/// Checks a `ports` list as the module would: up to 16 numbers 1-65535.
fn check_ports(list: &str) -> Result<String> {
    let items: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    for p in &items {
        if !matches!(p.parse::<u32>(), Ok(1..=65535)) {
            return Err(usage(format!(
                "bad port '{p}': a port is a number from 1 to 65535"
            )));
        }
    }
    if items.len() > MAX_ITEMS {
        return Err(usage(format!("at most {MAX_ITEMS} ports")));
    }
    Ok(items.join(","))
}

/// Checks a `protocols` list: names the module knows.
fn check_protocols(list: &str) -> Result<String> {
    let items: Vec<String> = list
        .split(',')
        .map(|p| p.trim().to_ascii_lowercase())
        .filter(|p| !p.is_empty())
        .collect();
    if let Some(bad) = items.iter().find(|p| !PROTOCOLS.contains(&p.as_str())) {
        return Err(usage(format!(
            "unknown protocol '{bad}': want {}",
            PROTOCOLS.join(", ")
        )));
    }
    Ok(items.join(","))
}

/// Resolves the namespaces to the `netns` list: inodes, each once.
fn netns_list(machine: &Machine, specs: &[String]) -> Result<String> {
    let mut inodes: Vec<u64> = Vec::new();
    for spec in specs.iter().flat_map(|s| s.split(',')).map(str::trim) {
        if spec.is_empty() {
            continue;
        }
        let inode = machine.resolve(spec)?;
        if inode == 0 || inode > u64::from(u32::MAX) {
            return Err(usage(format!("namespace inode {inode} is out of range")));
        }
        if !inodes.contains(&inode) {
            inodes.push(inode);
        }
    }
    if inodes.len() > MAX_ITEMS {
        return Err(usage(format!("at most {MAX_ITEMS} namespaces")));
    }
    Ok(inodes
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(","))
}

/// Writes parameter `name`.
fn write_param(root: &Root, name: &str, value: &str) -> Result<()> {
    let path = root.param(name);
    if !path.exists() {
        return Err(Error::Failed(format!(
            "module nsfilter has no parameter {name} ({} is missing)",
            path.display()
        )));
    }
    fs::write(&path, format!("{value}\n")).map_err(|e| match e.raw_os_error() {
        Some(22) => Error::Failed(format!(
            "module nsfilter refused {name}={value}: Invalid argument (the kernel log says why)"
        )),
        _ => Error::io("write", &path, &e),
    })
}

/// The value of parameter `name` as the module shows it, with names for
/// the namespaces: `4026532124 (blue), 4026532200` or `(all)`.
fn show_param(root: &Root, machine: &Machine, name: &str) -> Result<String> {
    let path = root.param(name);
    let value = fs::read_to_string(&path).map_err(|e| Error::io("read", &path, &e))?;
    let value = value.trim();
    if value.is_empty() {
        return Ok("(all)".into());
    }
    if name != "netns" {
        return Ok(value.to_string());
    }
    let shown: Vec<String> = value
        .split(',')
        .map(|item| {
            let labels = item
                .trim()
                .parse()
                .map(|n| machine.labels(n))
                .unwrap_or_default();
            match labels.is_empty() {
                true => item.to_string(),
                false => format!("{item} ({})", labels.join(", ")),
            }
        })
        .collect();
    Ok(shown.join(", "))
}

/// Runs `nsfilter filter`: sets what was given, then shows the three lists.
pub fn run(root: &Root, opts: &Options, out: &mut dyn Write) -> Result<()> {
    let machine = netns::discover(root);
    // Check everything before writing anything.
    let mut writes: Vec<(&str, String)> = Vec::new();
    let netns = if opts.netns.is_empty() {
        None
    } else {
        Some(netns_list(&machine, &opts.netns)?)
    };
    let ports = opts.ports.as_deref().map(check_ports).transpose()?;
    let protocols = opts.protocols.as_deref().map(check_protocols).transpose()?;
    for (name, value) in [("netns", netns), ("ports", ports), ("protocols", protocols)] {
        match value {
            Some(v) => writes.push((name, v)),
            None if opts.clear => writes.push((name, String::new())),
            None => {}
        }
    }
    require_module(root)?;
    for (name, value) in &writes {
        write_param(root, name, value)?;
    }
    let mut text = String::new();
    for name in ["netns", "ports", "protocols"] {
        let verb = if writes.iter().any(|(n, _)| *n == name) {
            "set"
        } else {
            "   "
        };
        text.push_str(&format!(
            "{verb} {name:<9} {}\n",
            show_param(root, &machine, name)?
        ));
    }
    out.write_all(text.as_bytes())
        .map_err(|e: io::Error| Error::Failed(format!("cannot write the output: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netns::tests::{sample, Fake};

    fn module(f: &Fake) {
        let dir = f.root.module_dir().join("parameters");
        fs::create_dir_all(&dir).unwrap();
        for p in [
            "enabled",
            "log_rate",
            "log_burst",
            "ports",
            "protocols",
            "netns",
            "log_level",
        ] {
            fs::write(dir.join(p), if p == "enabled" { "Y\n" } else { "\n" }).unwrap();
        }
    }

    fn param(f: &Fake, name: &str) -> String {
        fs::read_to_string(f.root.param(name)).unwrap()
    }

    fn filter(f: &Fake, opts: Options) -> Result<String> {
        let mut out = Vec::new();
        run(&f.root, &opts, &mut out).map(|()| String::from_utf8(out).unwrap())
    }

    #[test]
    fn writes_names_as_inodes() {
        let f = sample();
        module(&f);
        let out = filter(
            &f,
            Options {
                netns: vec![
                    "blue".into(),
                    "4026532200,docker:3f1c2a9b8d7e".into(),
                    "blue".into(),
                ],
                ports: Some("53, 80".into()),
                protocols: Some("UDP,icmp".into()),
                clear: false,
            },
        )
        .unwrap();
        assert_eq!(param(&f, "netns"), "4026532124,4026532200,4026532300\n");
        assert_eq!(param(&f, "ports"), "53,80\n");
        assert_eq!(param(&f, "protocols"), "udp,icmp\n");
        assert_eq!(
            out,
            "set netns     4026532124 (blue), 4026532200 (red), 4026532300 (docker:3f1c2a9b8d7e)\n\
             set ports     53,80\n\
             set protocols udp,icmp\n"
        );
        // Only ports: the rest stays; then --clear empties all.
        let out = filter(
            &f,
            Options {
                ports: Some("22".into()),
                ..Options::default()
            },
        )
        .unwrap();
        assert!(out.contains("    netns     4026532124 (blue)"), "{out}");
        assert!(out.contains("set ports     22\n"), "{out}");
        let out = filter(
            &f,
            Options {
                clear: true,
                ..Options::default()
            },
        )
        .unwrap();
        assert_eq!(
            out,
            "set netns     (all)\nset ports     (all)\nset protocols (all)\n"
        );
        assert_eq!(param(&f, "netns"), "\n");
        // Nothing given: shows.
        let out = filter(&f, Options::default()).unwrap();
        assert_eq!(
            out,
            "    netns     (all)\n    ports     (all)\n    protocols (all)\n"
        );
    }

    #[test]
    fn refuses_before_writing() {
        let f = sample();
        module(&f);
        let bad = [
            Options {
                netns: vec!["green".into()],
                ..Options::default()
            },
            Options {
                netns: vec!["blue".into()],
                ports: Some("http".into()),
                ..Options::default()
            },
            Options {
                ports: Some("0".into()),
                ..Options::default()
            },
            Options {
                ports: Some(
                    (1..=17)
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                ..Options::default()
            },
            Options {
                protocols: Some("tcp,gre".into()),
                ..Options::default()
            },
            Options {
                netns: vec!["99999999999".into()],
                ..Options::default()
            },
        ];
        for opts in bad {
            let e = filter(&f, opts).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{e}");
            assert_eq!(param(&f, "netns"), "\n");
            assert_eq!(param(&f, "ports"), "\n");
        }
        let e = filter(
            &f,
            Options {
                netns: vec!["green".into()],
                ..Options::default()
            },
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("unknown network namespace 'green'"),
            "{e}"
        );
    }

    #[test]
    fn missing_module_or_parameter() {
        let f = sample();
        let e = filter(
            &f,
            Options {
                netns: vec!["blue".into()],
                ..Options::default()
            },
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "module nsfilter is not loaded (no /sys/module/nsfilter)"
        );
        assert_eq!(e.exit_code(), 1);
        fs::create_dir_all(f.root.module_dir().join("parameters")).unwrap();
        let e = filter(
            &f,
            Options {
                ports: Some("53".into()),
                ..Options::default()
            },
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("module nsfilter has no parameter ports"),
            "{e}"
        );
    }

    #[test]
    fn permission_denied_says_run_as_root() {
        let f = sample();
        module(&f);
        // A folder where the file should be: writing fails with EISDIR, as
        // a stand-in for EACCES, which root (the test may run as root)
        // never gets.
        let path = f.root.param("ports");
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        let e = filter(
            &f,
            Options {
                ports: Some("53".into()),
                ..Options::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("cannot write "), "{e}");
        let e = Error::io("write", &path, &io::Error::from_raw_os_error(13));
        assert!(
            e.to_string().ends_with(": Permission denied (run as root)"),
            "{e}"
        );
    }
}
