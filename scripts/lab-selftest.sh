#!/usr/bin/env bash
# Checks nsfilter-lab's own behaviour end to end. Breaks the lab VM on purpose
# and checks that the verdict catches each break (a guest command that fails,
# a kernel WARNING, a new taint, lockdep switching itself off, a kmemleak
# report, a SLUB report; in the test path a failing test, a kernel report
# during a test, records overwritten unread, an unexpected SKIP, a missing
# result, a panic and a hang mid-suite, a filter that matches nothing), then
# the commands' clear errors.
# Usage: scripts/lab-selftest.sh NSFILTER-LAB --kernel BZIMAGE --module KO [OPTIONS...]
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
# Reports that match no "BUG:"/"WARNING:" (issue 25), at the levels the
# kernel prints them.
expect_failure "lockdep switching itself off" "INFO: trying to register non-static key" \
	'echo "<3>INFO: trying to register non-static key." > /dev/kmsg'
expect_failure "a kmemleak scan's report" "new suspected memory leaks" \
	'echo "<6>kmemleak: 1 new suspected memory leaks (see /sys/kernel/debug/kmemleak)" > /dev/kmsg'
expect_failure "a SLUB report" "BUG <cache> (...):" \
	'echo "<3>BUG kmalloc-64 (Not tainted): Redzone overwritten" > /dev/kmsg'
# The test path: each break must fail `test`, with the reason shown.
expect_test_failure() {
	local what=$1 want=$2 out rc
	shift 2
	out=$("$bin" test "${opts[@]}" "$@" 2>&1)
	rc=$?
	if [ "$rc" -ne 0 ] && grep -qF -- "$want" <<<"$out"; then
		printf 'ok: %-32s -> exit %d, "%s"\n' "$what" "$rc" "$want"
	else
		printf 'NOT CAUGHT: %s (exit %d)\n%s\n' "$what" "$rc" "$out"
		fail=1
	fi
}
expect_test_failure "a test that fails" "failed: selftest_not_ok" --filter selftest_not_ok
expect_test_failure "a missing KTAP result" "never reported" --filter selftest_missing_result
expect_test_failure "a panic mid-suite" "exited with status 101" --filter selftest_panic
expect_test_failure "a report during a test" "the kernel reported during this test" --filter selftest_kernel_report
expect_test_failure "a SKIP this kernel should not have" "skipped, though this kernel is expected to run them: selftest_skip" --filter selftest_skip
expect_test_failure "records overwritten unread" "kernel log records were overwritten before they were read" --filter selftest_lost_records
expect_test_failure "a hang mid-suite" "did not finish within 20 s" --filter selftest_hang --timeout 20
expect_test_failure "a filter matching nothing" "no test name contains 'no-such-test'" --filter no-such-test

# exec --script: the script runs in the VM, module loaded, `ip netns` works.
script=$(mktemp)
trap 'rm -f "$script" "$script.ko"' EXIT
printf '%s\n' 'ip netns add red' 'ip netns exec red ip link set lo up' \
	'ip netns exec red ping -c 1 127.0.0.1 >/dev/null' \
	'dmesg | grep -c "nsfilter: NETNS=.* IN=lo OUT= MAC=.* SRC=127.0.0.1 DST=127.0.0.1"' >"$script"
out=$("$bin" exec "${opts[@]}" --script "$script" 2>&1)
if [ "$(tail -n 1 <<<"$out")" = 2 ]; then
	echo "ok: exec --script                    -> the request and the reply logged"
else
	printf 'FAILED: exec --script\n%s\n' "$out"
	fail=1
fi

