#!/bin/bash
# nsfilter's system test, inside the booted Debian 13 image that
# scripts/system-test.sh makes: run at boot by systest.service (as /usr/local/sbin/systest),
# it reports on the serial console, one 'SYSTEST: ' line at a time, ends
# with 'SYSTEST: END 0' (green) or 'SYSTEST: END 1', and powers off.
#
# The mode comes from the kernel's command line (systest=MODE):
#   full    loaded at boot with /etc/modprobe.d's options; traffic of an
#           `ip netns` namespace and of a PrivateNetwork=yes service is in
#           `journalctl -k` (and in its JSON as kernel messages at the
#           options' level); `nsfilter netns` names both; `nsfilter stat`
#           agrees with /proc/net/nsfilter;
#   boot    loaded at boot with the options, and a namespace's traffic is
#           in the journal;
#   purge   as boot, then `apt purge nsfilter-dkms nsfilter`: no nsfilter
#           file remains and `modprobe nsfilter` fails.
set -uo pipefail

mode=$(sed -n 's/.* systest=\([a-z]*\).*/\1/p' /proc/cmdline)
say() { echo "SYSTEST: $*"; }
finish() {
	say "END $1"
	systemctl --no-block poweroff
	exit "$1"
}
fail() {
	say "FAIL: $*"
	finish 1
}
# Retries COMMAND... every 0.2 s for at most SECONDS; its status.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < deadline)) || return 1
		sleep 0.2
	done
}
# nsfilter's lines of namespace INODE in this boot's kernel journal.
journal_lines() {
	journalctl -k -b --no-pager -o cat | grep -a "^nsfilter: NETNS=$1 IN=lo "
}
has_journal_lines() { journal_lines "$1" >/dev/null; }

say "mode $mode; kernel $(uname -r); $(systemctl --version | head -n1)"
say "user space after $(cut -d' ' -f1 /proc/uptime) s of uptime"
[ "$(systemctl is-system-running 2>/dev/null || true)" != "" ] || fail "systemd is not running"

# Loaded at boot, with /etc/modprobe.d's options.
[ -d /sys/module/nsfilter ] || fail "nsfilter was not loaded at boot (/etc/modules-load.d/nsfilter.conf)"
loaded=$(journalctl -b -k --no-pager -o short-monotonic | grep -a -m1 'nsfilter: loaded')
[ -n "$loaded" ] || fail "no 'nsfilter: loaded' line in this boot's journal"
say "journal: $loaded"
for p in log_rate log_level; do
	say "parameter $p = $(cat "/sys/module/nsfilter/parameters/$p")"
done
[ "$(cat /sys/module/nsfilter/parameters/log_rate)" = 50 ] || fail "log_rate is not /etc/modprobe.d's 50"
[ "$(cat /sys/module/nsfilter/parameters/log_level)" = notice ] || fail "log_level is not /etc/modprobe.d's notice"
ko=$(modinfo -n nsfilter) || fail "modinfo does not find nsfilter"
say "module $ko, signer: $(modinfo -F signer nsfilter || echo none)"
say "taint: $(cat /proc/sys/kernel/tainted)"
dkms status | sed 's/^/SYSTEST: dkms status: /'

# An `ip netns` namespace's traffic, in the journal.
ip netns add red || fail "ip netns add red"
ip -n red link set lo up
ip netns exec red ping -c 2 -i 0.2 -q 127.0.0.1 >/dev/null || fail "ping in red"
red=$(stat -L -c %i /run/netns/red)
wait_for 30 has_journal_lines "$red" || fail "no line of namespace red ($red) in journalctl -k within 30 s"
say "journal: $(journal_lines "$red" | head -n1)"

