//! Host tests of the guides: what they say about the module matches its
//! source, and their links between each other lead somewhere.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The top folder of the clone.
fn top() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("userspace/ has a parent")
        .to_path_buf()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The README and every guide in `docs/`.
fn guides() -> Vec<PathBuf> {
    let mut paths = vec![top().join("README.md")];
    let mut docs: Vec<PathBuf> = fs::read_dir(top().join("docs"))
        .expect("docs/")
        .map(|e| e.expect("an entry of docs/").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths
}

/// The parameter table of `docs/usage.md` names exactly the parameters that
/// `rust/helpers.c` declares.
#[test]
fn parameter_table_lists_every_parameter() {
    let helpers = read(&top().join("rust/helpers.c"));
    let declared: BTreeSet<&str> = helpers
        .lines()
        .filter(|l| !l.starts_with("#define"))
        .filter_map(|l| {
            l.strip_prefix("NSFILTER_PARAM_OPS(")
                .or_else(|| l.strip_prefix("NSFILTER_PARAM("))
        })
        .filter_map(|rest| rest.split(',').next())
        .collect();
    assert!(declared.len() >= 10, "{declared:?}");
    let usage = read(&top().join("docs/usage.md"));
    let section = usage
        .split("\n## Parameters\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Parameters section in docs/usage.md");
    let documented: BTreeSet<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .collect();
    assert_eq!(documented, declared);
}

/// A heading's anchor, as GitHub makes it: lower case, spaces to hyphens,
/// punctuation other than hyphens and underscores left out.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown file's headings (outside code blocks).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            out.insert(anchor(line.trim_start_matches('#')));
        }
    }
    out
}

/// Every relative link of the README and the guides leads to a file that
/// exists and, with `#anchor`, to one of its headings.
#[test]
fn links_between_guides_resolve() {
    let mut broken = Vec::new();
    for guide in guides() {
        let text = read(&guide);
        let dir = guide.parent().expect("a guide is in a folder");
        for link in text.split("](").skip(1) {
            let target = link.split(')').next().unwrap_or_default();
            if target.contains("://") || target.is_empty() {
                continue;
            }
            let (file, fragment) = target.split_once('#').unwrap_or((target, ""));
            let path = if file.is_empty() {
                guide.clone()
            } else {
                dir.join(file)
            };
            if !path.exists() {
                broken.push(format!("{}: {target}", guide.display()));
            } else if !fragment.is_empty() && !anchors(&read(&path)).contains(fragment) {
                broken.push(format!("{}: {target} (no such heading)", guide.display()));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}
