/* nft.c — nftables over nfnetlink (see nft.h). Pure C: no N-API, no logging, -errno. */
#define _GNU_SOURCE
#include "nft.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>


#define MSGTYPE(t) ((uint16_t)((NFNL_SUBSYS_NFTABLES << 8) | (t)))
/* Element lists are split well below the 16-bit nla_len limit of the ELEMENTS nest. */
#define ELEMS_NEST_MAX 48000u
#define BUILD_CAP_MAX (256u * 1024u * 1024u)
#define APPLY_TIMEOUT_SEC 30

/* ==== building ========================================================================== */

struct builder {
	struct nl_msgbuf m;
	size_t *msg_off;
	uint32_t *msg_op;
	uint32_t nmsgs, cap_msgs;
	uint32_t seq;
	uint8_t family;
};

static long b_begin(struct builder *b, uint16_t type, uint16_t flags, uint8_t family,
		    uint16_t res_id_host, uint32_t op)
{
	struct nfgenmsg g = {.nfgen_family = family, .version = NFNETLINK_V0,
			     .res_id = htons(res_id_host)};
	if (b->nmsgs == b->cap_msgs) {
		uint32_t nc = b->cap_msgs ? b->cap_msgs * 2 : 64;
		size_t *no = realloc(b->msg_off, nc * sizeof(*no));
		if (!no)
			return -ENOMEM;
		b->msg_off = no;
		uint32_t *np = realloc(b->msg_op, nc * sizeof(*np));
		if (!np)
			return -ENOMEM;
		b->msg_op = np;
		b->cap_msgs = nc;
	}
	long o = nl_msg_begin(&b->m, type, flags, b->seq + b->nmsgs, &g, sizeof(g));
	if (o < 0)
		return o;
	b->msg_off[b->nmsgs] = (size_t)o;
	b->msg_op[b->nmsgs] = op;
	b->nmsgs++;
	return o;
}

#define TRY(x)                          \
	do {                            \
		long r_ = (x);          \
		if (r_ < 0)             \
			return (int)r_; \
	} while (0)

static int put_data(struct nl_msgbuf *m, long mo, uint16_t type, const void *d, size_t len)
{
	long n = nl_nest_begin(m, mo, type);
	TRY(n);
	TRY(nl_put(m, mo, NFTA_DATA_VALUE, d, len));
	nl_nest_end(m, n);
	return 0;
}

static int put_expr(struct nl_msgbuf *m, long mo, const struct nft_expr *x)
{
	static const char *names[] = {
		[NFT_X_PAYLOAD] = "payload", [NFT_X_META] = "meta", [NFT_X_CMP] = "cmp",
		[NFT_X_BITWISE] = "bitwise", [NFT_X_LOOKUP] = "lookup", [NFT_X_CT] = "ct",
		[NFT_X_COUNTER] = "counter", [NFT_X_LOG] = "log", [NFT_X_IMMEDIATE] = "immediate",
	};
	if (x->type < NFT_X_PAYLOAD || x->type > NFT_X_IMMEDIATE)
		return -EINVAL;
	if (x->data_len > NFT_DATA_MAX || x->xor_len > NFT_DATA_MAX)
		return -EINVAL;
	long el = nl_nest_begin(m, mo, NFTA_LIST_ELEM);
	TRY(el);
	TRY(nl_put_str(m, mo, NFTA_EXPR_NAME, names[x->type]));
	long d = nl_nest_begin(m, mo, NFTA_EXPR_DATA);
	TRY(d);
	switch (x->type) {
	case NFT_X_PAYLOAD:
		TRY(nl_put_be32(m, mo, NFTA_PAYLOAD_DREG, x->dreg));
		TRY(nl_put_be32(m, mo, NFTA_PAYLOAD_BASE, x->base));
		TRY(nl_put_be32(m, mo, NFTA_PAYLOAD_OFFSET, x->offset));
		TRY(nl_put_be32(m, mo, NFTA_PAYLOAD_LEN, x->len));
		break;
	case NFT_X_META:
		TRY(nl_put_be32(m, mo, NFTA_META_DREG, x->dreg));
		TRY(nl_put_be32(m, mo, NFTA_META_KEY, x->key));
		break;
	case NFT_X_CT:
		TRY(nl_put_be32(m, mo, NFTA_CT_DREG, x->dreg));
		TRY(nl_put_be32(m, mo, NFTA_CT_KEY, x->key));
		break;
	case NFT_X_CMP:
		if (x->data_len == 0)
			return -EINVAL;
		TRY(nl_put_be32(m, mo, NFTA_CMP_SREG, x->sreg));
		TRY(nl_put_be32(m, mo, NFTA_CMP_OP, x->op));
		TRY(put_data(m, mo, NFTA_CMP_DATA, x->data, x->data_len));
		break;
	case NFT_X_BITWISE:
		if (x->len == 0 || x->data_len != x->len || x->xor_len != x->len)
			return -EINVAL;
		TRY(nl_put_be32(m, mo, NFTA_BITWISE_SREG, x->sreg));
		TRY(nl_put_be32(m, mo, NFTA_BITWISE_DREG, x->dreg));
		TRY(nl_put_be32(m, mo, NFTA_BITWISE_LEN, x->len));
		TRY(put_data(m, mo, NFTA_BITWISE_MASK, x->data, x->data_len));
		TRY(put_data(m, mo, NFTA_BITWISE_XOR, x->xor_, x->xor_len));
		break;
	case NFT_X_LOOKUP:
		if (!x->name[0])
			return -EINVAL;
		TRY(nl_put_str(m, mo, NFTA_LOOKUP_SET, x->name));
		TRY(nl_put_be32(m, mo, NFTA_LOOKUP_SREG, x->sreg));
		if (x->flags)
			TRY(nl_put_be32(m, mo, NFTA_LOOKUP_FLAGS, x->flags));
		break;
	case NFT_X_COUNTER:
		/* Zero start values, as `nft` sends them. */
		TRY(nl_put_u64(m, mo, NFTA_COUNTER_BYTES, 0));
		TRY(nl_put_u64(m, mo, NFTA_COUNTER_PACKETS, 0));
		break;
	case NFT_X_LOG:
		if (x->has_prefix)
			TRY(nl_put_str(m, mo, NFTA_LOG_PREFIX, x->name));
		if (x->has_level)
			TRY(nl_put_be32(m, mo, NFTA_LOG_LEVEL, x->level));
		break;
	case NFT_X_IMMEDIATE: {
		int jump = x->verdict == NFT_JUMP || x->verdict == NFT_GOTO;
		if (jump != (x->name[0] != 0))
			return -EINVAL;
		TRY(nl_put_be32(m, mo, NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT));
		long dn = nl_nest_begin(m, mo, NFTA_IMMEDIATE_DATA);
		TRY(dn);
		long vn = nl_nest_begin(m, mo, NFTA_DATA_VERDICT);
		TRY(vn);
		TRY(nl_put_be32(m, mo, NFTA_VERDICT_CODE, (uint32_t)x->verdict));
		if (jump)
			TRY(nl_put_str(m, mo, NFTA_VERDICT_CHAIN, x->name));
		nl_nest_end(m, vn);
		nl_nest_end(m, dn);
		break;
	}
	}
	nl_nest_end(m, d);
	nl_nest_end(m, el);
	return 0;
}

