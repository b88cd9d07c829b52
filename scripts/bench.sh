#!/usr/bin/env bash
# make bench: measures the workflow (wall time on this machine), then runs the
# per-packet benchmark in the lab VM and writes the report as JSON.
# Usage: scripts/bench.sh NSFILTER-LAB TWIN OUT NSFILTER-LAB-OPTIONS...
# (the options name the kernel and the module: --kernel BZIMAGE --module KO).
# The floor module (bench/nsfilter_null.ko) is taken from TWIN's folder.
set -euo pipefail
lab=$1 twin=$2 out=$3
shift 3
vm=("$@")
null=$(dirname "$twin")/nsfilter_null.ko

# Seconds a command takes (its output is kept in $log if it fails).
log=$(mktemp)
hostscale=$(mktemp)
trap 'rm -f "$log" "$hostscale"' EXIT
seconds() {
	local start end
	start=$(date +%s.%N)
	if ! "$@" >"$log" 2>&1; then
		cat "$log" >&2
		echo "nsfilter: error: '$*' failed while benchmarking" >&2
		exit 1
	fi
	end=$(date +%s.%N)
	echo "$end - $start" | bc
}

# Times measured on the 2-core machine CI runs on (2026-12-07): 6, 0.5 and
# 2 minutes.
echo "nsfilter: measuring the workflow: a VM cycle, the whole suite, a cached make test (about 6 minutes)" >&2
touch rust/hook.rs
rebuild=$(seconds make --no-print-directory module)
cycle=$(seconds "$lab" test --filter load_unload "${vm[@]}")
suite=$(seconds "$lab" test "${vm[@]}")
cached=$(seconds make --no-print-directory test)

# Before the VM run (whose QEMU takes a host CPU): the per-packet logic on
# one and two host threads (userspace/benches/hostscale.rs).
echo "nsfilter: host scaling benchmark (under a minute)" >&2
cargo bench --quiet --manifest-path userspace/Cargo.toml --bench hostscale >"$hostscale"

echo "nsfilter: per-packet benchmark in the VM (TCG with icount, about 2 minutes)" >&2
"$lab" bench "${vm[@]}" --add "$twin:/lib/nsfilter/nsfilter_c.ko" \
	--add "$null:/lib/nsfilter/nsfilter_null.ko" --out "$out" --host-scale "$hostscale" \
	--workflow "module rebuild after touching one file=$rebuild" \
	--workflow "one VM cycle (boot, insmod, check, rmmod, exit)=$cycle" \
	--workflow "the whole VM test suite=$suite" \
	--workflow "a cached make test=$cached"
