// SPDX-License-Identifier: GPL-2.0
/*
 * nsfilter_c: the C twin of nsfilter's filtered path, for `make bench`.
 *
 * The C module of the netfilter article docs/labs.md names (a PRE_ROUTING
 * hook at NF_IP_PRI_FIRST that reads addresses and ports), grown to do the
 * work nsfilter does for a packet it does not log, the way a C kernel
 * programmer would write it, so that the two can be compared instruction for
 * instruction (configurations b and d):
 *
 *  - registered in every namespace through pernet operations, its state the
 *    hook's private pointer;
 *  - the IP version from the hook state, the headers read with bounds checks
 *    (skb_header_pointer), the IPv6 extension header chain walked, the
 *    transport ports read, the packet classified (IPv4 or IPv6, protocol,
 *    malformed);
 *  - per-CPU counters in each namespace (this_cpu_inc), summed in
 *    /proc/net/nsfilter_c under the names /proc/net/nsfilter uses;
 *  - the namespace's inode read for every packet;
 *  - the same filters as module parameters: `enabled`, `skip_userns`, a
 *    protocol bit mask (`protocols`, nsfilter's bits), and the `ports` and
 *    `netns` lists, published through RCU (rcu_assign_pointer, then
 *    synchronize_rcu before the old copy is freed).
 *
 * It logs nothing: a packet the filters let through is counted as logged.
 */

#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/module.h>
#include <linux/netfilter.h>
#include <linux/netfilter_ipv4.h>
#include <linux/percpu.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <net/ip.h>
#include <net/ipv6.h>
#include <net/net_namespace.h>
#include <net/netns/generic.h>

/* nsfilter's protocol bits (settings.rs, protocol_bit). */
enum {
	TWIN_TCP = 1,
	TWIN_UDP = 2,
	TWIN_UDPLITE = 4,
	TWIN_SCTP = 8,
	TWIN_ICMP = 16,
	TWIN_ICMPV6 = 32,
	TWIN_OTHER = 64,
};

/* As many items as nsfilter's lists hold. */
#define TWIN_MAX_ITEMS 16

struct twin_list {
	unsigned int len;
	u32 items[TWIN_MAX_ITEMS];
};

struct twin_lists {
	struct twin_list ports;
	struct twin_list netns;
	struct rcu_head rcu;
};

/* The lists the packet path reads; writers hold the parameters' lock. */
static struct twin_lists __rcu *twin_lists;

static bool enabled = true;
module_param(enabled, bool, 0644);
MODULE_PARM_DESC(enabled, "count packets as logged when they pass the filters");
static bool skip_userns;
module_param(skip_userns, bool, 0644);
MODULE_PARM_DESC(skip_userns, "filter out namespaces of non-initial user namespaces");
static unsigned int protocols;
module_param(protocols, uint, 0644);
MODULE_PARM_DESC(protocols, "nsfilter's protocol bits (0: every protocol)");

struct twin_cpu {
	u64 ipv4, ipv6, tcp, udp, udplite, sctp, icmp, icmpv6, other, malformed;
	u64 filtered, logged;
};

struct twin_net {
	struct nf_hook_ops ops;
	struct twin_cpu __percpu *cpu;
	bool in_userns;
};

static unsigned int twin_id;

/* What the parse found. */
struct twin_summary {
	int proto; /* -1: none (malformed before the protocol) */
	bool malformed;
	bool has_ports;
	u16 sport, dport;
};

static void twin_ports(const struct sk_buff *skb, unsigned int off,
		       unsigned int end, struct twin_summary *s)
{
	__be16 _p[2];
	const __be16 *p;

	if (s->proto != IPPROTO_TCP && s->proto != IPPROTO_UDP &&
	    s->proto != IPPROTO_UDPLITE && s->proto != IPPROTO_SCTP)
		return;
	if (off + 4 > end) {
		s->malformed = true;
		return;
	}
	p = skb_header_pointer(skb, off, sizeof(_p), _p);
	if (!p) {
		s->malformed = true;
		return;
	}
	s->has_ports = true;
	s->sport = ntohs(p[0]);
	s->dport = ntohs(p[1]);
}

