/* nft_monitor.h — nftables change notifications (NFNLGRP_NFTABLES), the ruleset generation
 * and the list of tables. Read-only: nothing here can change the ruleset.
 *
 * Pure C, no N-API (binding_nftmon.cc wraps it). Functions return 0 / a count or -errno.
 */
#ifndef PLEXD_NFT_MONITOR_H
#define PLEXD_NFT_MONITOR_H

#include <stddef.h>
#include <stdint.h>

#include "nl.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NFTMON_NAME_MAX 256

/* One notification. msg = NFT_MSG_* (NEWTABLE, DELRULE, NEWGEN, …); for NEWGEN gen_id, pid
 * (the committing thread, as the kernel reports it) and proc are set; for object messages
 * family and table (attribute 1 of every nf_tables object message) are set. */
struct nftmon_event {
	uint16_t msg;
	uint8_t family;
	uint32_t gen_id;
	uint32_t pid;
	char table[NFTMON_NAME_MAX];
	char proc[64];
};

typedef int (*nftmon_event_cb)(const struct nftmon_event *ev, void *arg);

/* Opens a NETLINK_NETFILTER socket subscribed to NFNLGRP_NFTABLES. */
int nftmon_open(struct nl_sock *s);
/* Parses one recv() worth of notifications; non-nf_tables messages are skipped. Never reads
 * past len. Returns the number of events passed to cb, or -EBADMSG / cb's negative return. */
int nftmon_parse(const void *buf, size_t len, nftmon_event_cb cb, void *arg);

/* The current ruleset generation id (NFT_MSG_GETGEN) over an open NETLINK_NETFILTER socket. */
int nft_get_gen(struct nl_sock *s, uint32_t *gen, struct nl_err *err);

struct nft_table_ref {
	uint8_t family;
	char name[NFTMON_NAME_MAX];
};
typedef int (*nft_table_cb)(const struct nft_table_ref *t, void *arg);
/* Every table of every family (GETTABLE dump, NFPROTO_UNSPEC). */
int nft_list_tables(struct nl_sock *s, nft_table_cb cb, void *arg, struct nl_err *err);

#ifdef __cplusplus
}
#endif
#endif