static int put_elem(struct nl_msgbuf *m, long mo, const struct nft_elem *e)
{
	if (e->key_len == 0 || e->key_len > NFT_DATA_MAX || e->key_end_len > NFT_DATA_MAX)
		return -EINVAL;
	long el = nl_nest_begin(m, mo, NFTA_LIST_ELEM);
	TRY(el);
	TRY(put_data(m, mo, NFTA_SET_ELEM_KEY, e->key, e->key_len));
	if (e->key_end_len)
		TRY(put_data(m, mo, NFTA_SET_ELEM_KEY_END, e->key_end, e->key_end_len));
	if (e->flags)
		TRY(nl_put_be32(m, mo, NFTA_SET_ELEM_FLAGS, e->flags));
	nl_nest_end(m, el);
	return 0;
}

static int need_name(const char *s)
{
	return s && s[0] && strlen(s) < NFT_NAME_MAX ? 0 : -EINVAL;
}

/* Element ops: as many messages as the 16-bit ELEMENTS nest needs. */
static int build_elems(struct builder *b, const char *table, const struct nft_op *op, uint32_t idx,
		       uint16_t type, uint16_t flags)
{
	uint32_t i = 0;
	do {
		long mo = b_begin(b, type, flags, b->family, 0, idx);
		TRY(mo);
		TRY(nl_put_str(&b->m, mo, NFTA_SET_ELEM_LIST_TABLE, table));
		TRY(nl_put_str(&b->m, mo, NFTA_SET_ELEM_LIST_SET, op->name));
		if (op->kind == NFT_OP_FLUSH_SET)
			return 0;
		long n = nl_nest_begin(&b->m, mo, NFTA_SET_ELEM_LIST_ELEMENTS);
		TRY(n);
		uint32_t start = i;
		for (; i < op->nelems; i++) {
			size_t before = b->m.len;
			TRY(put_elem(&b->m, mo, &op->elems[i]));
			if (b->m.len - (size_t)n > ELEMS_NEST_MAX && i > start) {
				nl_nest_cancel(&b->m, mo, (long)before);
				break;
			}
		}
		nl_nest_end(&b->m, n);
	} while (i < op->nelems);
	return 0;
}

