#!/usr/bin/env bash
# make bench: measures the workflow (wall time on this machine), then runs the
# per-packet benchmark in the lab VM and writes the report as JSON.
# Usage: scripts/bench.sh NSFILTER-LAB BZIMAGE MODULE TWIN OUT
set -euo pipefail
lab=$1 kernel=$2 module=$3 twin=$4 out=$5
vm=(--kernel "$kernel" --module "$module")

# Seconds a command takes (its output is kept in $log if it fails).
log=$(mktemp)
trap 'rm -f "$log"' EXIT
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

echo "nsfilter: measuring the workflow (about 2 minutes)" >&2
touch rust/hook.rs
rebuild=$(seconds make --no-print-directory module)
cycle=$(seconds "$lab" test --filter load_unload "${vm[@]}")
suite=$(seconds "$lab" test "${vm[@]}")
cached=$(seconds make --no-print-directory test)

echo "nsfilter: per-packet benchmark in the VM (TCG with icount, about 2 minutes)" >&2
"$lab" bench "${vm[@]}" --add "$twin:/lib/nsfilter/nsfilter_c.ko" --out "$out" \
	--workflow "module rebuild after touching one file=$rebuild" \
	--workflow "one VM cycle (boot, insmod, check, rmmod, exit)=$cycle" \
	--workflow "the whole VM test suite=$suite" \
	--workflow "a cached make test=$cached"
