// SPDX-License-Identifier: GPL-2.0
/*
 * The C side of nsfilter: call-throughs for `static inline` kernel helpers
 * (see helpers.h), and the module parameters.
 *
 * 6.12's Rust `module!` has no parameters, so they are declared here with
 * module_param_cb(), which places them in `__param` and describes them in
 * `.modinfo` for modinfo. Their ops hand the text to Rust (rust/sys.rs),
 * where it is parsed and validated (rust/settings.rs).
 */

#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/seq_file_net.h>
#include <net/netns/generic.h>

#include "helpers.h"

void *nsfilter_net_generic(const struct net *net, unsigned int id)
{
	return net_generic(net, id);
}

struct net *nsfilter_seq_file_net(struct seq_file *seq)
{
	return seq_file_single_net(seq);
}

/* Implemented in Rust (rust/sys.rs). */
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
 * The numbers are `Param::from_id()`'s in rust/settings.rs. Mode 0644: root
 * alone may write /sys/module/nsfilter/parameters/NAME.
 */
#define NSFILTER_PARAM(name, id, type, desc)                                   \
	module_param_cb(name, &nsfilter_param_ops, (void *)(id##UL), 0644);   \
	__MODULE_PARM_TYPE(name, type);                                        \
	MODULE_PARM_DESC(name, desc)

NSFILTER_PARAM(enabled, 0, "bool", "Log packets at all (default: Y)");
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