static int build_op(struct builder *b, const char *table, const struct nft_op *op, uint32_t idx)
{
	struct nl_msgbuf *m = &b->m;
	const uint16_t req = NLM_F_REQUEST, create = NLM_F_REQUEST | NLM_F_CREATE;
	long mo;

	switch (op->kind) {
	case NFT_OP_ADD_TABLE:
	case NFT_OP_DEL_TABLE:
		mo = b_begin(b, MSGTYPE(op->kind == NFT_OP_ADD_TABLE ? NFT_MSG_NEWTABLE : NFT_MSG_DELTABLE),
			     op->kind == NFT_OP_ADD_TABLE ? create : req, b->family, 0, idx);
		TRY(mo);
		TRY(nl_put_str(m, mo, NFTA_TABLE_NAME, table));
		if (op->kind == NFT_OP_ADD_TABLE)
			TRY(nl_put_be32(m, mo, NFTA_TABLE_FLAGS, 0));
		return 0;
	case NFT_OP_FLUSH_TABLE:
	case NFT_OP_FLUSH_CHAIN:
	case NFT_OP_DEL_RULE:
		if (op->kind != NFT_OP_FLUSH_TABLE)
			TRY(need_name(op->name));
		mo = b_begin(b, MSGTYPE(NFT_MSG_DELRULE), req, b->family, 0, idx);
		TRY(mo);
		TRY(nl_put_str(m, mo, NFTA_RULE_TABLE, table));
		if (op->kind != NFT_OP_FLUSH_TABLE)
			TRY(nl_put_str(m, mo, NFTA_RULE_CHAIN, op->name));
		if (op->kind == NFT_OP_DEL_RULE) {
			if (!op->handle)
				return -EINVAL;
			TRY(nl_put(m, mo, NFTA_RULE_HANDLE, &(uint64_t){htobe64(op->handle)}, 8));
		}
		return 0;
	case NFT_OP_ADD_CHAIN:
	case NFT_OP_DEL_CHAIN:
		TRY(need_name(op->name));
		mo = b_begin(b, MSGTYPE(op->kind == NFT_OP_ADD_CHAIN ? NFT_MSG_NEWCHAIN : NFT_MSG_DELCHAIN),
			     op->kind == NFT_OP_ADD_CHAIN ? create : req, b->family, 0, idx);
		TRY(mo);
		TRY(nl_put_str(m, mo, NFTA_CHAIN_TABLE, table));
		TRY(nl_put_str(m, mo, NFTA_CHAIN_NAME, op->name));
		if (op->kind == NFT_OP_DEL_CHAIN || !op->has_hook)
			return 0;
		{
			long h = nl_nest_begin(m, mo, NFTA_CHAIN_HOOK);
			TRY(h);
			TRY(nl_put_be32(m, mo, NFTA_HOOK_HOOKNUM, op->hooknum));
			TRY(nl_put_be32(m, mo, NFTA_HOOK_PRIORITY, (uint32_t)op->prio));
			nl_nest_end(m, h);
		}
		if (op->has_policy)
			TRY(nl_put_be32(m, mo, NFTA_CHAIN_POLICY, op->policy));
		TRY(nl_put_str(m, mo, NFTA_CHAIN_TYPE, op->chain_type ? op->chain_type : "filter"));
		return 0;
	case NFT_OP_ADD_SET:
	case NFT_OP_DEL_SET:
		TRY(need_name(op->name));
		mo = b_begin(b, MSGTYPE(op->kind == NFT_OP_ADD_SET ? NFT_MSG_NEWSET : NFT_MSG_DELSET),
			     op->kind == NFT_OP_ADD_SET ? create : req, b->family, 0, idx);
		TRY(mo);
		TRY(nl_put_str(m, mo, NFTA_SET_TABLE, table));
		TRY(nl_put_str(m, mo, NFTA_SET_NAME, op->name));
		if (op->kind == NFT_OP_DEL_SET)
			return 0;
		if (!op->key_len || op->key_len > NFT_DATA_MAX || op->nfields > NFT_FIELDS_MAX)
			return -EINVAL;
		TRY(nl_put_be32(m, mo, NFTA_SET_FLAGS, op->set_flags));
		TRY(nl_put_be32(m, mo, NFTA_SET_KEY_TYPE, op->key_type));
		TRY(nl_put_be32(m, mo, NFTA_SET_KEY_LEN, op->key_len));
		TRY(nl_put_be32(m, mo, NFTA_SET_ID, idx + 1));
		if (op->nfields > 1) {
			long d = nl_nest_begin(m, mo, NFTA_SET_DESC);
			TRY(d);
			long c = nl_nest_begin(m, mo, NFTA_SET_DESC_CONCAT);
			TRY(c);
			for (uint32_t i = 0; i < op->nfields; i++) {
				long e = nl_nest_begin(m, mo, NFTA_LIST_ELEM);
				TRY(e);
				TRY(nl_put_be32(m, mo, NFTA_SET_FIELD_LEN, op->field_len[i]));
				nl_nest_end(m, e);
			}
			nl_nest_end(m, c);
			nl_nest_end(m, d);
		}
		return 0;
	case NFT_OP_FLUSH_SET:
	case NFT_OP_ADD_ELEMS:
	case NFT_OP_DEL_ELEMS:
		TRY(need_name(op->name));
		return build_elems(b, table, op, idx,
				   MSGTYPE(op->kind == NFT_OP_ADD_ELEMS ? NFT_MSG_NEWSETELEM
									: NFT_MSG_DELSETELEM),
				   op->kind == NFT_OP_ADD_ELEMS ? create : req);
	case NFT_OP_ADD_RULE: {
		TRY(need_name(op->name));
		mo = b_begin(b, MSGTYPE(NFT_MSG_NEWRULE), create | NLM_F_APPEND, b->family, 0, idx);
		TRY(mo);
		TRY(nl_put_str(m, mo, NFTA_RULE_TABLE, table));
		TRY(nl_put_str(m, mo, NFTA_RULE_CHAIN, op->name));
		long l = nl_nest_begin(m, mo, NFTA_RULE_EXPRESSIONS);
		TRY(l);
		for (uint32_t i = 0; i < op->nexprs; i++)
			TRY(put_expr(m, mo, &op->exprs[i]));
		nl_nest_end(m, l);
		return 0;
	}
	}
	return -EINVAL;
}

static int build_once(const struct nft_batch *bt, uint32_t seq, struct builder *b)
{
	long mo = b_begin(b, NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, AF_UNSPEC, NFNL_SUBSYS_NFTABLES,
			  UINT32_MAX);
	TRY(mo);
	if (bt->genid)
		TRY(nl_put_be32(&b->m, mo, NFNL_BATCH_GENID, bt->genid));
	for (uint32_t i = 0; i < bt->nops; i++)
		TRY(build_op(b, bt->table, &bt->ops[i], i));
	TRY(b_begin(b, NFNL_MSG_BATCH_END, NLM_F_REQUEST, AF_UNSPEC, NFNL_SUBSYS_NFTABLES,
		    UINT32_MAX));
	(void)seq;
	return 0;
}

void nft_built_free(struct nft_built *out)
{
	if (!out)
		return;
	free(out->buf);
	free(out->msg_off);
	free(out->msg_op);
	memset(out, 0, sizeof(*out));
}

