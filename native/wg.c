/* wg.c — WireGuard generic netlink (see wg.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "wg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/genetlink.h>

#if __has_include(<linux/wireguard.h>)
#include <linux/wireguard.h>
#else
/* uapi/linux/wireguard.h, for build hosts without the header. */
#define WG_GENL_NAME "wireguard"
#define WG_GENL_VERSION 1
enum wg_cmd { WG_CMD_GET_DEVICE, WG_CMD_SET_DEVICE };
enum wgdevice_flag { WGDEVICE_F_REPLACE_PEERS = 1U << 0 };
enum wgdevice_attribute {
	WGDEVICE_A_UNSPEC, WGDEVICE_A_IFINDEX, WGDEVICE_A_IFNAME, WGDEVICE_A_PRIVATE_KEY,
	WGDEVICE_A_PUBLIC_KEY, WGDEVICE_A_FLAGS, WGDEVICE_A_LISTEN_PORT, WGDEVICE_A_FWMARK,
	WGDEVICE_A_PEERS, __WGDEVICE_A_LAST
};
#define WGDEVICE_A_MAX (__WGDEVICE_A_LAST - 1)
enum wgpeer_flag {
	WGPEER_F_REMOVE_ME = 1U << 0,
	WGPEER_F_REPLACE_ALLOWEDIPS = 1U << 1,
	WGPEER_F_UPDATE_ONLY = 1U << 2,
};
enum wgpeer_attribute {
	WGPEER_A_UNSPEC, WGPEER_A_PUBLIC_KEY, WGPEER_A_PRESHARED_KEY, WGPEER_A_FLAGS,
	WGPEER_A_ENDPOINT, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, WGPEER_A_LAST_HANDSHAKE_TIME,
	WGPEER_A_RX_BYTES, WGPEER_A_TX_BYTES, WGPEER_A_ALLOWEDIPS, WGPEER_A_PROTOCOL_VERSION,
	__WGPEER_A_LAST
};
#define WGPEER_A_MAX (__WGPEER_A_LAST - 1)
enum wgallowedip_attribute {
	WGALLOWEDIP_A_UNSPEC, WGALLOWEDIP_A_FAMILY, WGALLOWEDIP_A_IPADDR, WGALLOWEDIP_A_CIDR_MASK,
	__WGALLOWEDIP_A_LAST
};
#define WGALLOWEDIP_A_MAX (__WGALLOWEDIP_A_LAST - 1)
#endif

#ifndef WGPEER_F_UPDATE_ONLY
#define WGPEER_F_UPDATE_ONLY (1U << 2)
#endif

/* ---- growth ------------------------------------------------------------ */

struct wg_peer *wg_device_add_peer(struct wg_device *d)
{
	if (d->n_peers == d->cap_peers) {
		size_t nc = d->cap_peers ? d->cap_peers * 2 : 8;
		struct wg_peer *np = realloc(d->peers, nc * sizeof(*np));
		if (!np)
			return NULL;
		d->peers = np;
		d->cap_peers = nc;
	}
	struct wg_peer *p = &d->peers[d->n_peers++];
	memset(p, 0, sizeof(*p));
	return p;
}

struct wg_allowedip *wg_peer_add_allowedip(struct wg_peer *p)
{
	if (p->n_allowedips == p->cap_allowedips) {
		size_t nc = p->cap_allowedips ? p->cap_allowedips * 2 : 4;
		struct wg_allowedip *na = realloc(p->allowedips, nc * sizeof(*na));
		if (!na)
			return NULL;
		p->allowedips = na;
		p->cap_allowedips = nc;
	}
	struct wg_allowedip *a = &p->allowedips[p->n_allowedips++];
	memset(a, 0, sizeof(*a));
	return a;
}

void wg_device_free(struct wg_device *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n_peers; i++)
		free(d->peers[i].allowedips);
	free(d->peers);
	d->peers = NULL;
	d->n_peers = d->cap_peers = 0;
}

