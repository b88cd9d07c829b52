#!/usr/bin/env bash
# make repeat: the VM suite (or the tests FILTER names) N times in a row, each
# in a fresh VM, to show that a test is not flaky. Prints one line per run
# and how many were green; keeps the output of every red run.
#
# Usage: scripts/repeat.sh N FILTER LAB LAB_ARGS...
#   N       how many runs (a positive integer)
#   FILTER  only the tests whose name contains it ("" for the whole suite)
#   LAB     the nsfilter-lab program, then the arguments `make test` gives it
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/common.sh
. "$here/common.sh"

[ $# -ge 3 ] || die "usage: scripts/repeat.sh N FILTER LAB [LAB_ARGS...]"
runs=$1 filter=$2 lab=$3
shift 3
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer, not '$runs'"
[ -x "$lab" ] || die "no lab program at $lab (run 'make lab')"

logs=$NSFILTER_CACHE/repeat/$(date +%Y%m%d-%H%M%S)
mkdir -p "$logs"
args=(test "$@")
[ -z "$filter" ] || args+=(--filter "$filter")
say "running '${filter:-the whole suite}' $runs times in a row; red runs' output in $logs"
green=0 red=()
begin=$(date +%s)
for ((i = 1; i <= runs; i++)); do
	start=$(date +%s)
	status=0
	"$lab" "${args[@]}" >"$logs/run-$i.log" 2>&1 || status=$?
	took=$(($(date +%s) - start))
	tests=$(grep -c '^ok [0-9]' "$logs/run-$i.log" || true)
	if ((status == 0)); then
		green=$((green + 1))
		printf 'run %2d: green, %s tests ok (%d s)\n' "$i" "$tests" "$took"
		rm -f "$logs/run-$i.log"
	else
		red+=("$i")
		failed=$(sed -n 's/^not ok [0-9]* \([^ ]*\).*/\1/p' "$logs/run-$i.log" | tr '\n' ' ')
		printf 'run %2d: RED (exit %d) %s(%d s; %s)\n' "$i" "$status" \
			"${failed:+failed: $failed}" "$took" "$logs/run-$i.log"
	fi
done
printf '%d of %d runs green in %d s\n' "$green" "$runs" "$(($(date +%s) - begin))"
((${#red[@]} == 0)) || die "red runs: ${red[*]}"
rmdir "$logs" 2>/dev/null || true
