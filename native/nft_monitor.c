/* nft_monitor.c — see nft_monitor.h. Pure C: no N-API, no logging, -errno everywhere. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "nft_monitor.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

#define MSGTYPE(t) ((uint16_t)((NFNL_SUBSYS_NFTABLES << 8) | (t)))

int nftmon_open(struct nl_sock *s)
{
	int grp = NFNLGRP_NFTABLES;
	int r = nl_open(s, NETLINK_NETFILTER);
	if (r < 0)
		return r;
	if (setsockopt(s->fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &grp, sizeof(grp)) < 0) {
		r = -errno;
		nl_close(s);
		return r;
	}
	return 0;
}

static void copy_str(char *dst, size_t cap, const struct nlattr *a)
{
	size_t n = nl_attr_len(a);
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, nl_attr_data(a), n);
	dst[n] = '\0';
	/* The kernel includes the NUL; a string without one is cut at len. */
	dst[strnlen(dst, n)] = '\0';
}

static uint32_t be32_at(const struct nlattr *a)
{
	uint32_t v = 0;
	if (nl_attr_len(a) >= 4)
		memcpy(&v, nl_attr_data(a), 4);
	return ntohl(v);
}

/* Parses one message into ev; returns 1 when it is an nf_tables message, 0 otherwise. */
static int parse_one(const struct nlmsghdr *h, struct nftmon_event *ev)
{
	const struct nlattr *tb[NFTA_GEN_MAX + 2];
	if ((h->nlmsg_type >> 8) != NFNL_SUBSYS_NFTABLES)
		return 0;
	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nfgenmsg)))
		return -EBADMSG;
	const struct nfgenmsg *g = NLMSG_DATA(h);
	const uint8_t *attrs = (const uint8_t *)g + NLMSG_ALIGN(sizeof(*g));
	size_t alen = h->nlmsg_len - NLMSG_LENGTH(NLMSG_ALIGN(sizeof(*g)));
	if (h->nlmsg_len < NLMSG_LENGTH(NLMSG_ALIGN(sizeof(*g))))
		return -EBADMSG;
	memset(ev, 0, sizeof(*ev));
	ev->msg = h->nlmsg_type & 0xff;
	ev->family = g->nfgen_family;
	/* Attribute 1 is the table name of every object message and the gen id of NEWGEN;
	 * 2/3 are the gen's pid and process name. Max 3 keeps the parse cheap. */
	if (nl_parse_attrs(attrs, alen, tb, 3) < 0)
		return -EBADMSG;
	if (ev->msg == NFT_MSG_NEWGEN) {
		if (tb[NFTA_GEN_ID])
			ev->gen_id = be32_at(tb[NFTA_GEN_ID]);
		if (tb[NFTA_GEN_PROC_PID])
			ev->pid = be32_at(tb[NFTA_GEN_PROC_PID]);
		if (tb[NFTA_GEN_PROC_NAME])
			copy_str(ev->proc, sizeof(ev->proc), tb[NFTA_GEN_PROC_NAME]);
	} else if (tb[1]) {
		copy_str(ev->table, sizeof(ev->table), tb[1]);
	}
	return 1;
}

int nftmon_parse(const void *buf, size_t len, nftmon_event_cb cb, void *arg)
{
	int count = 0;
	size_t left = len;
	for (const struct nlmsghdr *h = buf; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
		struct nftmon_event ev;
		int r = parse_one(h, &ev);
		if (r < 0)
			return r;
		if (r == 0)
			continue;
		r = cb(&ev, arg);
		if (r < 0)
			return r;
		count++;
	}
	return count;
}

struct gen_ctx {
	uint32_t *gen;
	int seen;
};

static int gen_cb(const struct nlmsghdr *h, void *arg)
{
	struct gen_ctx *c = arg;
	struct nftmon_event ev;
	int r = parse_one(h, &ev);
	if (r < 0)
		return r;
	if (r == 1 && ev.msg == NFT_MSG_NEWGEN) {
		*c->gen = ev.gen_id;
		c->seen = 1;
	}
	return 0;
}

int nft_get_gen(struct nl_sock *sock, uint32_t *gen, struct nl_err *err)
{
	uint8_t b[128];
	struct nl_msgbuf m = {b, sizeof(b), 0};
	struct nfgenmsg g = {.nfgen_family = NFPROTO_UNSPEC, .version = NFNETLINK_V0};
	struct gen_ctx c = {gen, 0};
	uint32_t seq = ++sock->seq;
	long o = nl_msg_begin(&m, MSGTYPE(NFT_MSG_GETGEN), NLM_F_REQUEST | NLM_F_ACK, seq, &g, sizeof(g));
	if (o < 0)
		return -ENOBUFS;
	int r = nl_transact(sock, m.buf, m.len, seq, seq, gen_cb, &c, err);
	if (r == 0 && !c.seen)
		r = -ENODATA;
	return r;
}

struct tables_ctx {
	nft_table_cb cb;
	void *arg;
};

static int tables_msg_cb(const struct nlmsghdr *h, void *arg)
{
	struct tables_ctx *c = arg;
	struct nftmon_event ev;
	int r = parse_one(h, &ev);
	if (r <= 0)
		return r;
	if (ev.msg != NFT_MSG_NEWTABLE)
		return 0;
	struct nft_table_ref t;
	t.family = ev.family;
	memcpy(t.name, ev.table, sizeof(t.name));
	return c->cb(&t, c->arg);
}

int nft_list_tables(struct nl_sock *sock, nft_table_cb cb, void *arg, struct nl_err *err)
{
	uint8_t b[128];
	struct nl_msgbuf m = {b, sizeof(b), 0};
	struct nfgenmsg g = {.nfgen_family = NFPROTO_UNSPEC, .version = NFNETLINK_V0};
	struct tables_ctx c = {cb, arg};
	uint32_t seq = ++sock->seq;
	long o = nl_msg_begin(&m, MSGTYPE(NFT_MSG_GETTABLE), NLM_F_REQUEST | NLM_F_DUMP, seq, &g, sizeof(g));
	if (o < 0)
		return -ENOBUFS;
	return nl_transact(sock, m.buf, m.len, seq, seq, tables_msg_cb, &c, err);
}