/* ---- SET_DEVICE builder ------------------------------------------------ */

static int put_peer_header(struct nl_msgbuf *m, long o, const struct wg_peer *p, int cont)
{
	uint32_t flags = 0;
	if (nl_put(m, o, WGPEER_A_PUBLIC_KEY, p->public_key, 32) < 0)
		return -ENOBUFS;
	if (p->flags & WGP_REMOVE_ME)
		flags |= WGPEER_F_REMOVE_ME;
	if (p->flags & WGP_UPDATE_ONLY)
		flags |= WGPEER_F_UPDATE_ONLY;
	/* A continuation (split inside the allowed IPs) repeats only the key (and the
	 * remove/update-only intent): REPLACE_ALLOWEDIPS there would drop what the previous
	 * message just added. */
	if (!cont) {
		if (p->flags & WGP_REPLACE_ALLOWEDIPS)
			flags |= WGPEER_F_REPLACE_ALLOWEDIPS;
		if ((p->flags & WGP_HAS_PRESHARED_KEY) &&
		    nl_put(m, o, WGPEER_A_PRESHARED_KEY, p->preshared_key, 32) < 0)
			return -ENOBUFS;
		if (p->endpoint.addr.sa_family == AF_INET &&
		    nl_put(m, o, WGPEER_A_ENDPOINT, &p->endpoint.addr4, sizeof(p->endpoint.addr4)) < 0)
			return -ENOBUFS;
		if (p->endpoint.addr.sa_family == AF_INET6 &&
		    nl_put(m, o, WGPEER_A_ENDPOINT, &p->endpoint.addr6, sizeof(p->endpoint.addr6)) < 0)
			return -ENOBUFS;
		if ((p->flags & WGP_HAS_KEEPALIVE) &&
		    nl_put_u16(m, o, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, p->keepalive) < 0)
			return -ENOBUFS;
	}
	if (flags && nl_put_u32(m, o, WGPEER_A_FLAGS, flags) < 0)
		return -ENOBUFS;
	return 0;
}

static int put_allowedip(struct nl_msgbuf *m, long o, const struct wg_allowedip *a)
{
	long n = nl_nest_begin(m, o, 0);
	if (n < 0)
		return -ENOBUFS;
	if (nl_put_u16(m, o, WGALLOWEDIP_A_FAMILY, a->family) < 0 ||
	    nl_put(m, o, WGALLOWEDIP_A_IPADDR, a->addr, a->family == AF_INET ? 4 : 16) < 0 ||
	    nl_put_u8(m, o, WGALLOWEDIP_A_CIDR_MASK, a->cidr) < 0) {
		nl_nest_cancel(m, o, n);
		return -ENOBUFS;
	}
	nl_nest_end(m, n);
	return 0;
}

int wg_build_set(const struct wg_device *d, uint16_t family, uint32_t seq, size_t msg_max,
		 struct nl_msgbuf *m, size_t *n_msgs)
{
	size_t pi = 0;     /* next peer to (continue to) send */
	size_t ai = 0;     /* next allowed IP of peer pi when in_ips */
	int in_ips = 0;    /* peer pi's header went out already; only its IPs remain */
	int first = 1;
	size_t n = 0;

