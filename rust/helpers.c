// SPDX-License-Identifier: GPL-2.0
/* See helpers.h. */

#include <net/netns/generic.h>

#include "helpers.h"

void *nsfilter_net_generic(const struct net *net, unsigned int id)
{
	return net_generic(net, id);
}