int nft_build_batch(const struct nft_batch *bt, uint32_t seq, struct nft_built *out)
{
	memset(out, 0, sizeof(*out));
	if (!bt || need_name(bt->table) < 0 || (bt->nops && !bt->ops))
		return -EINVAL;
	if (bt->family != NFPROTO_INET && bt->family != NFPROTO_IPV4 && bt->family != NFPROTO_IPV6)
		return -EAFNOSUPPORT;
	size_t cap = 16384;
	for (;;) {
		struct builder b = {.seq = seq, .family = bt->family};
		b.m.buf = malloc(cap);
		b.m.cap = cap;
		if (!b.m.buf)
			return -ENOMEM;
		int r = build_once(bt, seq, &b);
		if (r == 0) {
			out->buf = b.m.buf;
			out->len = b.m.len;
			out->nmsgs = b.nmsgs;
			out->msg_off = b.msg_off;
			out->msg_op = b.msg_op;
			return 0;
		}
		free(b.m.buf);
		free(b.msg_off);
		free(b.msg_op);
		if (r != -ENOBUFS || cap >= BUILD_CAP_MAX)
			return r;
		cap *= 4;
	}
}

/* ==== applying ========================================================================== */

static int seq_in(uint32_t s, uint32_t lo, uint32_t hi)
{
	return (uint32_t)(s - lo) <= (uint32_t)(hi - lo);
}

/* NFTA_GEN_ID of a NEWGEN message (the GETGEN answer), 0 when absent or malformed. */
static uint32_t newgen_id(const struct nlmsghdr *h)
{
	size_t hl = NLMSG_LENGTH(sizeof(struct nfgenmsg));
	const struct nlattr *tb[NFTA_GEN_ID + 1];
	uint32_t v;

	if (h->nlmsg_len < hl ||
	    nl_parse_attrs((const uint8_t *)h + NLMSG_ALIGN(hl), h->nlmsg_len - NLMSG_ALIGN(hl), tb,
			   NFTA_GEN_ID) < 0 ||
	    !tb[NFTA_GEN_ID] || nl_attr_len(tb[NFTA_GEN_ID]) != 4)
		return 0;
	memcpy(&v, nl_attr_data(tb[NFTA_GEN_ID]), 4);
	return ntohl(v);
}

/* The batch carries no NLM_F_ACK (an ACK per op could overflow the receive queue on big
 * batches); the kernel only answers failing messages, and a failed commit is reported against
 * BATCH_BEGIN. To know when every answer is in, a GETGEN with NLM_F_ACK follows in a second
 * send: nfnetlink handles both synchronously and in order, so its ACK comes last. Its NEWGEN
 * answer is the generation right after the commit (saves the caller a separate round trip). */
static int batch_recv(struct nl_sock *s, uint32_t lo, uint32_t hi, uint32_t sync, uint32_t *bad_seq,
		      struct nl_err *err, uint32_t *gen)
{
	size_t cap = 65536;
	uint8_t *buf = malloc(cap);
	int first = 0, done = 0;

	if (!buf)
		return -ENOMEM;
	while (!done) {
		ssize_t n = recv(s->fd, buf, cap, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			first = first ? first : (errno == EAGAIN ? -ETIMEDOUT : -errno);
			break;
		}
		size_t left = (size_t)n;
		for (const struct nlmsghdr *h = (const void *)buf; NLMSG_OK(h, left);
		     h = NLMSG_NEXT(h, left)) {
			if (h->nlmsg_type == MSGTYPE(NFT_MSG_NEWGEN) && h->nlmsg_seq == sync) {
				*gen = newgen_id(h);
				continue;
			}
			if (h->nlmsg_type != NLMSG_ERROR)
				continue;
			if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
				continue;
			const struct nlmsgerr *e = NLMSG_DATA(h);
			if (h->nlmsg_seq == sync) {
				done = 1;
				continue;
			}
			if (!seq_in(h->nlmsg_seq, lo, hi) || e->error == 0 || first)
				continue;
			first = e->error < 0 ? e->error : -e->error;
			*bad_seq = h->nlmsg_seq;
			err->err = -first;
			nl_decode_ext_ack(h, err);
		}
	}
	free(buf);
	return first;
}