	*n_msgs = 0;
	if (strlen(d->name) == 0 || strlen(d->name) >= IFNAMSIZ)
		return -EINVAL;
	for (;;) {
		size_t start = NLMSG_ALIGN(m->len);
		if (start >= m->cap)
			return -ENOBUFS;
		size_t room = m->cap - start;
		int whole_buffer_limited = room < msg_max;
		struct nl_msgbuf sub = {m->buf + start, whole_buffer_limited ? room : msg_max, 0};
		struct genlmsghdr g = {.cmd = WG_CMD_SET_DEVICE, .version = WG_GENL_VERSION};
		size_t p0 = pi, a0 = ai;
		int in0 = in_ips, done = 0;
		long pn = -1, ipsn = -1, peers;

		/* Out of room in the caller's buffer is -ENOBUFS (grow and retry); a single
		 * message that cannot make progress is -EMSGSIZE. */
#define TOO_SMALL (whole_buffer_limited ? -ENOBUFS : -EMSGSIZE)
		long o = nl_msg_begin(&sub, family, NLM_F_REQUEST | NLM_F_ACK, seq + (uint32_t)n, &g,
				      sizeof(g));
		if (o < 0 || nl_put_str(&sub, o, WGDEVICE_A_IFNAME, d->name) < 0)
			return TOO_SMALL;
		if (first) {
			uint32_t dflags = 0;
			if ((d->flags & WGDEV_HAS_PRIVATE_KEY) &&
			    nl_put(&sub, o, WGDEVICE_A_PRIVATE_KEY, d->private_key, 32) < 0)
				return TOO_SMALL;
			if ((d->flags & WGDEV_HAS_LISTEN_PORT) &&
			    nl_put_u16(&sub, o, WGDEVICE_A_LISTEN_PORT, d->listen_port) < 0)
				return TOO_SMALL;
			if ((d->flags & WGDEV_HAS_FWMARK) &&
			    nl_put_u32(&sub, o, WGDEVICE_A_FWMARK, d->fwmark) < 0)
				return TOO_SMALL;
			if (d->flags & WGDEV_REPLACE_PEERS)
				dflags |= WGDEVICE_F_REPLACE_PEERS;
			if (dflags && nl_put_u32(&sub, o, WGDEVICE_A_FLAGS, dflags) < 0)
				return TOO_SMALL;
		}
		if (d->n_peers == 0) {
			done = 1;
			goto send;
		}
		peers = nl_nest_begin(&sub, o, WGDEVICE_A_PEERS);
		if (peers < 0)
			return TOO_SMALL;
		for (; pi < d->n_peers; pi++) {
			const struct wg_peer *p = &d->peers[pi];
			pn = nl_nest_begin(&sub, o, 0);
			if (pn < 0 || put_peer_header(&sub, o, p, in_ips) < 0)
				goto toobig_peers;
			if (p->n_allowedips) {
				if (!in_ips) {
					in_ips = 1;
					ai = 0;
				}
				ipsn = nl_nest_begin(&sub, o, WGPEER_A_ALLOWEDIPS);
				if (ipsn < 0)
					goto toobig_allowedips;
				for (; ai < p->n_allowedips; ai++)
					if (put_allowedip(&sub, o, &p->allowedips[ai]) < 0)
						goto toobig_allowedips;
				nl_nest_end(&sub, ipsn);
				ipsn = -1;
			}
			in_ips = 0;
			ai = 0;
			nl_nest_end(&sub, pn);
			pn = -1;
		}
		nl_nest_end(&sub, peers);
		done = 1;
		goto send;

	toobig_allowedips:
		/* Close what is open: the peer goes out with the IPs that fitted; the next
		 * message continues it under the same public key. */
		if (ipsn >= 0)
			nl_nest_end(&sub, ipsn);
		nl_nest_end(&sub, pn);
		nl_nest_end(&sub, peers);
		goto send;
	toobig_peers:
		if (pn >= 0)
			nl_nest_cancel(&sub, o, pn);
		nl_nest_end(&sub, peers);
		goto send;

	send:
		if (!done && pi == p0 && ai == a0 && in_ips == in0)
			return TOO_SMALL; /* nothing fitted into a fresh message */
#undef TOO_SMALL
		m->len = start + sub.len;
		n++;
		first = 0;
		if (done)
			break;
	}
	*n_msgs = n;
	return 0;
}

/* ---- GET_DEVICE parser ------------------------------------------------- */

