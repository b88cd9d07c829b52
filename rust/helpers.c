// SPDX-License-Identifier: GPL-2.0
/*
 * The C side of nsfilter: call-throughs for `static inline` kernel helpers
 * (see helpers.h), the module parameters, and the author's name and the
 * version that modinfo shows.
 *
 * 6.12's Rust `module!` has no parameters, so they are declared here with
 * module_param_cb(), which places them in `__param` and describes them in
 * `.modinfo` for modinfo. Their ops hand the text to Rust
 * (rust/sys/params.rs), where it is parsed and validated (rust/settings.rs).
 */

#include <linux/cpumask.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/netdevice.h>
#include <linux/netfilter.h>
#include <linux/percpu.h>
#include <linux/seq_file_net.h>
#include <linux/skbuff.h>
#include <linux/user_namespace.h>
#include <net/net_namespace.h>
#include <net/netns/generic.h>

#include "helpers.h"

/*
 * The offsets of the fields that the Rust code reads directly, as this very
 * compiler, the kernel's, lays them out. bindgen derives its layouts through
 * libclang, and the two can differ: on Debian's 7.2.12 kernel, struct
 * ns_common holds `union { struct ns_tree; struct rcu_head ns_rcu; }`, an
 * anonymous member of a tagged type (-fms-extensions) inside an anonymous
 * union, which bindgen dropped, so its struct net came out 128 bytes short
 * before `proc_net`; the first namespace created after loading crashed in
 * proc_register(). Kbuild now makes ns_common opaque (its size and
 * alignment are clang's, which are right), `inum` is read at the offset
 * given here, and module init (rust/sys/layout.rs) refuses to load if any
 * other offset bindgen gave differs from these.
 */
const unsigned long nsfilter_layout[NSFILTER_LAYOUT_LEN] = {
	[NSFILTER_LAYOUT_NET_PROC_NET] = offsetof(struct net, proc_net),
	[NSFILTER_LAYOUT_NET_INUM] = offsetof(struct net, ns.inum),
	[NSFILTER_LAYOUT_SKB_LEN] = offsetof(struct sk_buff, len),
	[NSFILTER_LAYOUT_SKB_DATA_LEN] = offsetof(struct sk_buff, data_len),
	[NSFILTER_LAYOUT_SKB_DATA] = offsetof(struct sk_buff, data),
	[NSFILTER_LAYOUT_STATE_PF] = offsetof(struct nf_hook_state, pf),
	[NSFILTER_LAYOUT_STATE_NET] = offsetof(struct nf_hook_state, net),
	[NSFILTER_LAYOUT_STATE_IN] = offsetof(struct nf_hook_state, in),
	[NSFILTER_LAYOUT_DEV_NAME] = offsetof(struct net_device, name),
	[NSFILTER_LAYOUT_DEV_TYPE] = offsetof(struct net_device, type),
	[NSFILTER_LAYOUT_DEV_HARD_HEADER_LEN] = offsetof(struct net_device, hard_header_len),
};

void *nsfilter_net_generic(const struct net *net, unsigned int id)
{
	return net_generic(net, id);
}

struct net *nsfilter_seq_file_net(struct seq_file *seq)
{
	return seq_file_single_net(seq);
}

/*
 * Whether `net` is the initial namespace, and whether the user namespace
 * that owns it is the initial one. Both are set when the namespace is
 * created (copy_net_ns(), setup_net()) and never change.
 */
bool nsfilter_net_is_init(const struct net *net)
{
	return net_eq(net, &init_net);
}

bool nsfilter_net_in_init_userns(const struct net *net)
{
	return net->user_ns == &init_user_ns;
}

/*
 * What nf_log_syslog's dump_mac_header() reads: whether the MAC header is
 * set, where it starts and its length (skb_mac_header_len()), and where the
 * linear data ends, all as offsets from skb->head.
 */
bool nsfilter_skb_mac(const struct sk_buff *skb, struct nsfilter_mac *mac)
{
	if (!skb_mac_header_was_set(skb))
		return false;
	mac->head = skb->head;
	mac->mac = skb->mac_header;
	mac->mac_len = skb_mac_header_len(skb);
	mac->tail = skb_tail_pointer(skb) - skb->head;
	return true;
}

u32 nsfilter_skb_mark(const struct sk_buff *skb)
{
	return skb->mark;
}

/* The condition under which iph_totlen() and ipv6_payload_len() take the
 * length from the skb rather than from the header. */
bool nsfilter_skb_gso_tcp(const struct sk_buff *skb)
{
	return skb_is_gso(skb) && skb_is_gso_tcp(skb);
}

