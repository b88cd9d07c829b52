#!/usr/bin/env bash
# Keeps the guides' labs true: runs each block marked `<!-- lab: NAME -->` in
# docs/*.md (the lab guide, docs/labs.md, and the /proc/net/nsfilter example
# of docs/usage.md) in the lab VM and checks that it prints the guide's output
# for it, line by line, where only the numbers that change from run to run
# may differ: IP and ICMP ID= values, and, consistently across the block's
# lines, NETNS= inodes (and `netns N` in /proc/net/nsfilter) and ports a
# client was given by the kernel. Consistently: an inode the guide shows stands for one namespace of
# the run and no other, so a guide that shows one inode at both ends of a
# veth, or two for one namespace, fails; and the initial namespace is shown as
# GUIDE_INIT wherever, and only where, the run shows the guest's own
# /proc/1/ns/net inode. MAC= headers may differ too, and a line's trailing
# space (LOG's lines end with one) is not shown in the guide.
# Usage: scripts/readme-labs.sh NSFILTER-LAB --kernel BZIMAGE --module KO
set -uo pipefail
bin=$1
shift
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
guides=("$top"/docs/*.md)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The initial namespace's inode in the guides, as 6.12 numbers it (the first
# namespace inode handed out). Since 6.17 it is fixed at 4026531833
# (PROC_NET_INIT_INO): the check maps the guides' to the guest's own.
GUIDE_INIT=4026531840
# The kernel's default ephemeral port range (net.ipv4.ip_local_port_range):
# a port in it that a guide shows is one a client was given, and may differ per run.
EPHEMERAL_LO=32768
EPHEMERAL_HI=60999
# The line the runner puts first, with the guest's initial namespace inode.
INIT_TAG="readme-labs: initial namespace"

# Split the guides' lab blocks into NAME.sh and NAME.want files (a name used
# twice is refused).
awk -v dir="$work" '
	/^<!-- lab: [a-z0-9_-]+ -->$/ {
		name = $3
		if (name in seen) { print "FAILED: two labs named " name > "/dev/stderr"; exit 1 }
		seen[name] = 1
		state = "wait-sh"
		next
	}
	state == "wait-sh" && /^```sh$/ { state = "sh"; next }
	state == "sh" && /^```$/ { state = "wait-text"; next }
	state == "sh" { print > (dir "/" name ".sh"); next }
	state == "wait-text" && /^```text$/ { state = "text"; next }
	state == "text" && /^```$/ { state = ""; next }
	state == "text" { print > (dir "/" name ".want"); next }
' "${guides[@]}" || exit 1

# The inodes (NETNS=N, or `netns N` from /proc/net/nsfilter) on a line, one a line.
inodes() { grep -oE 'NETNS=[0-9]+|^netns [0-9]+$' <<<"$1" | grep -oE '[0-9]+$'; }
# The ports (SPT=N, DPT=N) on a line, one a line.
ports() { grep -oE '[SD]PT=[0-9]+' <<<"$1" | grep -oE '[0-9]+$'; }

# same KIND WANT GOT LINE: the guide's WANT stands for the run's GOT here;
# records it, and a problem if either already stood for another.
same() {
	local -n w2g=$1_w2g g2w=$1_g2w
	if [[ -n ${w2g[$2]-} && ${w2g[$2]} != "$3" ]]; then
		problems+=("line $4: the guide's $1 $2 stands for two in this run, ${w2g[$2]} and $3")
	fi
	if [[ -n ${g2w[$3]-} && ${g2w[$3]} != "$2" ]]; then
		problems+=("line $4: this run's $1 $3 is shown as two in the guide, ${g2w[$3]} and $2")
	fi
	w2g[$2]=$3
	g2w[$3]=$2
}

fail=0
labs=0
for script in "$work"/*.sh; do
	[ -e "$script" ] || break
	name=$(basename "$script" .sh)
	labs=$((labs + 1))
	if [ ! -s "$work/$name.want" ]; then
		echo "FAILED: lab '$name' has no output block"
		fail=1
		continue
	fi
	{
		echo "echo \"$INIT_TAG \$(stat -L -c %i /proc/1/ns/net)\""
		cat "$script"
	} >"$work/$name.run"
	# The lab's own notes on stderr (what it boots, where the console goes)
	# are not the guest's output.
	out=$("$bin" exec "$@" --script "$work/$name.run" 2>&1)
	rc=$?
	out=$(grep -v '^nsfilter-lab: ' <<<"$out")
	guest_init=$(sed -n "1s/^$INIT_TAG \([0-9]\+\)$/\1/p" <<<"$out")
	got=$(sed 1d <<<"$out")
	mapfile -t want_lines <"$work/$name.want"
	mapfile -t got_lines <<<"$got"
	ok=1
	problems=()
	[ "$rc" -eq 0 ] && [ -n "$guest_init" ] && [ "${#want_lines[@]}" -eq "${#got_lines[@]}" ] || ok=0
	for i in "${!want_lines[@]}"; do
		((ok)) || break
		# The expected line as a regular expression: escape it, then let the
		# per-run numbers vary.
		re=$(sed -e 's/[][\.*^$+?(){}|/]/\\&/g' \
			-e 's/NETNS=[0-9]\+/NETNS=[0-9]+/g' -e 's/^netns [0-9]\+$/netns [0-9]+/' \
			-e 's/ ID=[0-9]\+/ ID=[0-9]+/g' -e 's/\([SD]PT\)=[0-9]\+/\1=[0-9]+/g' \
			-e 's/ MAC=[0-9a-f:]\+/ MAC=[0-9a-f:]+/g' <<<"${want_lines[$i]}")
		[[ ${got_lines[$i]% } =~ ^$re$ ]] || ok=0
	done
	# The numbers let through above, across lines. A line that matched has as
	# many inodes and ports as the guide's.
	unset inode_w2g inode_g2w port_w2g port_g2w
	declare -A inode_w2g inode_g2w port_w2g port_g2w
	for i in "${!want_lines[@]}"; do
		((ok)) || break
		n=$((i + 1))
		mapfile -t wi < <(inodes "${want_lines[$i]}")
		mapfile -t gi < <(inodes "${got_lines[$i]}")
		for k in "${!wi[@]}"; do
			w=${wi[$k]} g=${gi[$k]}
			same inode "$w" "$g" "$n"
			if [[ $g == "$guest_init" && $w != "$GUIDE_INIT" ]]; then
				problems+=("line $n: the initial namespace (inode $g in this run) is shown as $w, not $GUIDE_INIT")
			elif [[ $w == "$GUIDE_INIT" && $g != "$guest_init" ]]; then
				problems+=("line $n: the guide shows the initial namespace ($GUIDE_INIT) where this run has another one, $g")
			fi
		done
		mapfile -t wp < <(ports "${want_lines[$i]}")
		mapfile -t gp < <(ports "${got_lines[$i]}")
		for k in "${!wp[@]}"; do
			w=${wp[$k]} g=${gp[$k]}
			same port "$w" "$g" "$n"
			if ((w < EPHEMERAL_LO || w > EPHEMERAL_HI)) && [[ $w != "$g" ]]; then
				problems+=("line $n: port $w is shown where this run has $g")
			fi
		done
	done
	((${#problems[@]} == 0)) || ok=0
	if ((ok)); then
		echo "ok: lab '$name' prints what the guide shows (${#want_lines[@]} lines)"
	else
		printf 'FAILED: lab %s (exit %d)\n' "$name" "$rc"
		[ -n "$guest_init" ] || echo "  the guest's initial namespace inode was not printed first"
		for p in "${problems[@]}"; do
			echo "  $p"
		done
		printf -- '--- the guide shows:\n%s\n--- it printed:\n%s\n' "$(cat "$work/$name.want")" "$got"
		fail=1
	fi
done
if [ "$labs" -eq 0 ]; then
	echo "FAILED: no '<!-- lab: NAME -->' blocks found in ${guides[*]}"
	fail=1
fi
exit $fail
