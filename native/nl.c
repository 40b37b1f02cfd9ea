/* nl.c — netlink core (see nl.h). Pure C: no N-API, no logging, -errno everywhere. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "nl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/genetlink.h>

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif
#ifndef NLM_F_CAPPED
#define NLM_F_CAPPED 0x100
#endif
#ifndef NLM_F_ACK_TLVS
#define NLM_F_ACK_TLVS 0x200
#endif
#ifndef NLMSGERR_ATTR_MSG
#define NLMSGERR_ATTR_MSG 1
#endif

#define NL_RECV_MIN (32u * 1024u)
/* A sane ceiling: the kernel never sends a single datagram bigger than this. */
#define NL_RECV_MAX (16u * 1024u * 1024u)

int nl_open(struct nl_sock *s, int protocol)
{
	struct sockaddr_nl sa;
	socklen_t salen = sizeof(sa);
	int one = 1;
	int rcvbuf = 1024 * 1024;

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
	if (fd < 0)
		return -errno;
	/* Both are best effort: old kernels lack them and the decoder copes either way. */
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));

	memset(&sa, 0, sizeof(sa));
	sa.nl_family = AF_NETLINK;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto fail;
	if (getsockname(fd, (struct sockaddr *)&sa, &salen) < 0)
		goto fail;
	s->fd = fd;
	s->portid = sa.nl_pid;
	s->protocol = protocol;
	/* Random-ish start so stale replies from a previous socket user cannot match. */
	s->seq = (uint32_t)getpid() ^ (uint32_t)(uintptr_t)s;
	if (s->seq == 0)
		s->seq = 1;
	return 0;
fail:;
	int e = errno;
	close(fd);
	return -e;
}

void nl_close(struct nl_sock *s)
{
	if (!s)
		return;
	if (s->fd > 0)
		close(s->fd);
	s->fd = -1;
}

/* ---- building ---------------------------------------------------------- */

static struct nlmsghdr *msg_at(struct nl_msgbuf *m, long off)
{
	return (struct nlmsghdr *)(m->buf + off);
}

long nl_msg_begin(struct nl_msgbuf *m, uint16_t type, uint16_t flags, uint32_t seq,
		  const void *hdr, size_t hdrlen)
{
	size_t off = NLMSG_ALIGN(m->len);
	size_t need = NLMSG_HDRLEN + NLMSG_ALIGN(hdrlen);
	if (off > m->cap || need > m->cap - off)
		return -ENOBUFS;
	memset(m->buf + m->len, 0, off - m->len + need);
	struct nlmsghdr *h = (struct nlmsghdr *)(m->buf + off);
	h->nlmsg_len = (uint32_t)need;
	h->nlmsg_type = type;
	h->nlmsg_flags = flags;
	h->nlmsg_seq = seq;
	h->nlmsg_pid = 0;
	if (hdrlen)
		memcpy(m->buf + off + NLMSG_HDRLEN, hdr, hdrlen);
	m->len = off + need;
	return (long)off;
}

void nl_msg_cancel(struct nl_msgbuf *m, long msg_off)
{
	if (msg_off >= 0 && (size_t)msg_off <= m->len)
		m->len = (size_t)msg_off;
}

int nl_put(struct nl_msgbuf *m, long msg_off, uint16_t type, const void *data, size_t len)
{
	size_t off = NLMSG_ALIGN(m->len);
	size_t alen = NLA_HDRLEN + len;
	size_t total = NLA_ALIGN(alen);
	if (alen > 0xffff || off > m->cap || total > m->cap - off)
		return -ENOBUFS;
	memset(m->buf + m->len, 0, off - m->len + total);
	struct nlattr *a = (struct nlattr *)(m->buf + off);
	a->nla_len = (uint16_t)alen;
	a->nla_type = type;
	if (len)
		memcpy(m->buf + off + NLA_HDRLEN, data, len);
	m->len = off + total;
	msg_at(m, msg_off)->nlmsg_len = (uint32_t)(m->len - (size_t)msg_off);
	return 0;
}

int nl_put_u8(struct nl_msgbuf *m, long o, uint16_t t, uint8_t v) { return nl_put(m, o, t, &v, 1); }
int nl_put_u16(struct nl_msgbuf *m, long o, uint16_t t, uint16_t v) { return nl_put(m, o, t, &v, 2); }
int nl_put_u32(struct nl_msgbuf *m, long o, uint16_t t, uint32_t v) { return nl_put(m, o, t, &v, 4); }
int nl_put_u64(struct nl_msgbuf *m, long o, uint16_t t, uint64_t v) { return nl_put(m, o, t, &v, 8); }
int nl_put_be16(struct nl_msgbuf *m, long o, uint16_t t, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	return nl_put(m, o, t, b, 2);
}
int nl_put_be32(struct nl_msgbuf *m, long o, uint16_t t, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	return nl_put(m, o, t, b, 4);
}
int nl_put_str(struct nl_msgbuf *m, long o, uint16_t t, const char *s)
{
	return nl_put(m, o, t, s, strlen(s) + 1);
}