int nft_apply(const struct nft_batch *bt, struct nl_err *err, long *bad_op, uint32_t *gen)
{
	struct nl_sock s;
	struct nft_built built;
	uint32_t g = 0;
	int r;

	*bad_op = -1;
	err->err = 0;
	err->msg[0] = '\0';
	r = nl_open(&s, NETLINK_NETFILTER);
	if (r < 0)
		goto out_err;
	r = nft_build_batch(bt, s.seq + 1, &built);
	if (r < 0) {
		nl_close(&s);
		goto out_err;
	}
	uint32_t lo = s.seq + 1, hi = s.seq + built.nmsgs, sync = hi + 1, bad = 0;
	s.seq = sync;
	/* A batch is one datagram: the send buffer must hold it (root may force past wmem_max). */
	int sb = (int)(built.len + 65536);
	if (setsockopt(s.fd, SOL_SOCKET, SO_SNDBUFFORCE, &sb, sizeof(sb)) < 0)
		(void)setsockopt(s.fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof(sb));
	struct timeval tv = {.tv_sec = APPLY_TIMEOUT_SEC};
	(void)setsockopt(s.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

	r = nl_send(&s, built.buf, built.len);
	if (r == 0) {
		uint8_t gb[64];
		struct nl_msgbuf g = {gb, sizeof(gb), 0};
		struct nfgenmsg gh = {.nfgen_family = AF_UNSPEC, .version = NFNETLINK_V0};
		long o = nl_msg_begin(&g, MSGTYPE(NFT_MSG_GETGEN), NLM_F_REQUEST | NLM_F_ACK, sync, &gh,
				      sizeof(gh));
		r = o < 0 ? (int)o : nl_send(&s, g.buf, g.len);
	}
	if (r == 0) {
		r = batch_recv(&s, lo, hi, sync, &bad, err, &g);
		if (r < 0 && bad) {
			uint32_t i = bad - lo;
			*bad_op = i < built.nmsgs && built.msg_op[i] != UINT32_MAX ? (long)built.msg_op[i]
										  : -1;
		}
	}
	nft_built_free(&built);
	nl_close(&s);
	if (r < 0)
		goto out_err;
	if (gen)
		*gen = g;
	return 0;
out_err:
	if (!err->err)
		err->err = -r;
	return r;
}

/* ==== parsing =========================================================================== */

/* Iterates the attributes of a nest (repeated types allowed, unlike nl_parse_attrs). */
static const struct nlattr *attr_next(const uint8_t **p, size_t *left, int *bad)
{
	if (*left < NLA_HDRLEN)
		return NULL;
	const struct nlattr *a = (const void *)*p;
	if (a->nla_len < NLA_HDRLEN || a->nla_len > *left) {
		*bad = 1;
		return NULL;
	}
	size_t step = NLA_ALIGN(a->nla_len);
	if (step > *left)
		step = *left;
	*p += step;
	*left -= step;
	return a;
}

static int get_be32(const struct nlattr *a, uint32_t *v)
{
	if (!a)
		return 0;
	if (nl_attr_len(a) < 4)
		return -EBADMSG;
	uint32_t x;
	memcpy(&x, nl_attr_data(a), 4);
	*v = ntohl(x);
	return 1;
}

static int get_be64(const struct nlattr *a, uint64_t *v)
{
	if (!a)
		return 0;
	if (nl_attr_len(a) < 8)
		return -EBADMSG;
	uint64_t x;
	memcpy(&x, nl_attr_data(a), 8);
	*v = be64toh(x);
	return 1;
}

static int get_str(const struct nlattr *a, char *dst, size_t cap)
{
	dst[0] = '\0';
	if (!a)
		return 0;
	size_t n = nl_attr_len(a);
	if (n >= cap)
		return -EBADMSG;
	memcpy(dst, nl_attr_data(a), n);
	dst[n] = '\0';
	return 1;
}

#define PARSE_NEST(a, tb, max)                                                       \
	do {                                                                         \
		if (nl_parse_attrs(nl_attr_data(a), nl_attr_len(a), tb, max) < 0) \
			return -EBADMSG;                                             \
	} while (0)

#define CHK(x)                          \
	do {                            \
		int r_ = (x);           \
		if (r_ < 0)             \
			return r_;      \
	} while (0)

/* nft_data { VALUE } -> bytes. */
static int get_value(const struct nlattr *a, uint8_t *dst, uint32_t *len)
{
	const struct nlattr *tb[NFTA_DATA_MAX + 1];
	*len = 0;
	if (!a)
		return 0;
	PARSE_NEST(a, tb, NFTA_DATA_MAX);
	if (!tb[NFTA_DATA_VALUE] || nl_attr_len(tb[NFTA_DATA_VALUE]) > NFT_DATA_MAX)
		return -EBADMSG;
	*len = (uint32_t)nl_attr_len(tb[NFTA_DATA_VALUE]);
	memcpy(dst, nl_attr_data(tb[NFTA_DATA_VALUE]), *len);
	return 1;
}

static int parse_expr(const struct nlattr *el, struct nft_expr *x)
{
	const struct nlattr *tb[NFTA_EXPR_MAX + 1], *d[32];
	char name[32];

	memset(x, 0, sizeof(*x));
	PARSE_NEST(el, tb, NFTA_EXPR_MAX);
	if (!tb[NFTA_EXPR_NAME] || get_str(tb[NFTA_EXPR_NAME], name, sizeof(name)) < 0)
		return -EBADMSG;
	for (int i = 0; i < 32; i++)
		d[i] = NULL;
	if (tb[NFTA_EXPR_DATA])
		PARSE_NEST(tb[NFTA_EXPR_DATA], d, 31);
	if (!strcmp(name, "payload")) {
		x->type = NFT_X_PAYLOAD;
		CHK(get_be32(d[NFTA_PAYLOAD_DREG], &x->dreg));
		CHK(get_be32(d[NFTA_PAYLOAD_BASE], &x->base));
		CHK(get_be32(d[NFTA_PAYLOAD_OFFSET], &x->offset));
		CHK(get_be32(d[NFTA_PAYLOAD_LEN], &x->len));
	} else if (!strcmp(name, "meta")) {
		x->type = NFT_X_META;
		CHK(get_be32(d[NFTA_META_DREG], &x->dreg));
		CHK(get_be32(d[NFTA_META_KEY], &x->key));
	} else if (!strcmp(name, "ct")) {
		x->type = NFT_X_CT;
		CHK(get_be32(d[NFTA_CT_DREG], &x->dreg));
		CHK(get_be32(d[NFTA_CT_KEY], &x->key));
	} else if (!strcmp(name, "cmp")) {
		x->type = NFT_X_CMP;
		CHK(get_be32(d[NFTA_CMP_SREG], &x->sreg));
		CHK(get_be32(d[NFTA_CMP_OP], &x->op));
		CHK(get_value(d[NFTA_CMP_DATA], x->data, &x->data_len));
	} else if (!strcmp(name, "bitwise")) {
		x->type = NFT_X_BITWISE;
		CHK(get_be32(d[NFTA_BITWISE_SREG], &x->sreg));
		CHK(get_be32(d[NFTA_BITWISE_DREG], &x->dreg));
		CHK(get_be32(d[NFTA_BITWISE_LEN], &x->len));
		CHK(get_value(d[NFTA_BITWISE_MASK], x->data, &x->data_len));
		CHK(get_value(d[NFTA_BITWISE_XOR], x->xor_, &x->xor_len));
	} else if (!strcmp(name, "lookup")) {
		x->type = NFT_X_LOOKUP;
		CHK(get_str(d[NFTA_LOOKUP_SET], x->name, sizeof(x->name)));
		CHK(get_be32(d[NFTA_LOOKUP_SREG], &x->sreg));
		CHK(get_be32(d[NFTA_LOOKUP_FLAGS], &x->flags));
	} else if (!strcmp(name, "counter")) {
		x->type = NFT_X_COUNTER;
		CHK(get_be64(d[NFTA_COUNTER_PACKETS], &x->packets));
		CHK(get_be64(d[NFTA_COUNTER_BYTES], &x->bytes));
	} else if (!strcmp(name, "log")) {
		x->type = NFT_X_LOG;
		int r = get_str(d[NFTA_LOG_PREFIX], x->name, sizeof(x->name));
		CHK(r);
		x->has_prefix = r;
		r = get_be32(d[NFTA_LOG_LEVEL], &x->level);
		CHK(r);
		x->has_level = r;
	} else if (!strcmp(name, "immediate")) {
		const struct nlattr *dt[NFTA_DATA_MAX + 1], *vt[NFTA_VERDICT_MAX + 1];
		uint32_t dreg = 0, code = 0;
		x->type = NFT_X_IMMEDIATE;
		CHK(get_be32(d[NFTA_IMMEDIATE_DREG], &dreg));
		if (dreg != NFT_REG_VERDICT || !d[NFTA_IMMEDIATE_DATA])
			goto unknown; /* a data load, not a verdict: not ours */
		PARSE_NEST(d[NFTA_IMMEDIATE_DATA], dt, NFTA_DATA_MAX);
		if (!dt[NFTA_DATA_VERDICT])
			return -EBADMSG;
		PARSE_NEST(dt[NFTA_DATA_VERDICT], vt, NFTA_VERDICT_MAX);
		if (get_be32(vt[NFTA_VERDICT_CODE], &code) != 1)
			return -EBADMSG;
		x->verdict = (int32_t)code;
		CHK(get_str(vt[NFTA_VERDICT_CHAIN], x->name, sizeof(x->name)));
	} else {
	unknown:
		memset(x, 0, sizeof(*x));
		x->type = NFT_X_UNKNOWN;
		memcpy(x->name, name, sizeof(name));
	}
	return 0;
}

static int keep(const struct nft_dump_cb *cb, uint8_t family, const char *table)
{
	return (!cb->want_family || cb->want_family == family) &&
	       (!cb->want_table || !strcmp(cb->want_table, table));
}

static int parse_table(const struct nlattr *const *tb, uint8_t fam, const struct nft_dump_cb *cb)
{
	struct nft_table_info t;
	memset(&t, 0, sizeof(t));
	t.family = fam;
	if (get_str(tb[NFTA_TABLE_NAME], t.name, sizeof(t.name)) != 1)
		return -EBADMSG;
	CHK(get_be32(tb[NFTA_TABLE_FLAGS], &t.flags));
	CHK(get_be32(tb[NFTA_TABLE_USE], &t.use));
	CHK(get_be64(tb[NFTA_TABLE_HANDLE], &t.handle));
	return keep(cb, fam, t.name) && cb->table ? cb->table(&t, cb->arg) : 0;
}

static int parse_chain(const struct nlattr *const *tb, uint8_t fam, const struct nft_dump_cb *cb)
{
	struct nft_chain_info c;
	memset(&c, 0, sizeof(c));
	c.family = fam;
	if (get_str(tb[NFTA_CHAIN_TABLE], c.table, sizeof(c.table)) != 1 ||
	    get_str(tb[NFTA_CHAIN_NAME], c.name, sizeof(c.name)) != 1)
		return -EBADMSG;
	CHK(get_be64(tb[NFTA_CHAIN_HANDLE], &c.handle));
	CHK(get_be32(tb[NFTA_CHAIN_USE], &c.use));
	CHK(get_str(tb[NFTA_CHAIN_TYPE], c.type, sizeof(c.type)));
	int r = get_be32(tb[NFTA_CHAIN_POLICY], &c.policy);
	CHK(r);
	c.has_policy = r;
	if (tb[NFTA_CHAIN_HOOK]) {
		const struct nlattr *h[NFTA_HOOK_MAX + 1];
		uint32_t prio = 0;
		PARSE_NEST(tb[NFTA_CHAIN_HOOK], h, NFTA_HOOK_MAX);
		if (get_be32(h[NFTA_HOOK_HOOKNUM], &c.hooknum) != 1)
			return -EBADMSG;
		CHK(get_be32(h[NFTA_HOOK_PRIORITY], &prio));
		c.prio = (int32_t)prio;
		c.has_hook = 1;
	}
	return keep(cb, fam, c.table) && cb->chain ? cb->chain(&c, cb->arg) : 0;
}

static int parse_set(const struct nlattr *const *tb, uint8_t fam, const struct nft_dump_cb *cb)
{
	struct nft_set_info s;
	memset(&s, 0, sizeof(s));
	s.family = fam;
	if (get_str(tb[NFTA_SET_TABLE], s.table, sizeof(s.table)) != 1 ||
	    get_str(tb[NFTA_SET_NAME], s.name, sizeof(s.name)) != 1)
		return -EBADMSG;
	CHK(get_be64(tb[NFTA_SET_HANDLE], &s.handle));
	CHK(get_be32(tb[NFTA_SET_FLAGS], &s.flags));
	CHK(get_be32(tb[NFTA_SET_KEY_TYPE], &s.key_type));
	CHK(get_be32(tb[NFTA_SET_KEY_LEN], &s.key_len));
	if (tb[NFTA_SET_DESC]) {
		const struct nlattr *d[NFTA_SET_DESC_MAX + 1];
		PARSE_NEST(tb[NFTA_SET_DESC], d, NFTA_SET_DESC_MAX);
		if (d[NFTA_SET_DESC_CONCAT]) {
			const uint8_t *p = nl_attr_data(d[NFTA_SET_DESC_CONCAT]);
			size_t left = nl_attr_len(d[NFTA_SET_DESC_CONCAT]);
			int bad = 0;
			const struct nlattr *a;
			while ((a = attr_next(&p, &left, &bad))) {
				const struct nlattr *f[NFTA_SET_FIELD_MAX + 1];
				if (s.nfields == NFT_FIELDS_MAX)
					return -EBADMSG;
				PARSE_NEST(a, f, NFTA_SET_FIELD_MAX);
				if (get_be32(f[NFTA_SET_FIELD_LEN], &s.field_len[s.nfields]) != 1)
					return -EBADMSG;
				s.nfields++;
			}
			if (bad)
				return -EBADMSG;
		}
	}
	return keep(cb, fam, s.table) && cb->set ? cb->set(&s, cb->arg) : 0;
}

static int parse_elems(const struct nlattr *const *tb, uint8_t fam, const struct nft_dump_cb *cb)
{
	struct nft_elem_info e;
	memset(&e, 0, sizeof(e));
	e.family = fam;
	if (get_str(tb[NFTA_SET_ELEM_LIST_TABLE], e.table, sizeof(e.table)) != 1 ||
	    get_str(tb[NFTA_SET_ELEM_LIST_SET], e.set, sizeof(e.set)) != 1)
		return -EBADMSG;
	if (!tb[NFTA_SET_ELEM_LIST_ELEMENTS] || !keep(cb, fam, e.table) || !cb->elem)
		return 0;
	const uint8_t *p = nl_attr_data(tb[NFTA_SET_ELEM_LIST_ELEMENTS]);
	size_t left = nl_attr_len(tb[NFTA_SET_ELEM_LIST_ELEMENTS]);
	int bad = 0;
	const struct nlattr *a;
	while ((a = attr_next(&p, &left, &bad))) {
		const struct nlattr *t[NFTA_SET_ELEM_MAX + 1];
		memset(&e.e, 0, sizeof(e.e));
		PARSE_NEST(a, t, NFTA_SET_ELEM_MAX);
		if (get_value(t[NFTA_SET_ELEM_KEY], e.e.key, &e.e.key_len) != 1)
			return -EBADMSG;
		CHK(get_value(t[NFTA_SET_ELEM_KEY_END], e.e.key_end, &e.e.key_end_len));
		CHK(get_be32(t[NFTA_SET_ELEM_FLAGS], &e.e.flags));
		CHK(cb->elem(&e, cb->arg));
	}
	return bad ? -EBADMSG : 0;
}

static int parse_rule(const struct nlattr *const *tb, uint8_t fam, const struct nft_dump_cb *cb)
{
	struct nft_rule_info *r = calloc(1, sizeof(*r));
	int ret = -EBADMSG;
	if (!r)
		return -ENOMEM;
	r->family = fam;
	if (get_str(tb[NFTA_RULE_TABLE], r->table, sizeof(r->table)) != 1 ||
	    get_str(tb[NFTA_RULE_CHAIN], r->chain, sizeof(r->chain)) != 1 ||
	    get_be64(tb[NFTA_RULE_HANDLE], &r->handle) < 0)
		goto out;
	if (tb[NFTA_RULE_EXPRESSIONS]) {
		const uint8_t *p = nl_attr_data(tb[NFTA_RULE_EXPRESSIONS]);
		size_t left = nl_attr_len(tb[NFTA_RULE_EXPRESSIONS]);
		int bad = 0;
		const struct nlattr *a;
		while ((a = attr_next(&p, &left, &bad))) {
			if (r->nexprs == NFT_RULE_MAX_EXPRS) {
				ret = -E2BIG;
				goto out;
			}
			if ((ret = parse_expr(a, &r->exprs[r->nexprs])) < 0)
				goto out;
			r->nexprs++;
		}
		if (bad) {
			ret = -EBADMSG;
			goto out;
		}
	}
	ret = keep(cb, fam, r->table) && cb->rule ? cb->rule(r, cb->arg) : 0;
out:
	free(r);
	return ret;
}

int nft_parse_msg(const void *msg, size_t len, const struct nft_dump_cb *cb)
{
	const struct nlmsghdr *h = msg;
	/* Room for the largest attribute table we use. */
	const struct nlattr *tb[32];

	if (len < NLMSG_HDRLEN || h->nlmsg_len < NLMSG_HDRLEN || h->nlmsg_len > len)
		return -EBADMSG;
	if ((h->nlmsg_type >> 8) != NFNL_SUBSYS_NFTABLES)
		return 0;
	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nfgenmsg)))
		return -EBADMSG;
	const struct nfgenmsg *g = NLMSG_DATA(h);
	const uint8_t *attrs = (const uint8_t *)g + NLMSG_ALIGN(sizeof(*g));
	size_t alen = h->nlmsg_len - NLMSG_LENGTH(NLMSG_ALIGN(sizeof(*g)));
	if (nl_parse_attrs(attrs, alen, tb, 31) < 0)
		return -EBADMSG;
	switch (h->nlmsg_type & 0xff) {
	case NFT_MSG_NEWTABLE:
		return parse_table(tb, g->nfgen_family, cb);
	case NFT_MSG_NEWCHAIN:
		return parse_chain(tb, g->nfgen_family, cb);
	case NFT_MSG_NEWSET:
		return parse_set(tb, g->nfgen_family, cb);
	case NFT_MSG_NEWSETELEM:
		return parse_elems(tb, g->nfgen_family, cb);
	case NFT_MSG_NEWRULE:
		return parse_rule(tb, g->nfgen_family, cb);
	}
	return 0;
}