/*
 * Per-CPU storage (rust/sys/percpu.rs). The allocator and the pointer
 * arithmetic are macros; Rust holds the per-CPU pointer as a plain `void *`
 * and never dereferences it itself, hence the casts.
 */
void *nsfilter_alloc_percpu(size_t size, size_t align)
{
	/* Zeroed memory for every possible CPU, or NULL. */
	return (void __force *)__alloc_percpu_gfp(size, align, GFP_KERNEL);
}

void nsfilter_free_percpu(void *ptr)
{
	free_percpu((void __percpu __force *)ptr);
}

void *nsfilter_raw_cpu_ptr(void *ptr)
{
	return raw_cpu_ptr((void __percpu __force *)ptr);
}

void *nsfilter_per_cpu_ptr(void *ptr, int cpu)
{
	return per_cpu_ptr((void __percpu __force *)ptr, cpu);
}

/* The possible CPU after `cpu` (-1 for the first one), or -1 past the last. */
int nsfilter_next_possible_cpu(int cpu)
{
	unsigned int next = cpumask_next(cpu, cpu_possible_mask);

	return next < nr_cpu_ids ? (int)next : -1;
}

/* Implemented in Rust (rust/sys/params.rs). */
int nsfilter_param_set(unsigned long id, const char *val);
int nsfilter_param_get(unsigned long id, char *buf);

static int nsfilter_set(const char *val, const struct kernel_param *kp)
{
	return nsfilter_param_set((unsigned long)kp->arg, val);
}

static int nsfilter_get(char *buf, const struct kernel_param *kp)
{
	return nsfilter_param_get((unsigned long)kp->arg, buf);
}

static const struct kernel_param_ops nsfilter_param_ops = {
	.set = nsfilter_set,
	.get = nsfilter_get,
};

/*
 * A flag may be given bare (`insmod nsfilter.ko enabled`), as for the
 * kernel's own bools: without KERNEL_PARAM_OPS_FL_NOARG, parse_one() refuses
 * a parameter with no value before `set` sees it. `set` then gets NULL.
 */
static const struct kernel_param_ops nsfilter_flag_ops = {
	.flags = KERNEL_PARAM_OPS_FL_NOARG,
	.set = nsfilter_set,
	.get = nsfilter_get,
};

/*
 * In C rather than in `module!`, whose key for it changed between 6.12
 * (`author`) and 7.x (`authors`).
 */
MODULE_AUTHOR("nsfilter developers");
/* The release, as debian/changelog and the nsfilter command's Cargo.toml
 * give it (scripts/deb.sh checks that the three agree). */
MODULE_VERSION("0.1.0");

/*
 * The numbers are `Param::from_id()`'s in rust/settings.rs. Mode 0644: root
 * alone may write /sys/module/nsfilter/parameters/NAME.
 */
#define NSFILTER_PARAM_OPS(name, id, ops, type, desc)                          \
	module_param_cb(name, &ops, (void *)(id##UL), 0644);                   \
	__MODULE_PARM_TYPE(name, type);                                        \
	MODULE_PARM_DESC(name, desc)
#define NSFILTER_PARAM(name, id, type, desc)                                   \
	NSFILTER_PARAM_OPS(name, id, nsfilter_param_ops, type, desc)

NSFILTER_PARAM_OPS(enabled, 0, nsfilter_flag_ops, "bool",
		   "Log packets at all (default: Y)");
NSFILTER_PARAM(log_rate, 1, "uint",
	       "Lines per second each namespace may log, 1-1000000 (default: 100)");
NSFILTER_PARAM(log_burst, 2, "uint",
	       "Lines a namespace may log at once, 1-1000000 (default: 200)");
NSFILTER_PARAM(protocols, 3, "string",
	       "Log only these: comma-separated tcp,udp,udplite,sctp,icmp,icmpv6,other (default: empty, all)");
NSFILTER_PARAM(ports, 4, "string",
	       "Log only packets from or to these ports, up to 16, comma-separated (default: empty, all)");
NSFILTER_PARAM(netns, 5, "string",
	       "Log only these namespaces, by inode number, up to 16, comma-separated (default: empty, all)");
NSFILTER_PARAM(log_level, 6, "string",
	       "Kernel log level of the lines, 0-7 or emerg,alert,crit,err,warning,notice,info,debug (default: warning, as LOG)");
NSFILTER_PARAM(budget_rate, 7, "uint",
	       "Lines per second all namespaces but the initial one may log together, 1-1000000 (default: 200)");
NSFILTER_PARAM(budget_burst, 8, "uint",
	       "Lines they may log at once together, 1-1000000 (default: 400)");
NSFILTER_PARAM_OPS(skip_userns, 9, nsfilter_flag_ops, "bool",
		   "Do not log namespaces owned by a user namespace other than the initial one, as unprivileged containers' (default: N)");