long nl_nest_begin(struct nl_msgbuf *m, long msg_off, uint16_t type)
{
	size_t off = NLMSG_ALIGN(m->len);
	int r = nl_put(m, msg_off, (uint16_t)(type | NLA_F_NESTED), NULL, 0);
	if (r < 0)
		return r;
	return (long)off;
}

void nl_nest_end(struct nl_msgbuf *m, long nest_off)
{
	struct nlattr *a = (struct nlattr *)(m->buf + nest_off);
	a->nla_len = (uint16_t)(m->len - (size_t)nest_off);
}

void nl_nest_cancel(struct nl_msgbuf *m, long msg_off, long nest_off)
{
	if (nest_off >= msg_off && (size_t)nest_off <= m->len) {
		m->len = (size_t)nest_off;
		msg_at(m, msg_off)->nlmsg_len = (uint32_t)(m->len - (size_t)msg_off);
	}
}

/* ---- I/O --------------------------------------------------------------- */

int nl_send(struct nl_sock *s, const void *buf, size_t len)
{
	struct sockaddr_nl sa;
	memset(&sa, 0, sizeof(sa));
	sa.nl_family = AF_NETLINK;
	for (;;) {
		ssize_t n = sendto(s->fd, buf, len, 0, (struct sockaddr *)&sa, sizeof(sa));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if ((size_t)n != len)
			return -EMSGSIZE;
		return 0;
	}
}

void nl_decode_ext_ack(const struct nlmsghdr *h, struct nl_err *err)
{
	const struct nlmsgerr *e = NLMSG_DATA(h);
	size_t payload = h->nlmsg_len - NLMSG_HDRLEN;
	size_t off;

	if (!err || !(h->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	/* With NLM_F_CAPPED only the original header is echoed, else the whole request. */
	if (h->nlmsg_flags & NLM_F_CAPPED)
		off = sizeof(*e);
	else {
		if (payload < sizeof(*e))
			return;
		off = sizeof(*e) - sizeof(e->msg) + NLMSG_ALIGN(e->msg.nlmsg_len);
	}
	if (off >= payload)
		return;
	const struct nlattr *tb[NLMSGERR_ATTR_MSG + 1];
	if (nl_parse_attrs((const uint8_t *)e + off, payload - off, tb, NLMSGERR_ATTR_MSG) < 0)
		return;
	const struct nlattr *a = tb[NLMSGERR_ATTR_MSG];
	if (!a)
		return;
	size_t n = nl_attr_len(a);
	if (n >= sizeof(err->msg))
		n = sizeof(err->msg) - 1;
	memcpy(err->msg, nl_attr_data(a), n);
	err->msg[n] = '\0';
	/* The kernel's string carries its own NUL; trim anything after it. */
	err->msg[strnlen(err->msg, n)] = '\0';
}

static int seq_in(uint32_t seq, uint32_t lo, uint32_t hi)
{
	/* Wrap-safe range test. */
	return (uint32_t)(seq - lo) <= (uint32_t)(hi - lo);
}

int nl_recv(struct nl_sock *s, uint32_t seq, uint32_t seq_last, nl_msg_cb cb, void *arg,
	    struct nl_err *err)
{
	size_t cap = NL_RECV_MIN;
	uint8_t *buf = malloc(cap);
	int ret = 0;
	/* Each seq in the batch must end with an ACK/error or DONE; count them. */
	uint32_t pending = seq_last - seq + 1;
	int first_err = 0;

	if (err) {
		err->err = 0;
		err->msg[0] = '\0';
	}
	if (!buf)
		return -ENOMEM;

	while (pending > 0) {
		ssize_t n = recv(s->fd, buf, cap, MSG_PEEK | MSG_TRUNC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto out;
		}
		if ((size_t)n > cap) {
			if ((size_t)n > NL_RECV_MAX) {
				ret = -EMSGSIZE;
				goto out;
			}
			uint8_t *nb = realloc(buf, (size_t)n);
			if (!nb) {
				ret = -ENOMEM;
				goto out;
			}
			buf = nb;
			cap = (size_t)n;
		}
		n = recv(s->fd, buf, cap, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto out;
		}
		size_t left = (size_t)n;
		for (const struct nlmsghdr *h = (const struct nlmsghdr *)buf; NLMSG_OK(h, left);
		     h = NLMSG_NEXT(h, left)) {
			if (h->nlmsg_pid != s->portid && h->nlmsg_pid != 0)
				continue;
			if (!seq_in(h->nlmsg_seq, seq, seq_last))
				continue; /* stale reply of an earlier, aborted request */
			if (h->nlmsg_type == NLMSG_ERROR) {
				if (h->nlmsg_len < NLMSG_LENGTH(sizeof(int))) {
					ret = -EBADMSG;
					goto out;
				}
				const struct nlmsgerr *e = NLMSG_DATA(h);
				pending--;
				if (e->error != 0 && !first_err) {
					first_err = e->error < 0 ? e->error : -e->error;
					if (err) {
						err->err = -first_err;
						nl_decode_ext_ack(h, err);
					}
				}
				continue;
			}
			if (h->nlmsg_type == NLMSG_DONE) {
				pending--;
				/* A dump may end with an error code in DONE's payload. */
				if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(int))) {
					int e = *(const int *)NLMSG_DATA(h);
					if (e < 0 && !first_err) {
						first_err = e;
						if (err)
							err->err = -e;
					}
				}
				continue;
			}
			if (h->nlmsg_type == NLMSG_NOOP || h->nlmsg_type == NLMSG_OVERRUN)
				continue;
			/* The object changed during the dump: the result may be inconsistent.
			 * Drain, then report -EINTR so the caller can retry (as libmnl). */
			if ((h->nlmsg_flags & NLM_F_DUMP_INTR) && !first_err) {
				first_err = -EINTR;
				if (err)
					err->err = EINTR;
			}
			if (cb && !first_err) {
				int r = cb(h, arg);
				if (r < 0) {
					/* Keep draining so the socket stays usable, but remember the error. */
					first_err = r;
					if (err)
						err->err = -r;
				}
			}
		}
	}
	ret = first_err;
out:
	free(buf);
	if (ret < 0 && err && err->err == 0)
		err->err = -ret;
	return ret;
}

