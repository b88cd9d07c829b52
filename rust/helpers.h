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

/* Per-CPU storage: the kernel's macros as functions (see helpers.c). */
void *nsfilter_alloc_percpu(size_t size, size_t align);
void nsfilter_free_percpu(void *ptr);
void *nsfilter_raw_cpu_ptr(void *ptr);
void *nsfilter_per_cpu_ptr(void *ptr, int cpu);
int nsfilter_next_possible_cpu(int cpu);

#endif
