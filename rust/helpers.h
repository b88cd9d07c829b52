/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C helpers for kernel functions that are `static inline` and so have no
 * symbol Rust could call. Each one is a plain call-through.
 */
#ifndef NSFILTER_HELPERS_H
#define NSFILTER_HELPERS_H

struct net;
struct seq_file;

void *nsfilter_net_generic(const struct net *net, unsigned int id);
struct net *nsfilter_seq_file_net(struct seq_file *seq);

#endif