/* Calls fn for every attribute of a nested stream; bounds checked. */
static int each_attr(const void *data, size_t len, int (*fn)(const struct nlattr *, void *), void *arg)
{
	const uint8_t *p = data;
	while (len >= NLA_HDRLEN) {
		const struct nlattr *a = (const struct nlattr *)p;
		if (a->nla_len < NLA_HDRLEN || a->nla_len > len)
			return -EINVAL;
		int r = fn(a, arg);
		if (r < 0)
			return r;
		size_t step = NLA_ALIGN(a->nla_len);
		if (step >= len)
			return 0;
		p += step;
		len -= step;
	}
	return 0;
}

static int parse_allowedip(const struct nlattr *attr, void *arg)
{
	struct wg_peer *p = arg;
	const struct nlattr *tb[WGALLOWEDIP_A_MAX + 1];
	if (nl_parse_attrs(nl_attr_data(attr), nl_attr_len(attr), tb, WGALLOWEDIP_A_MAX) < 0)
		return -EINVAL;
	if (!tb[WGALLOWEDIP_A_FAMILY] || !tb[WGALLOWEDIP_A_IPADDR] || !tb[WGALLOWEDIP_A_CIDR_MASK] ||
	    nl_attr_len(tb[WGALLOWEDIP_A_FAMILY]) < 2 || nl_attr_len(tb[WGALLOWEDIP_A_CIDR_MASK]) < 1)
		return -EINVAL;
	uint16_t fam;
	memcpy(&fam, nl_attr_data(tb[WGALLOWEDIP_A_FAMILY]), 2);
	uint8_t cidr = *(const uint8_t *)nl_attr_data(tb[WGALLOWEDIP_A_CIDR_MASK]);
	size_t alen = fam == AF_INET ? 4 : fam == AF_INET6 ? 16 : 0;
	if (!alen || nl_attr_len(tb[WGALLOWEDIP_A_IPADDR]) != alen || cidr > alen * 8)
		return -EINVAL;
	struct wg_allowedip *a = wg_peer_add_allowedip(p);
	if (!a)
		return -ENOMEM;
	a->family = fam;
	a->cidr = cidr;
	memcpy(a->addr, nl_attr_data(tb[WGALLOWEDIP_A_IPADDR]), alen);
	return 0;
}