static void twin_parse4(const struct sk_buff *skb, struct twin_summary *s)
{
	struct iphdr _iph;
	const struct iphdr *iph = skb_header_pointer(skb, 0, sizeof(_iph), &_iph);
	unsigned int hl, len;

	if (!iph || iph->ihl < 5) {
		s->malformed = true;
		return;
	}
	hl = iph->ihl * 4;
	len = ntohs(iph->tot_len);
	s->proto = iph->protocol;
	if (len > skb->len || len < hl) {
		s->malformed = true;
		return;
	}
	if (!(ntohs(iph->frag_off) & IP_OFFSET))
		twin_ports(skb, hl, len, s);
}

static void twin_parse6(const struct sk_buff *skb, struct twin_summary *s)
{
	struct ipv6hdr _ip6h;
	const struct ipv6hdr *ip6h = skb_header_pointer(skb, 0, sizeof(_ip6h), &_ip6h);
	unsigned int off = sizeof(*ip6h), end;
	u8 next;

	if (!ip6h) {
		s->malformed = true;
		return;
	}
	end = ntohs(ip6h->payload_len) + sizeof(*ip6h);
	if (end > skb->len) {
		s->malformed = true;
		return;
	}
	next = ip6h->nexthdr;
	/* Bounded by the packet: each header moves `off` on by 8 at least. */
	while (next == NEXTHDR_HOP || next == NEXTHDR_ROUTING ||
	       next == NEXTHDR_DEST || next == NEXTHDR_AUTH ||
	       next == NEXTHDR_FRAGMENT) {
		u8 _e[4];
		const u8 *e;

		if (off + 8 > end) {
			s->malformed = true;
			return;
		}
		e = skb_header_pointer(skb, off, sizeof(_e), _e);
		if (!e) {
			s->malformed = true;
			return;
		}
		if (next == NEXTHDR_FRAGMENT) {
			/* A later fragment carries no transport header. */
			if (ntohs(*(const __be16 *)&e[2]) & ~0x7) {
				s->proto = e[0];
				return;
			}
			off += 8;
		} else if (next == NEXTHDR_AUTH) {
			off += (e[1] + 2) * 4;
		} else {
			off += (e[1] + 1) * 8;
		}
		next = e[0];
	}
	s->proto = next;
	twin_ports(skb, off, end, s);
}

static u32 twin_protocol_bit(const struct twin_summary *s, bool ipv4)
{
	switch (s->proto) {
	case IPPROTO_TCP:
		return TWIN_TCP;
	case IPPROTO_UDP:
		return TWIN_UDP;
	case IPPROTO_UDPLITE:
		return TWIN_UDPLITE;
	case IPPROTO_SCTP:
		return TWIN_SCTP;
	case IPPROTO_ICMP:
		return ipv4 ? TWIN_ICMP : TWIN_OTHER;
	case IPPROTO_ICMPV6:
		return ipv4 ? TWIN_OTHER : TWIN_ICMPV6;
	default:
		return TWIN_OTHER;
	}
}

static void twin_count(struct twin_net *tn, const struct twin_summary *s, bool ipv4)
{
	if (ipv4)
		this_cpu_inc(tn->cpu->ipv4);
	else
		this_cpu_inc(tn->cpu->ipv6);
	switch (twin_protocol_bit(s, ipv4)) {
	case TWIN_TCP:
		this_cpu_inc(tn->cpu->tcp);
		break;
	case TWIN_UDP:
		this_cpu_inc(tn->cpu->udp);
		break;
	case TWIN_UDPLITE:
		this_cpu_inc(tn->cpu->udplite);
		break;
	case TWIN_SCTP:
		this_cpu_inc(tn->cpu->sctp);
		break;
	case TWIN_ICMP:
		this_cpu_inc(tn->cpu->icmp);
		break;
	case TWIN_ICMPV6:
		this_cpu_inc(tn->cpu->icmpv6);
		break;
	default:
		this_cpu_inc(tn->cpu->other);
	}
	if (s->malformed)
		this_cpu_inc(tn->cpu->malformed);
}

