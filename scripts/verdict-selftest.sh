#!/usr/bin/env bash
# Breaks the lab VM on purpose and checks that the verdict catches each break:
# a guest command that fails, a kernel WARNING on the console, a new taint.
# Usage: scripts/verdict-selftest.sh NSFILTER-LAB [LAB ARGS...]
set -uo pipefail
bin=$1
shift
opts=("$@")
fail=0

expect_failure() {
	local what=$1 want=$2 cmd=$3 out rc
	out=$("$bin" exec "${opts[@]}" -- "$cmd" 2>&1)
	rc=$?
	if [ "$rc" -ne 0 ] && grep -qF -- "$want" <<<"$out"; then
		printf 'ok: %-32s -> exit %d, "%s"\n' "$what" "$rc" "$want"
	else
		printf 'NOT CAUGHT: %s (exit %d)\n%s\n' "$what" "$rc" "$out"
		fail=1
	fi
}

# A failing guest command: exec returns its status (here 3).
out=$("$bin" exec "${opts[@]}" -- 'exit 3' 2>&1)
rc=$?
if [ "$rc" -eq 3 ]; then
	echo "ok: a guest command that fails       -> exit 3"
else
	printf 'NOT CAUGHT: guest exit status (exit %d)\n%s\n' "$rc" "$out"
	fail=1
fi
expect_failure "a kernel WARNING" "kernel reported 'WARNING:'" \
	'echo "<4>WARNING: CPU: 0 PID: 1 at selftest" > /dev/kmsg'
expect_failure "a new taint" "tainted during the run" \
	'echo 512 > /proc/sys/kernel/tainted'
exit $fail