static int parse_peer(const struct nlattr *attr, void *arg)
{
	struct wg_device *d = arg;
	const struct nlattr *tb[WGPEER_A_MAX + 1];
	struct wg_peer *p;

	if (nl_parse_attrs(nl_attr_data(attr), nl_attr_len(attr), tb, WGPEER_A_MAX) < 0)
		return -EINVAL;
	if (!tb[WGPEER_A_PUBLIC_KEY] || nl_attr_len(tb[WGPEER_A_PUBLIC_KEY]) != 32)
		return -EINVAL;
	const uint8_t *key = nl_attr_data(tb[WGPEER_A_PUBLIC_KEY]);
	/* The kernel continues a peer whose allowed IPs overflowed a message as the first peer
	 * of the next one, under the same key: coalesce (wireguard-tools coalesce_peers). */
	if (d->n_peers && !memcmp(d->peers[d->n_peers - 1].public_key, key, 32))
		p = &d->peers[d->n_peers - 1];
	else {
		p = wg_device_add_peer(d);
		if (!p)
			return -ENOMEM;
		memcpy(p->public_key, key, 32);
		p->flags |= WGP_HAS_PUBLIC_KEY;
	}
	const struct nlattr *a;
	if ((a = tb[WGPEER_A_PRESHARED_KEY])) {
		if (nl_attr_len(a) != 32)
			return -EINVAL;
		static const uint8_t zero[32];
		memcpy(p->preshared_key, nl_attr_data(a), 32);
		if (memcmp(p->preshared_key, zero, 32))
			p->flags |= WGP_HAS_PRESHARED_KEY;
	}
	if ((a = tb[WGPEER_A_ENDPOINT])) {
		size_t n = nl_attr_len(a);
		sa_family_t fam;
		if (n < sizeof(fam))
			return -EINVAL;
		memcpy(&fam, nl_attr_data(a), sizeof(fam));
		if (fam == AF_INET && n >= sizeof(struct sockaddr_in))
			memcpy(&p->endpoint.addr4, nl_attr_data(a), sizeof(struct sockaddr_in));
		else if (fam == AF_INET6 && n >= sizeof(struct sockaddr_in6))
			memcpy(&p->endpoint.addr6, nl_attr_data(a), sizeof(struct sockaddr_in6));
		else
			return -EINVAL;
	}
	if ((a = tb[WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL])) {
		if (nl_attr_len(a) != 2)
			return -EINVAL;
		memcpy(&p->keepalive, nl_attr_data(a), 2);
		p->flags |= WGP_HAS_KEEPALIVE;
	}
	if ((a = tb[WGPEER_A_LAST_HANDSHAKE_TIME])) {
		if (nl_attr_len(a) != 16) /* struct __kernel_timespec */
			return -EINVAL;
		memcpy(&p->last_handshake_sec, nl_attr_data(a), 8);
		memcpy(&p->last_handshake_nsec, (const uint8_t *)nl_attr_data(a) + 8, 8);
		p->flags |= WGP_HAS_STATS;
	}
	if ((a = tb[WGPEER_A_RX_BYTES])) {
		if (nl_attr_len(a) != 8)
			return -EINVAL;
		memcpy(&p->rx_bytes, nl_attr_data(a), 8);
		p->flags |= WGP_HAS_STATS;
	}
	if ((a = tb[WGPEER_A_TX_BYTES])) {
		if (nl_attr_len(a) != 8)
			return -EINVAL;
		memcpy(&p->tx_bytes, nl_attr_data(a), 8);
		p->flags |= WGP_HAS_STATS;
	}
	if ((a = tb[WGPEER_A_ALLOWEDIPS]))
		return each_attr(nl_attr_data(a), nl_attr_len(a), parse_allowedip, p);
	return 0;
}

int wg_parse_get_msg(struct wg_device *d, const struct nlmsghdr *h)
{
	if (h->nlmsg_len < NLMSG_LENGTH(GENL_HDRLEN))
		return -EBADMSG;
	const uint8_t *attrs = (const uint8_t *)NLMSG_DATA(h) + GENL_HDRLEN;
	size_t len = h->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);
	const struct nlattr *tb[WGDEVICE_A_MAX + 1];
	const struct nlattr *a;
	if (nl_parse_attrs(attrs, len, tb, WGDEVICE_A_MAX) < 0)
		return -EBADMSG;
	if ((a = tb[WGDEVICE_A_IFINDEX])) {
		if (nl_attr_len(a) != 4)
			return -EBADMSG;
		memcpy(&d->ifindex, nl_attr_data(a), 4);
	}
	if ((a = tb[WGDEVICE_A_IFNAME])) {
		size_t n = nl_attr_len(a);
		if (n >= sizeof(d->name))
			n = sizeof(d->name) - 1;
		memcpy(d->name, nl_attr_data(a), n);
		d->name[strnlen(d->name, n)] = '\0';
	}
	if ((a = tb[WGDEVICE_A_PRIVATE_KEY])) {
		if (nl_attr_len(a) != 32)
			return -EBADMSG;
		memcpy(d->private_key, nl_attr_data(a), 32);
		d->flags |= WGDEV_HAS_PRIVATE_KEY;
	}
	if ((a = tb[WGDEVICE_A_PUBLIC_KEY])) {
		if (nl_attr_len(a) != 32)
			return -EBADMSG;
		memcpy(d->public_key, nl_attr_data(a), 32);
		d->flags |= WGDEV_HAS_PUBLIC_KEY;
	}
	if ((a = tb[WGDEVICE_A_LISTEN_PORT])) {
		if (nl_attr_len(a) != 2)
			return -EBADMSG;
		memcpy(&d->listen_port, nl_attr_data(a), 2);
		d->flags |= WGDEV_HAS_LISTEN_PORT;
	}
	if ((a = tb[WGDEVICE_A_FWMARK])) {
		if (nl_attr_len(a) != 4)
			return -EBADMSG;
		memcpy(&d->fwmark, nl_attr_data(a), 4);
		d->flags |= WGDEV_HAS_FWMARK;
	}
	if ((a = tb[WGDEVICE_A_PEERS])) {
		int r = each_attr(nl_attr_data(a), nl_attr_len(a), parse_peer, d);
		if (r == -ENOMEM)
			return r;
		if (r < 0)
			return -EBADMSG;
	}
	return 0;
}