static bool twin_wants(const struct twin_summary *s, bool ipv4, u32 netns)
{
	unsigned int mask = READ_ONCE(protocols);
	const struct twin_lists *lists;
	unsigned int i;
	bool ok;

	if (mask && !(mask & twin_protocol_bit(s, ipv4)))
		return false;
	/* Inside the hook's RCU read-side section (nf_hook_slow). */
	lists = rcu_dereference(twin_lists);
	if (!lists)
		return true;
	ok = !lists->netns.len;
	for (i = 0; !ok && i < lists->netns.len; i++)
		ok = lists->netns.items[i] == netns;
	if (!ok)
		return false;
	ok = !lists->ports.len;
	for (i = 0; !ok && i < lists->ports.len; i++)
		ok = s->has_ports && (lists->ports.items[i] == s->sport ||
				      lists->ports.items[i] == s->dport);
	return ok;
}

static unsigned int twin_hook(void *priv, struct sk_buff *skb,
			      const struct nf_hook_state *state)
{
	struct twin_net *tn = priv;
	struct twin_summary s = { .proto = -1 };
	bool ipv4;
	u32 netns;

	if (state->pf == NFPROTO_IPV4)
		ipv4 = true;
	else if (state->pf == NFPROTO_IPV6)
		ipv4 = false;
	else
		return NF_ACCEPT;
	if (ipv4)
		twin_parse4(skb, &s);
	else
		twin_parse6(skb, &s);
	netns = state->net->ns.inum;
	twin_count(tn, &s, ipv4);
	if (!READ_ONCE(enabled) || (tn->in_userns && READ_ONCE(skip_userns)) ||
	    !twin_wants(&s, ipv4, netns)) {
		this_cpu_inc(tn->cpu->filtered);
		return NF_ACCEPT;
	}
	this_cpu_inc(tn->cpu->logged);
	return NF_ACCEPT;
}

/* Parameters `ports` and `netns`: comma-separated numbers. */

static int twin_list_set(const char *val, const struct kernel_param *kp)
{
	bool is_ports = kp->arg == (void *)1;
	struct twin_lists *old, *new;
	struct twin_list *list;
	char *copy, *cur, *tok;
	int err = 0;

	copy = kstrdup(strim((char *)val), GFP_KERNEL);
	if (!copy)
		return -ENOMEM;
	new = kzalloc(sizeof(*new), GFP_KERNEL);
	if (!new) {
		kfree(copy);
		return -ENOMEM;
	}
	/* The parameters' lock serialises writers. */
	old = rcu_dereference_protected(twin_lists, 1);
	if (old) {
		new->ports = old->ports;
		new->netns = old->netns;
	}
	list = is_ports ? &new->ports : &new->netns;
	list->len = 0;
	cur = copy;
	while ((tok = strsep(&cur, ",")) && !err) {
		u32 v;

		if (!*tok)
			continue;
		if (list->len == TWIN_MAX_ITEMS || kstrtou32(tok, 0, &v) ||
		    (is_ports && v > 65535))
			err = -EINVAL;
		else
			list->items[list->len++] = v;
	}
	kfree(copy);
	if (err) {
		kfree(new);
		return err;
	}
	rcu_assign_pointer(twin_lists, new);
	synchronize_rcu();
	kfree(old);
	return 0;
}

static int twin_list_get(char *buf, const struct kernel_param *kp)
{
	bool is_ports = kp->arg == (void *)1;
	const struct twin_lists *lists;
	const struct twin_list *list;
	int n = 0;
	unsigned int i;

	lists = rcu_dereference_protected(twin_lists, 1);
	if (!lists)
		return sysfs_emit(buf, "\n");
	list = is_ports ? &lists->ports : &lists->netns;
	for (i = 0; i < list->len; i++)
		n += sysfs_emit_at(buf, n, "%s%u", i ? "," : "", list->items[i]);
	return n + sysfs_emit_at(buf, n, "\n");
}

