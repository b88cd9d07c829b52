#!/usr/bin/env bash
# Writes rust-project.json so that rust-analyzer understands nsfilter's module
# sources (core, kernel and the nsfilter crate, with the kernel's cfgs).
#
# The kernel's `make M=... rust-analyzer` cannot be used as it is: with M=, it
# descends into the module's own rust/ folder. So this runs the kernel's
# generator for core and kernel, and adds the nsfilter crate to its output.
# Usage: scripts/rust-analyzer.sh KDIR
set -euo pipefail
kdir=${1:?usage: scripts/rust-analyzer.sh KDIR}
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src=$kdir/source
[ -f "$src/scripts/generate_rust_analyzer.py" ] || {
	echo "nsfilter: error: $kdir has no kernel source with scripts/generate_rust_analyzer.py" >&2
	exit 1
}
command -v python3 >/dev/null || { echo "nsfilter: error: python3 is needed (package python3)" >&2; exit 1; }
sysroot=$(rustc --print sysroot)
# The edition the kernel compiles core with (rust/Makefile: 2024 from 1.87).
edition=$(rustc -vV | awk '/^release:/ { split($2, v, "."); print (v[1] > 1 || v[2] >= 87) ? 2024 : 2021 }')
"$src/scripts/generate_rust_analyzer.py" --cfgs='core=--cfg no_fp_fmt_parse' "$edition" \
	"$(realpath "$src")" "$(realpath "$kdir")" "$sysroot" "$sysroot/lib/rustlib/src/rust/library" |
	python3 -c '
import json, sys
project = json.load(sys.stdin)
# Let rust-analyzer load core, alloc and std from the toolchain (sysroot_src)
# instead of the crates the generator makes by hand, which rust-analyzer now
# does not treat as the sysroot (no inherent methods on primitives).
sysroot_crates = {"core", "alloc", "std", "proc_macro"}
old = project["crates"]
keep = [i for i, c in enumerate(old) if c["display_name"] not in sysroot_crates]
renumber = {o: n for n, o in enumerate(keep)}
crates = []
for i in keep:
    c = old[i]
    c["deps"] = [dict(d, crate=renumber[d["crate"]]) for d in c["deps"] if d["crate"] in renumber]
    crates.append(c)
project["crates"] = crates
project["sysroot_src"] = sys.argv[2]
index = {c["display_name"]: i for i, c in enumerate(crates)}
kernel = crates[index["kernel"]]
crates.append({
    "display_name": "nsfilter",
    "root_module": sys.argv[1],
    "is_workspace_member": True,
    "deps": [{"crate": index["kernel"], "name": "kernel"}],
    "cfg": kernel.get("cfg", []),
    "edition": "2021",
    "env": {"RUST_MODFILE": "This is only for rust-analyzer"},
})
json.dump(project, sys.stdout, sort_keys=True, indent=4)
' "$top/rust/nsfilter.rs" "$sysroot/lib/rustlib/src/rust/library" >"$top/rust-project.json.tmp"
mv "$top/rust-project.json.tmp" "$top/rust-project.json"
echo "nsfilter: wrote $top/rust-project.json" >&2
