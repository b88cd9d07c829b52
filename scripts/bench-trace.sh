#!/usr/bin/env bash
# Where a hook's instructions go: boots the lab VM with QEMU's gdbstub, loads
# MODULE (its sysfs name NAME, with PARAMS) in the guest, sends TCP SYNs
# between two namespaces (busybox nc; each SYN and its RST pass the hook,
# and with nsfilter's `ports=1` both are filtered), and single-steps CALLS
# calls of the hook function HOOK (an awk regex for a symbol of the module) with gdb,
# counting the instructions each function executes (scripts/bench-trace.py).
# Under icount a guest instruction is a guest nanosecond, so these counts
# are what `make bench` measures, function by function.
#
# Usage: scripts/bench-trace.sh LAB BZIMAGE VMLINUX MODULE NAME HOOK [PARAMS]
#   e.g. scripts/bench-trace.sh userspace/target/release/nsfilter-lab \
#        $KDIR/arch/x86/boot/bzImage $KDIR/vmlinux nsfilter.ko nsfilter \
#        'Adapter.*E4hook' ports=1
set -euo pipefail
lab=$1 kernel=$2 vmlinux=$3 module=$4 name=$5 hook=$6 params=${7:-}
calls=${TRACE_CALLS:-3}
# TRACE_SKIP=N lets the first N calls run untraced (bench-trace.py).
port=$((20000 + RANDOM % 20000))
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The hook's offset in the module's .text.
offset=$(nm "$module" | awk -v pat="$hook" '!found && $2 ~ /[tT]/ && $3 ~ pat { print $1; found = 1 }')
[ -n "$offset" ] || { echo "bench-trace: no symbol matching $hook in $module" >&2; exit 1; }

cat >"$work/qemu" <<WRAP
#!/bin/sh
exec ${QEMU:-qemu-system-x86_64} -gdb tcp:127.0.0.1:$port "\$@"
WRAP
chmod +x "$work/qemu"
cat >"$work/guest.sh" <<GUEST
insmod /lib/nsfilter/trace.ko $params
ip netns add t0 && ip netns add t1
ip link add t0v type veth peer name t1v
ip link set t0v netns t0 && ip link set t1v netns t1
ip netns exec t0 ip addr add 10.71.0.1/24 dev t0v
ip netns exec t1 ip addr add 10.71.0.2/24 dev t1v
ip netns exec t0 ip link set t0v up && ip netns exec t1 ip link set t1v up
ip netns exec t0 ip link set lo up && ip netns exec t1 ip link set lo up
mac=\$(ip netns exec t1 cat /sys/class/net/t1v/address)
ip netns exec t0 ip neigh replace 10.71.0.2 lladdr \$mac dev t0v nud permanent
mac=\$(ip netns exec t0 cat /sys/class/net/t0v/address)
ip netns exec t1 ip neigh replace 10.71.0.1 lladdr \$mac dev t1v nud permanent
echo "@@text \$(cat /sys/module/$name/sections/.text)"
i=0
while [ \$i -lt 300 ]; do
	ip netns exec t0 nc -w 1 10.71.0.2 9000 </dev/null >/dev/null 2>&1
	sleep 0.1
	i=\$((i + 1))
done
GUEST

QEMU="$work/qemu" "$lab" exec --no-module --kernel "$kernel" \
	--add "$module:/lib/nsfilter/trace.ko" --script "$work/guest.sh" >"$work/console" 2>&1 &
for _ in $(seq 600); do
	grep -q '^@@text 0x' "$work/console" 2>/dev/null && break
	sleep 0.5
done
text=$(sed -n 's/^@@text \(0x[0-9a-f]*\).*/\1/p' "$work/console" | head -1)
[ -n "$text" ] || { cat "$work/console" >&2; echo "bench-trace: the guest did not start" >&2; exit 1; }
addr=$(printf '0x%x' $((text + 0x$offset)))
echo "bench-trace: $name .text at $text, hook at $addr" >&2
TRACE_PORT=$port TRACE_HOOK=$addr TRACE_CALLS=$calls TRACE_SKIP=${TRACE_SKIP:-0} \
	gdb -q -batch -nx -ex "file $vmlinux" -ex "add-symbol-file $module -s .text $text" \
	-x "$(dirname "$0")/bench-trace.py" >"$work/gdb.log" 2>&1 || true
if grep -q "^@@trace" "$work/gdb.log"; then
	sed -n "s/^@@trace //p" "$work/gdb.log"
else
	cat "$work/gdb.log" >&2
	echo "bench-trace: gdb counted nothing" >&2
fi
wait