/* ---- kernel calls ------------------------------------------------------ */

static int resolve(struct nl_sock *s, uint16_t *family, struct nl_err *err, int *stage)
{
	*stage = 1;
	if (*family)
		return 0;
	return nl_genl_family(s, WG_GENL_NAME, family, err);
}

static int get_cb(const struct nlmsghdr *h, void *arg)
{
	return wg_parse_get_msg(arg, h);
}

int wg_get_device(struct nl_sock *s, uint16_t *family, const char *ifname, struct wg_device *d,
		  struct nl_err *err, int *stage)
{
	uint8_t b[256];
	struct nl_msgbuf m = {b, sizeof(b), 0};
	struct genlmsghdr g = {.cmd = WG_CMD_GET_DEVICE, .version = WG_GENL_VERSION};
	int r = resolve(s, family, err, stage);
	if (r < 0)
		return r;
	*stage = 2;
	if (strlen(ifname) == 0 || strlen(ifname) >= IFNAMSIZ)
		return -EINVAL;
	/* Peers changing mid-dump give NLM_F_DUMP_INTR: start over (wireguard-tools does). */
	for (int attempt = 0;; attempt++) {
		uint32_t seq = ++s->seq;
		m.len = 0;
		long o = nl_msg_begin(&m, *family, NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP, seq, &g,
				      sizeof(g));
		if (o < 0 || nl_put_str(&m, o, WGDEVICE_A_IFNAME, ifname) < 0)
			return -ENOBUFS;
		r = nl_transact(s, m.buf, m.len, seq, seq, get_cb, d, err);
		if (r != -EINTR || attempt >= 8)
			return r;
		wg_device_free(d);
		memset(d, 0, sizeof(*d));
	}
}

int wg_set_device(struct nl_sock *s, uint16_t *family, const struct wg_device *d,
		  struct nl_err *err, int *stage)
{
	int r = resolve(s, family, err, stage);
	if (r < 0)
		return r;
	*stage = 2;
	size_t cap = 64 * 1024, n = 0;
	uint8_t *buf = NULL;
	uint32_t seq = s->seq + 1;
	struct nl_msgbuf m;
	for (;;) {
		uint8_t *nb = realloc(buf, cap);
		if (!nb) {
			free(buf);
			return -ENOMEM;
		}
		buf = nb;
		m = (struct nl_msgbuf){buf, cap, 0};
		r = wg_build_set(d, *family, seq, WG_MSG_MAX, &m, &n);
		if (r != -ENOBUFS)
			break;
		cap *= 2;
	}
	if (r < 0) {
		free(buf);
		return r;
	}
	s->seq += (uint32_t)n;
	/* One message at a time, each acknowledged, like wireguard-tools: a failure stops the
	 * rest (the caller re-reads and reconciles). */
	size_t off = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		const struct nlmsghdr *h = (const struct nlmsghdr *)(buf + off);
		r = nl_transact(s, h, h->nlmsg_len, h->nlmsg_seq, h->nlmsg_seq, NULL, NULL, err);
		off += NLMSG_ALIGN(h->nlmsg_len);
	}
	free(buf);
	return r;
}