static const struct kernel_param_ops twin_list_ops = {
	.set = twin_list_set,
	.get = twin_list_get,
};
module_param_cb(ports, &twin_list_ops, (void *)1, 0644);
MODULE_PARM_DESC(ports, "count only packets from or to these ports");
module_param_cb(netns, &twin_list_ops, (void *)2, 0644);
MODULE_PARM_DESC(netns, "count only packets in namespaces of these inodes");

static int twin_show(struct seq_file *m, void *v)
{
	struct twin_net *tn = net_generic(seq_file_single_net(m), twin_id);
	struct twin_cpu sum = {};
	int cpu;

	for_each_possible_cpu(cpu) {
		const struct twin_cpu *c = per_cpu_ptr(tn->cpu, cpu);

		sum.ipv4 += c->ipv4;
		sum.ipv6 += c->ipv6;
		sum.tcp += c->tcp;
		sum.udp += c->udp;
		sum.udplite += c->udplite;
		sum.sctp += c->sctp;
		sum.icmp += c->icmp;
		sum.icmpv6 += c->icmpv6;
		sum.other += c->other;
		sum.malformed += c->malformed;
		sum.filtered += c->filtered;
		sum.logged += c->logged;
	}
	seq_printf(m, "packets_ipv4 %llu\npackets_ipv6 %llu\ntcp %llu\nudp %llu\n"
		   "udplite %llu\nsctp %llu\nicmp %llu\nicmpv6 %llu\nother %llu\n"
		   "malformed %llu\nfiltered %llu\nlogged %llu\n",
		   sum.ipv4, sum.ipv6, sum.tcp, sum.udp, sum.udplite, sum.sctp,
		   sum.icmp, sum.icmpv6, sum.other, sum.malformed, sum.filtered,
		   sum.logged);
	return 0;
}

static int __net_init twin_net_init(struct net *net)
{
	struct twin_net *tn = net_generic(net, twin_id);
	int err;

	tn->cpu = alloc_percpu(struct twin_cpu);
	if (!tn->cpu)
		return -ENOMEM;
	tn->in_userns = net->user_ns != &init_user_ns;
	if (!proc_create_net_single("nsfilter_c", 0444, net->proc_net, twin_show, NULL)) {
		err = -ENOMEM;
		goto free;
	}
	tn->ops.hook = twin_hook;
	tn->ops.priv = tn;
	tn->ops.pf = NFPROTO_INET;
	tn->ops.hooknum = NF_INET_PRE_ROUTING;
	tn->ops.priority = NF_IP_PRI_FIRST;
	err = nf_register_net_hook(net, &tn->ops);
	if (!err)
		return 0;
	remove_proc_entry("nsfilter_c", net->proc_net);
	/* The IPv4 half may have been visible: wait out its hook calls. */
	synchronize_net();
free:
	free_percpu(tn->cpu);
	return err;
}

static void __net_exit twin_net_pre_exit(struct net *net)
{
	struct twin_net *tn = net_generic(net, twin_id);

	nf_unregister_net_hook(net, &tn->ops);
}

/* After pre_exit and the grace period the namespace core waits for. */
static void __net_exit twin_net_exit(struct net *net)
{
	struct twin_net *tn = net_generic(net, twin_id);

	remove_proc_entry("nsfilter_c", net->proc_net);
	free_percpu(tn->cpu);
}

static struct pernet_operations twin_net_ops = {
	.init = twin_net_init,
	.pre_exit = twin_net_pre_exit,
	.exit = twin_net_exit,
	.id = &twin_id,
	.size = sizeof(struct twin_net),
};

static int __init twin_init(void)
{
	return register_pernet_subsys(&twin_net_ops);
}

static void __exit twin_exit(void)
{
	unregister_pernet_subsys(&twin_net_ops);
	/* No reader is left: every hook is gone. */
	kfree(rcu_dereference_protected(twin_lists, 1));
}

module_init(twin_init);
module_exit(twin_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("C twin of nsfilter's filtered path, for benchmarks");