int nl_transact(struct nl_sock *s, const void *buf, size_t len, uint32_t seq, uint32_t seq_last,
		nl_msg_cb cb, void *arg, struct nl_err *err)
{
	int r = nl_send(s, buf, len);
	if (r < 0) {
		if (err) {
			err->err = -r;
			err->msg[0] = '\0';
		}
		return r;
	}
	return nl_recv(s, seq, seq_last, cb, arg, err);
}

/* ---- parsing ----------------------------------------------------------- */

int nl_parse_attrs(const void *data, size_t len, const struct nlattr **tb, int max)
{
	const uint8_t *p = data;
	for (int i = 0; i <= max; i++)
		tb[i] = NULL;
	while (len >= NLA_HDRLEN) {
		const struct nlattr *a = (const struct nlattr *)p;
		if (a->nla_len < NLA_HDRLEN || a->nla_len > len)
			return -EINVAL;
		uint16_t t = a->nla_type & NLA_TYPE_MASK;
		if (t <= max && max >= 0)
			tb[t] = a;
		size_t step = NLA_ALIGN(a->nla_len);
		if (step >= len)
			return 0;
		p += step;
		len -= step;
	}
	/* Trailing bytes shorter than a header are padding or garbage; padding is only legal < 4. */
	return len == 0 || len < NLA_HDRLEN ? 0 : -EINVAL;
}

/* ---- generic netlink ---------------------------------------------------- */

struct family_ctx {
	const char *name;
	uint16_t id;
	int found;
};

static int family_cb(const struct nlmsghdr *h, void *arg)
{
	struct family_ctx *c = arg;
	if (h->nlmsg_len < NLMSG_LENGTH(GENL_HDRLEN))
		return -EBADMSG;
	const uint8_t *attrs = (const uint8_t *)NLMSG_DATA(h) + GENL_HDRLEN;
	size_t alen = h->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);
	const struct nlattr *tb[CTRL_ATTR_FAMILY_NAME + 1];
	if (nl_parse_attrs(attrs, alen, tb, CTRL_ATTR_FAMILY_NAME) < 0)
		return -EBADMSG;
	if (!tb[CTRL_ATTR_FAMILY_ID] || nl_attr_len(tb[CTRL_ATTR_FAMILY_ID]) < 2)
		return -EBADMSG;
	c->id = *(const uint16_t *)nl_attr_data(tb[CTRL_ATTR_FAMILY_ID]);
	c->found = 1;
	return 0;
}

int nl_genl_family(struct nl_sock *genl, const char *name, uint16_t *id, struct nl_err *err)
{
	uint8_t b[256];
	struct nl_msgbuf m = {b, sizeof(b), 0};
	struct genlmsghdr g = {.cmd = CTRL_CMD_GETFAMILY, .version = 1};
	uint32_t seq = ++genl->seq;
	struct family_ctx c = {name, 0, 0};

	if (strlen(name) >= GENL_NAMSIZ) {
		if (err) {
			err->err = EINVAL;
			err->msg[0] = '\0';
		}
		return -EINVAL;
	}
	long o = nl_msg_begin(&m, GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, seq, &g, sizeof(g));
	if (o < 0 || nl_put_str(&m, o, CTRL_ATTR_FAMILY_NAME, name) < 0)
		return -ENOBUFS;
	int r = nl_transact(genl, m.buf, m.len, seq, seq, family_cb, &c, err);
	if (r < 0)
		return r;
	if (!c.found) {
		if (err)
			err->err = ENOENT;
		return -ENOENT;
	}
	*id = c.id;
	return 0;
}