int nft_parse_buf(const void *buf, size_t len, const struct nft_dump_cb *cb)
{
	const uint8_t *p = buf;
	while (len >= NLMSG_HDRLEN) {
		const struct nlmsghdr *h = (const void *)p;
		if (h->nlmsg_len < NLMSG_HDRLEN || h->nlmsg_len > len)
			return -EBADMSG;
		int r = nft_parse_msg(p, h->nlmsg_len, cb);
		if (r < 0)
			return r;
		size_t step = NLMSG_ALIGN(h->nlmsg_len);
		if (step >= len)
			break;
		p += step;
		len -= step;
	}
	return 0;
}

/* ==== dumping =========================================================================== */

struct dump_ctx {
	const struct nft_dump_cb *user;
	struct nft_dump_cb mine;
	char (*sets)[NFT_NAME_MAX];
	uint32_t nsets, cap;
};

static int dump_msg_cb(const struct nlmsghdr *h, void *arg)
{
	const struct nft_dump_cb *cb = arg;
	return nft_parse_msg(h, h->nlmsg_len, cb);
}

/* Remembers set names (for the per-set element dumps) and forwards the set. */
static int dump_set_cb(const struct nft_set_info *s, void *arg)
{
	struct dump_ctx *c = arg;
	if (c->nsets == c->cap) {
		uint32_t nc = c->cap ? c->cap * 2 : 8;
		void *n = realloc(c->sets, nc * sizeof(*c->sets));
		if (!n)
			return -ENOMEM;
		c->sets = n;
		c->cap = nc;
	}
	memcpy(c->sets[c->nsets++], s->name, NFT_NAME_MAX);
	return c->user->set ? c->user->set(s, c->user->arg) : 0;
}