# shell: type at the prompt as a user would; the commands run with the module
# loaded, and 'exit' stops the VM. Each wait is bounded.
read_until() { # PATTERN SECONDS: read the shell's output until PATTERN
	local want=$1 deadline=$((SECONDS + $2)) c
	while [[ $seen != *"$want"* ]]; do
		((SECONDS < deadline)) || return 1
		IFS= read -r -t 1 -N 1 c <&"$sh_out"
		case $? in
		0) seen+=$c ;;
		1) return 1 ;; # end of output: the shell has gone
		esac           # else a timeout: look at the deadline again
	done
}
seen=""
coproc SH { "$bin" shell "${opts[@]}" 2>&1; }
# Bash closes the coprocess's descriptors and unsets SH and SH_PID as soon as
# it reaps it, which can happen while its last output is still in the pipe
# (the VM stops quickly after 'exit'). Keep copies that live until we close
# them, so every byte the shell wrote can still be read.
sh_pid=$SH_PID
exec {sh_out}<&"${SH[0]}" {sh_in}>&"${SH[1]}"
if read_until "nsfilter-lab# " 90; then
	printf '%s\n' 'echo shell-$((6 * 7))-$(grep -c "^nsfilter " /proc/modules)' 'exit' >&"$sh_in"
fi
# The shell leaves within 30 s of 'exit', or is stopped and fails.
shell_exited() {
	local deadline=$((SECONDS + 30))
	while kill -0 "$sh_pid" 2>/dev/null; do
		((SECONDS < deadline)) || return 1
		sleep 0.2
	done
	wait "$sh_pid"
}
if read_until "shell-42-1" 30 && shell_exited; then
	echo "ok: shell                            -> prompt, command with the module loaded, exit"
else
	printf 'FAILED: shell\n%s\n' "$seen"
	kill "$sh_pid" 2>/dev/null
	fail=1
fi
exec {sh_out}<&- {sh_in}>&-

# One clear line and a non-zero exit for each kind of bad input.
expect_error() {
	local what=$1 want=$2 out rc
	shift 2
	out=$("$@" 2>&1 </dev/null)
	rc=$?
	if [ "$rc" -ne 0 ] && [ "$(wc -l <<<"$out")" -eq 1 ] && grep -qF -- "$want" <<<"$out"; then
		printf 'ok: %-32s -> exit %d: %s\n' "$what" "$rc" "$out"
	else
		printf 'FAILED: %s (exit %d)\n%s\n' "$what" "$rc" "$out"
		fail=1
	fi
}
# The kernel and module among the options (a distribution kernel's come with
# more options, such as --kernel-modules).
for ((i = 0; i < ${#opts[@]} - 1; i++)); do
	case "${opts[i]}" in
	--kernel) kernel=${opts[i + 1]} ;;
	--module) module=${opts[i + 1]} ;;
	esac
done
expect_error "a script that does not exist" "does not exist" \
	"$bin" exec "${opts[@]}" --script /nonexistent/script.sh
expect_error "no kernel image" "no kernel image at /nonexistent" \
	"$bin" exec --kernel /nonexistent --module "$module" -- true
# The module's vermagic names another kernel release (same length, patched).
release=$(strings "$module" | sed -n 's/^vermagic=\([^ ]*\) .*/\1/p')
other=$(sed 's/.$/X/' <<<"$release")
sed "s/vermagic=$release /vermagic=$other /" "$module" >"$script.ko"
expect_error "a module for another kernel" "was built for kernel '$other'" \
	"$bin" exec --kernel "$kernel" --module "$script.ko" -- true
expect_error "no QEMU" "QEMU not found" \
	env QEMU=/nonexistent/qemu "$bin" exec "${opts[@]}" -- true
expect_error "an unknown option" "unknown option '--frob'" "$bin" test --frob
expect_error "an unknown command" "unknown command 'frob'" "$bin" frob
for cmd in run test exec shell; do
	if "$bin" "$cmd" --help | head -n 1 | grep -q "^Usage: nsfilter-lab $cmd"; then
		echo "ok: $cmd --help"
	else
		echo "FAILED: $cmd --help"
		fail=1
	fi
done
exit $fail
