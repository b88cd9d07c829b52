// SPDX-License-Identifier: GPL-2.0
/*
 * nsfilter_c: the C twin of nsfilter's fast path, for `make bench`.
 *
 * The C module of the netfilter article docs/labs.md names (a PRE_ROUTING
 * hook at NF_IP_PRI_FIRST that reads addresses and ports), done the way
 * nsfilter does it so that the two can be compared: registered in every
 * namespace through pernet operations, IPv4 and IPv6 headers read with
 * bounds checks (skb_header_pointer), the IPv6 extension header chain
 * walked with a cap, transport ports read, and per-namespace atomic
 * counters bumped. It logs nothing.
 */

#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/module.h>
#include <linux/netfilter.h>
#include <linux/netfilter_ipv4.h>
#include <linux/skbuff.h>
#include <linux/udp.h>
#include <net/ip.h>
#include <net/ipv6.h>
#include <net/net_namespace.h>
#include <net/netns/generic.h>

struct twin_net {
	struct nf_hook_ops ops;
	atomic64_t packets;
	atomic64_t with_ports;
	atomic64_t malformed;
	atomic64_t port_sum;
};

static unsigned int twin_id;

static bool twin_ports(const struct sk_buff *skb, u8 proto, unsigned int off,
		       unsigned int end, u16 *sport, u16 *dport)
{
	__be16 _p[2];
	const __be16 *p;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP &&
	    proto != IPPROTO_UDPLITE && proto != IPPROTO_SCTP)
		return false;
	if (off + 8 > end)
		return false;
	p = skb_header_pointer(skb, off, sizeof(_p), _p);
	if (!p)
		return false;
	*sport = ntohs(p[0]);
	*dport = ntohs(p[1]);
	return true;
}

static unsigned int twin_hook(void *priv, struct sk_buff *skb,
			      const struct nf_hook_state *state)
{
	struct twin_net *tn = priv;
	u16 sport = 0, dport = 0;
	bool ports = false;

	atomic64_inc(&tn->packets);
	if (state->pf == NFPROTO_IPV4) {
		struct iphdr _iph;
		const struct iphdr *iph = skb_header_pointer(skb, 0, sizeof(_iph), &_iph);
		unsigned int hl, len;

		if (!iph || iph->ihl < 5 || ntohs(iph->tot_len) > skb->len) {
			atomic64_inc(&tn->malformed);
			return NF_ACCEPT;
		}
		hl = iph->ihl * 4;
		len = ntohs(iph->tot_len);
		if (!(ntohs(iph->frag_off) & IP_OFFSET))
			ports = twin_ports(skb, iph->protocol, hl, len, &sport, &dport);
	} else if (state->pf == NFPROTO_IPV6) {
		struct ipv6hdr _ip6h;
		const struct ipv6hdr *ip6h = skb_header_pointer(skb, 0, sizeof(_ip6h), &_ip6h);
		unsigned int off = sizeof(*ip6h), end, i;
		u8 next;

		if (!ip6h || ntohs(ip6h->payload_len) + sizeof(*ip6h) > skb->len) {
			atomic64_inc(&tn->malformed);
			return NF_ACCEPT;
		}
		end = ntohs(ip6h->payload_len) + sizeof(*ip6h);
		next = ip6h->nexthdr;
		for (i = 0; i <= 8; i++) {
			u8 _e[2];
			const u8 *e;

			if (next != NEXTHDR_HOP && next != NEXTHDR_ROUTING &&
			    next != NEXTHDR_DEST && next != NEXTHDR_AUTH &&
			    next != NEXTHDR_FRAGMENT)
				break;
			e = skb_header_pointer(skb, off, sizeof(_e), _e);
			if (!e)
				break;
			if (next == NEXTHDR_FRAGMENT)
				off += 8;
			else if (next == NEXTHDR_AUTH)
				off += (e[1] + 2) * 4;
			else
				off += (e[1] + 1) * 8;
			next = e[0];
		}
		ports = twin_ports(skb, next, off, end, &sport, &dport);
	}
	if (ports) {
		atomic64_inc(&tn->with_ports);
		atomic64_add(sport + dport, &tn->port_sum);
	}
	return NF_ACCEPT;
}

static int __net_init twin_net_init(struct net *net)
{
	struct twin_net *tn = net_generic(net, twin_id);

	tn->ops.hook = twin_hook;
	tn->ops.priv = tn;
	tn->ops.pf = NFPROTO_INET;
	tn->ops.hooknum = NF_INET_PRE_ROUTING;
	tn->ops.priority = NF_IP_PRI_FIRST;
	return nf_register_net_hook(net, &tn->ops);
}

static void __net_exit twin_net_pre_exit(struct net *net)
{
	struct twin_net *tn = net_generic(net, twin_id);

	nf_unregister_net_hook(net, &tn->ops);
}

static struct pernet_operations twin_net_ops = {
	.init = twin_net_init,
	.pre_exit = twin_net_pre_exit,
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
}

module_init(twin_init);
module_exit(twin_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("C twin of nsfilter's fast path, for benchmarks");
