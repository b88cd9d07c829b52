// SPDX-License-Identifier: GPL-2.0
/*
 * nsfilter_null: the floor of `make bench`, configuration (e).
 *
 * Registered exactly as nsfilter and the C twin are (pernet operations, one
 * NFPROTO_INET hook at NF_INET_PRE_ROUTING, NF_IP_PRI_FIRST, in every
 * namespace), with a hook that only returns NF_ACCEPT. What a packet costs
 * with it loaded is what any such hook costs before it does anything: the
 * netfilter hook walk and the indirect call. Subtracted from nsfilter's and
 * the twin's figures, it leaves what each module's own code costs.
 *
 * In C rather than Rust so that the floor holds no code of either module
 * under test: the call into a Rust hook goes through the same `nf_hookfn`
 * pointer, and nsfilter's adapter is part of what nsfilter costs.
 */

#include <linux/module.h>
#include <linux/netfilter.h>
#include <linux/netfilter_ipv4.h>
#include <net/net_namespace.h>
#include <net/netns/generic.h>

struct null_net {
	struct nf_hook_ops ops;
};

static unsigned int null_id;

static unsigned int null_hook(void *priv, struct sk_buff *skb,
			      const struct nf_hook_state *state)
{
	return NF_ACCEPT;
}

static int __net_init null_net_init(struct net *net)
{
	struct null_net *nn = net_generic(net, null_id);

	nn->ops.hook = null_hook;
	nn->ops.priv = nn;
	nn->ops.pf = NFPROTO_INET;
	nn->ops.hooknum = NF_INET_PRE_ROUTING;
	nn->ops.priority = NF_IP_PRI_FIRST;
	return nf_register_net_hook(net, &nn->ops);
}

static void __net_exit null_net_pre_exit(struct net *net)
{
	struct null_net *nn = net_generic(net, null_id);

	nf_unregister_net_hook(net, &nn->ops);
}

static struct pernet_operations null_net_ops = {
	.init = null_net_init,
	.pre_exit = null_net_pre_exit,
	.id = &null_id,
	.size = sizeof(struct null_net),
};

static int __init null_init(void)
{
	return register_pernet_subsys(&null_net_ops);
}

static void __exit null_exit(void)
{
	unregister_pernet_subsys(&null_net_ops);
}

module_init(null_init);
module_exit(null_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("A PRE_ROUTING hook that only accepts: the floor for benchmarks");
