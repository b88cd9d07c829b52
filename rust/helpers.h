/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C helpers for kernel functions that are `static inline` and so have no
 * symbol Rust could call. Each one is a plain call-through.
 */
#ifndef NSFILTER_HELPERS_H
#define NSFILTER_HELPERS_H

#include <linux/types.h>

struct net;
struct seq_file;
struct sk_buff;

void *nsfilter_net_generic(const struct net *net, unsigned int id);
struct net *nsfilter_seq_file_net(struct seq_file *seq);
bool nsfilter_net_is_init(const struct net *net);
bool nsfilter_net_in_init_userns(const struct net *net);

/* Where a packet's MAC header lies in its buffer (see helpers.c). */
struct nsfilter_mac {
	const unsigned char *head;
	unsigned int mac;
	unsigned int mac_len;
	unsigned int tail;
};

bool nsfilter_skb_mac(const struct sk_buff *skb, struct nsfilter_mac *mac);
u32 nsfilter_skb_mark(const struct sk_buff *skb);
bool nsfilter_skb_gso_tcp(const struct sk_buff *skb);

/*
 * Where the C compiler that built the kernel put the fields the Rust code
 * reads directly (see helpers.c): nsfilter_layout[NSFILTER_LAYOUT_...].
 */
enum nsfilter_layout_field {
	NSFILTER_LAYOUT_NET_PROC_NET,
	NSFILTER_LAYOUT_NET_INUM,
	NSFILTER_LAYOUT_SKB_LEN,
	NSFILTER_LAYOUT_SKB_DATA_LEN,
	NSFILTER_LAYOUT_SKB_DATA,
	NSFILTER_LAYOUT_STATE_PF,
	NSFILTER_LAYOUT_STATE_NET,
	NSFILTER_LAYOUT_STATE_IN,
	NSFILTER_LAYOUT_DEV_NAME,
	NSFILTER_LAYOUT_DEV_TYPE,
	NSFILTER_LAYOUT_DEV_HARD_HEADER_LEN,
	NSFILTER_LAYOUT_LEN,
};
extern const unsigned long nsfilter_layout[NSFILTER_LAYOUT_LEN];

/* Per-CPU storage: the kernel's macros as functions (see helpers.c). */
void *nsfilter_alloc_percpu(size_t size, size_t align);
void nsfilter_free_percpu(void *ptr);
void *nsfilter_raw_cpu_ptr(void *ptr);
void *nsfilter_per_cpu_ptr(void *ptr, int cpu);
int nsfilter_next_possible_cpu(int cpu);

#endif
