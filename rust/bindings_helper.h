/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C declarations nsfilter's Rust code needs, for bindgen (see Kbuild).
 * Only `rust/bindings.rs` sees what is generated from this header.
 */

#include <linux/netdevice.h>
#include <linux/netfilter.h>
#include <linux/netfilter_ipv4.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/skbuff.h>
#include <linux/tcp.h>
#include <net/net_namespace.h>

#include "helpers.h"