if [ "$mode" = full ]; then
	# A service with a network of its own.
	systemctl start privnet-demo.service || fail "systemctl start privnet-demo.service"
	pid=$(systemctl show -P MainPID privnet-demo.service)
	demo=$(stat -L -c %i "/proc/$pid/ns/net") || fail "no network namespace for privnet-demo.service's pid $pid"
	[ "$demo" != "$(stat -L -c %i /proc/1/ns/net)" ] || fail "privnet-demo.service runs in the initial namespace"
	wait_for 30 has_journal_lines "$demo" || fail "no line of privnet-demo.service's namespace ($demo) within 30 s"
	say "journal: $(journal_lines "$demo" | head -n1)"
	json=$(journalctl -k -b --no-pager -o json | grep -a -m1 "NETNS=$demo IN=lo ")
	transport=$(grep -o '"_TRANSPORT":"[a-z]*"' <<<"$json")
	priority=$(grep -o '"PRIORITY":"[0-9]"' <<<"$json")
	say "journalctl -k -o json: $transport $priority"
	[ "$transport" = '"_TRANSPORT":"kernel"' ] || fail "not a kernel message in the journal: $json"
	[ "$priority" = '"PRIORITY":"5"' ] || fail "not at log_level notice (5) in the journal: $json"

	# nsfilter netns names both.
	table=$(nsfilter netns) || fail "nsfilter netns"
	sed 's/^/SYSTEST: nsfilter netns: /' <<<"$table"
	awk -v i="$red" '$1 == i' <<<"$table" | grep -qw red || fail "nsfilter netns does not name $red red"
	awk -v i="$demo" '$1 == i' <<<"$table" | grep -q 'privnet-demo\.service' ||
		fail "nsfilter netns does not name $demo privnet-demo.service"
	nsfilter log --netns privnet-demo.service | grep -q "NETNS=$demo NAME=privnet-demo.service IN=lo " ||
		fail "nsfilter log --netns privnet-demo.service shows none of its lines"

	# nsfilter stat agrees with /proc/net/nsfilter (nothing sends in red now).
	proc=$(ip netns exec red cat /proc/net/nsfilter)
	# --all: every counter, those that are 0 in every namespace too.
	stat=$(nsfilter stat --all) || fail "nsfilter stat --all"
	[ "$proc" = "$(ip netns exec red cat /proc/net/nsfilter)" ] || fail "red's counters moved while nothing was sent"
	sed 's/^/SYSTEST: nsfilter stat: /' <<<"$stat"
	compared=0
	while read -r name value; do
		[ "$name" = netns ] && continue
		got=$(awk -v i="$red" -v c="$name" 'NR == 1 { for (k = 1; k <= NF; k++) if ($k == c) col = k }
			$1 == i && col { print $col }' <<<"$stat")
		[ "$got" = "$value" ] || fail "nsfilter stat says $name=${got:-nothing} for red, /proc/net/nsfilter $value"
		compared=$((compared + 1))
	done <<<"$proc"
	((compared >= 10)) || fail "only $compared counters compared"
	say "nsfilter stat agrees with red's /proc/net/nsfilter on $compared counters"
fi

# No kernel report, and no taint but the out-of-tree (O) and unsigned (E)
# module's.
reports=$(journalctl -k -b --no-pager -o cat | grep -a -E 'BUG:|WARNING:|Oops|rust_kernel: panicked|INFO: trying to register' || true)
[ -z "$reports" ] || fail "the kernel reported: $(head -n3 <<<"$reports")"
taint=$(cat /proc/sys/kernel/tainted)
(((taint & ~(4096 | 8192)) == 0)) || fail "unexpected taint $taint"

if [ "$mode" = purge ]; then
	modprobe -r nsfilter || fail "modprobe -r nsfilter"
	export DEBIAN_FRONTEND=noninteractive
	apt-get -q -y -o Dpkg::Use-Pty=0 purge nsfilter-dkms nsfilter >/tmp/purge.log 2>&1 ||
		{ sed 's/^/SYSTEST: apt: /' /tmp/purge.log && fail "apt purge"; }
	grep -E '^(Removing|Purging)' /tmp/purge.log | sed 's/^/SYSTEST: apt purge: /'
	left=$(find /lib/modules /usr/lib/modules /var/lib/dkms /usr /etc /var/cache -name '*nsfilter*' 2>/dev/null | sort -u)
	[ -z "$left" ] || fail "apt purge left: $left"
	say "no file named *nsfilter* under /lib/modules, /var/lib/dkms, /usr, /etc, /var/cache"
	if modprobe nsfilter 2>/tmp/modprobe.err; then
		fail "modprobe nsfilter still loads a module after the purge"
	fi
	say "modprobe nsfilter: $(cat /tmp/modprobe.err)"
fi
finish 0