static int dump_one(struct nl_sock *s, uint8_t family, uint8_t msg, uint16_t flags,
		    uint16_t a_table, const char *table, uint16_t a_name, const char *name,
		    const struct nft_dump_cb *cb, struct nl_err *err)
{
	uint8_t b[1024];
	struct nl_msgbuf m = {b, sizeof(b), 0};
	struct nfgenmsg g = {.nfgen_family = family, .version = NFNETLINK_V0};
	uint32_t seq = ++s->seq;
	long o = nl_msg_begin(&m, MSGTYPE(msg), NLM_F_REQUEST | flags, seq, &g, sizeof(g));
	if (o < 0 || nl_put_str(&m, o, a_table, table) < 0 ||
	    (name && nl_put_str(&m, o, a_name, name) < 0))
		return -ENOBUFS;
	return nl_transact(s, m.buf, m.len, seq, seq, dump_msg_cb, (void *)cb, err);
}

int nft_dump(uint8_t family, const char *table, const struct nft_dump_cb *cb, struct nl_err *err)
{
	struct nl_sock s;
	struct dump_ctx c = {.user = cb};
	int r;

	err->err = 0;
	err->msg[0] = '\0';
	if (need_name(table) < 0)
		return -EINVAL;
	c.mine = *cb;
	c.mine.want_family = family;
	c.mine.want_table = table;
	r = nl_open(&s, NETLINK_NETFILTER);
	if (r < 0) {
		err->err = -r;
		return r;
	}
	r = dump_one(&s, family, NFT_MSG_GETTABLE, NLM_F_ACK, NFTA_TABLE_NAME, table, 0, NULL,
		     &c.mine, err);
	if (r == -ENOENT) { /* no table: nothing else to read */
		err->err = 0;
		err->msg[0] = '\0';
		r = 0;
		goto out;
	}
	if (r < 0)
		goto out;
	r = dump_one(&s, family, NFT_MSG_GETCHAIN, NLM_F_DUMP, NFTA_CHAIN_TABLE, table, 0, NULL,
		     &c.mine, err);
	if (r < 0)
		goto out;
	{
		struct nft_dump_cb sc = c.mine;
		sc.set = dump_set_cb;
		sc.arg = &c;
		r = dump_one(&s, family, NFT_MSG_GETSET, NLM_F_DUMP, NFTA_SET_TABLE, table, 0, NULL,
			     &sc, err);
		if (r < 0)
			goto out;
	}
	for (uint32_t i = 0; i < c.nsets; i++) {
		r = dump_one(&s, family, NFT_MSG_GETSETELEM, NLM_F_DUMP, NFTA_SET_ELEM_LIST_TABLE,
			     table, NFTA_SET_ELEM_LIST_SET, c.sets[i], &c.mine, err);
		if (r < 0)
			goto out;
	}
	r = dump_one(&s, family, NFT_MSG_GETRULE, NLM_F_DUMP, NFTA_RULE_TABLE, table, 0, NULL,
		     &c.mine, err);
out:
	free(c.sets);
	nl_close(&s);
	return r;
}
