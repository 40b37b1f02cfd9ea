/* rtnl.c — rtnetlink links/addresses/routes (see rtnl.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "rtnl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>

#define RTNL_BUF 1024

/* Growable array of fixed-size records filled by dump callbacks. */
struct vec {
	void *items;
	size_t n, cap, size;
};

static void *vec_push(struct vec *v)
{
	if (v->n == v->cap) {
		size_t nc = v->cap ? v->cap * 2 : 16;
		void *ni = realloc(v->items, nc * v->size);
		if (!ni)
			return NULL;
		v->items = ni;
		v->cap = nc;
	}
	void *p = (uint8_t *)v->items + v->n * v->size;
	memset(p, 0, v->size);
	v->n++;
	return p;
}

static int fail_local(struct nl_err *err, int e)
{
	if (err) {
		err->err = -e;
		err->msg[0] = '\0';
	}
	return e;
}

/* One dump; -EINTR when the kernel flagged it inconsistent (callers retry). */
static int dump(struct nl_sock *s, uint16_t type, const void *hdr, size_t hdrlen, nl_msg_cb cb,
		void *arg, struct nl_err *err)
{
	uint8_t b[RTNL_BUF];
	struct nl_msgbuf m = {b, sizeof(b), 0};
	uint32_t seq = ++s->seq;
	long o = nl_msg_begin(&m, type, NLM_F_REQUEST | NLM_F_DUMP, seq, hdr, hdrlen);
	if (o < 0)
		return fail_local(err, (int)o);
	return nl_transact(s, m.buf, m.len, seq, seq, cb, arg, err);
}

/* ---- links ------------------------------------------------------------- */

int rtnl_link_parse(const struct nlmsghdr *h, struct rtnl_link *l)
{
	memset(l, 0, sizeof(*l));
	if (h->nlmsg_type != RTM_NEWLINK)
		return 0;
	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifinfomsg)))
		return -EBADMSG;
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	const struct nlattr *tb[IFLA_MAX + 1];
	if (nl_parse_attrs(IFLA_RTA(ifi), h->nlmsg_len - NLMSG_LENGTH(sizeof(*ifi)), tb, IFLA_MAX) < 0)
		return -EBADMSG;
	l->index = ifi->ifi_index;
	l->up = (ifi->ifi_flags & IFF_UP) != 0;
	if (tb[IFLA_IFNAME]) {
		size_t n = nl_attr_len(tb[IFLA_IFNAME]);
		if (n >= sizeof(l->name))
			n = sizeof(l->name) - 1;
		memcpy(l->name, nl_attr_data(tb[IFLA_IFNAME]), n);
		l->name[strnlen(l->name, n)] = '\0';
	}
	if (tb[IFLA_MTU] && nl_attr_len(tb[IFLA_MTU]) >= 4)
		memcpy(&l->mtu, nl_attr_data(tb[IFLA_MTU]), 4);
	if (tb[IFLA_LINKINFO]) {
		const struct nlattr *li[IFLA_INFO_MAX + 1];
		if (nl_parse_attrs(nl_attr_data(tb[IFLA_LINKINFO]), nl_attr_len(tb[IFLA_LINKINFO]), li,
				   IFLA_INFO_MAX) == 0 &&
		    li[IFLA_INFO_KIND]) {
			size_t n = nl_attr_len(li[IFLA_INFO_KIND]);
			if (n >= sizeof(l->kind))
				n = sizeof(l->kind) - 1;
			memcpy(l->kind, nl_attr_data(li[IFLA_INFO_KIND]), n);
			l->kind[strnlen(l->kind, n)] = '\0';
		}
	}
	return 1;
}

static int link_cb(const struct nlmsghdr *h, void *arg)
{
	struct rtnl_link l;
	int r = rtnl_link_parse(h, &l);
	if (r <= 0)
		return r;
	struct rtnl_link *p = vec_push(arg);
	if (!p)
		return -ENOMEM;
	*p = l;
	return 0;
}

int rtnl_link_list(struct nl_sock *s, struct rtnl_link **out, size_t *n, struct nl_err *err)
{
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
	struct vec v = {NULL, 0, 0, sizeof(struct rtnl_link)};
	int r, tries = 0;
	do {
		v.n = 0;
		r = dump(s, RTM_GETLINK, &ifi, sizeof(ifi), link_cb, &v, err);
	} while (r == -EINTR && ++tries < 8);
	if (r < 0) {
		free(v.items);
		return r;
	}
	*out = v.items;
	*n = v.n;
	return 0;
}

static int check_name(const char *name, struct nl_err *err)
{
	size_t n = strlen(name);
	if (n == 0 || n >= IFNAMSIZ)
		return fail_local(err, -EINVAL);
	return 0;
}

/* RTM_NEWLINK/DELLINK addressed by name (ifi_index 0 + IFLA_IFNAME). */
static int link_request(struct nl_sock *s, uint16_t type, uint16_t flags, const char *name,
			const char *kind, int up, uint32_t mtu, struct nl_err *err)
{
	uint8_t b[RTNL_BUF];
	struct nl_msgbuf m = {b, sizeof(b), 0};
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
	uint32_t seq = ++s->seq;
	int r = check_name(name, err);
	if (r < 0)
		return r;
	if (up >= 0) {
		ifi.ifi_change = IFF_UP;
		ifi.ifi_flags = up ? IFF_UP : 0;
	}
	long o = nl_msg_begin(&m, type, NLM_F_REQUEST | NLM_F_ACK | flags, seq, &ifi, sizeof(ifi));
	if (o < 0 || nl_put_str(&m, o, IFLA_IFNAME, name) < 0)
		return fail_local(err, -ENOBUFS);
	if (mtu && nl_put_u32(&m, o, IFLA_MTU, mtu) < 0)
		return fail_local(err, -ENOBUFS);
	if (kind) {
		long li = nl_nest_begin(&m, o, IFLA_LINKINFO);
		if (li < 0 || nl_put_str(&m, o, IFLA_INFO_KIND, kind) < 0)
			return fail_local(err, -ENOBUFS);
		nl_nest_end(&m, li);
	}
	return nl_transact(s, m.buf, m.len, seq, seq, NULL, NULL, err);
}

int rtnl_link_add(struct nl_sock *s, const char *name, const char *kind, struct nl_err *err)
{
	if (!kind || !*kind || strlen(kind) >= 32)
		return fail_local(err, -EINVAL);
	return link_request(s, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, name, kind, -1, 0, err);
}

int rtnl_link_del(struct nl_sock *s, const char *name, struct nl_err *err)
{
	return link_request(s, RTM_DELLINK, 0, name, NULL, -1, 0, err);
}

int rtnl_link_set(struct nl_sock *s, const char *name, int up, uint32_t mtu, struct nl_err *err)
{
	return link_request(s, RTM_NEWLINK, 0, name, NULL, up, mtu, err);
}

/* ---- addresses --------------------------------------------------------- */

struct addr_ctx {
	struct vec v;
	int ifindex;
};

int rtnl_addr_parse(const struct nlmsghdr *h, int ifindex, struct rtnl_addr *r)
{
	memset(r, 0, sizeof(*r));
	if (h->nlmsg_type != RTM_NEWADDR)
		return 0;
	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifaddrmsg)))
		return -EBADMSG;
	const struct ifaddrmsg *ifa = NLMSG_DATA(h);
	if (ifindex && (int)ifa->ifa_index != ifindex)
		return 0;
	if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6)
		return 0;
	const struct nlattr *tb[IFA_MAX + 1];
	if (nl_parse_attrs(IFA_RTA(ifa), h->nlmsg_len - NLMSG_LENGTH(sizeof(*ifa)), tb, IFA_MAX) < 0)
		return -EBADMSG;
	/* IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer on p2p links). */
	const struct nlattr *a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	size_t alen = ifa->ifa_family == AF_INET ? 4 : 16;
	if (!a || nl_attr_len(a) < alen)
		return 0;
	r->ifindex = (int)ifa->ifa_index;
	r->family = ifa->ifa_family;
	r->prefixlen = ifa->ifa_prefixlen;
	memcpy(r->addr, nl_attr_data(a), alen);
	return 1;
}

static int addr_cb(const struct nlmsghdr *h, void *arg)
{
	struct addr_ctx *c = arg;
	struct rtnl_addr a;
	int r = rtnl_addr_parse(h, c->ifindex, &a);
	if (r <= 0)
		return r;
	struct rtnl_addr *p = vec_push(&c->v);
	if (!p)
		return -ENOMEM;
	*p = a;
	return 0;
}

int rtnl_addr_list(struct nl_sock *s, int ifindex, struct rtnl_addr **out, size_t *n,
		   struct nl_err *err)
{
	struct ifaddrmsg ifa = {.ifa_family = AF_UNSPEC};
	struct addr_ctx c = {{NULL, 0, 0, sizeof(struct rtnl_addr)}, ifindex};
	int r, tries = 0;
	do {
		c.v.n = 0;
		r = dump(s, RTM_GETADDR, &ifa, sizeof(ifa), addr_cb, &c, err);
	} while (r == -EINTR && ++tries < 8);
	if (r < 0) {
		free(c.v.items);
		return r;
	}
	*out = c.v.items;
	*n = c.v.n;
	return 0;
}

int rtnl_addr_change(struct nl_sock *s, int add, const struct rtnl_addr *a, struct nl_err *err)
{
	uint8_t b[RTNL_BUF];
	struct nl_msgbuf m = {b, sizeof(b), 0};
	size_t alen = a->family == AF_INET ? 4 : 16;
	unsigned maxlen = a->family == AF_INET ? 32 : 128;
	if ((a->family != AF_INET && a->family != AF_INET6) || a->prefixlen > maxlen ||
	    a->ifindex <= 0)
		return fail_local(err, -EINVAL);
	struct ifaddrmsg ifa = {
		.ifa_family = (uint8_t)a->family,
		.ifa_prefixlen = a->prefixlen,
		.ifa_scope = RT_SCOPE_UNIVERSE,
		.ifa_index = (uint32_t)a->ifindex,
	};
	uint32_t seq = ++s->seq;
	uint16_t flags = add ? NLM_F_CREATE | NLM_F_EXCL : 0;
	long o = nl_msg_begin(&m, add ? RTM_NEWADDR : RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK | flags,
			      seq, &ifa, sizeof(ifa));
	/* Like ip(8): IFA_LOCAL and IFA_ADDRESS both the address when there is no peer. */
	if (o < 0 || nl_put(&m, o, IFA_LOCAL, a->addr, alen) < 0 ||
	    nl_put(&m, o, IFA_ADDRESS, a->addr, alen) < 0)
		return fail_local(err, -ENOBUFS);
	return nl_transact(s, m.buf, m.len, seq, seq, NULL, NULL, err);
}

/* ---- routes ------------------------------------------------------------ */

struct route_ctx {
	struct vec v;
	uint32_t table;
};

int rtnl_route_parse(const struct nlmsghdr *h, uint32_t table_filter, struct rtnl_route *r)
{
	memset(r, 0, sizeof(*r));
	if (h->nlmsg_type != RTM_NEWROUTE)
		return 0;
	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct rtmsg)))
		return -EBADMSG;
	const struct rtmsg *rt = NLMSG_DATA(h);
	if (rt->rtm_family != AF_INET && rt->rtm_family != AF_INET6)
		return 0;
	if (rt->rtm_type != RTN_UNICAST || (rt->rtm_flags & RTM_F_CLONED))
		return 0;
	const struct nlattr *tb[RTA_MAX + 1];
	if (nl_parse_attrs(RTM_RTA(rt), h->nlmsg_len - NLMSG_LENGTH(sizeof(*rt)), tb, RTA_MAX) < 0)
		return -EBADMSG;
	uint32_t table = rt->rtm_table;
	if (tb[RTA_TABLE] && nl_attr_len(tb[RTA_TABLE]) >= 4)
		memcpy(&table, nl_attr_data(tb[RTA_TABLE]), 4);
	if (table_filter && table != table_filter)
		return 0;
	size_t alen = rt->rtm_family == AF_INET ? 4 : 16;
	r->family = rt->rtm_family;
	r->dst_len = rt->rtm_dst_len;
	r->table = table;
	if (tb[RTA_DST] && nl_attr_len(tb[RTA_DST]) >= alen)
		memcpy(r->dst, nl_attr_data(tb[RTA_DST]), alen);
	if (tb[RTA_OIF] && nl_attr_len(tb[RTA_OIF]) >= 4)
		memcpy(&r->oif, nl_attr_data(tb[RTA_OIF]), 4);
	if (tb[RTA_PREFSRC] && nl_attr_len(tb[RTA_PREFSRC]) >= alen) {
		r->has_src = 1;
		memcpy(r->src, nl_attr_data(tb[RTA_PREFSRC]), alen);
	}
	if (tb[RTA_GATEWAY] && nl_attr_len(tb[RTA_GATEWAY]) >= alen) {
		r->has_gw = 1;
		memcpy(r->gw, nl_attr_data(tb[RTA_GATEWAY]), alen);
	}
	return 1;
}

static int route_cb(const struct nlmsghdr *h, void *arg)
{
	struct route_ctx *c = arg;
	struct rtnl_route rt;
	int r = rtnl_route_parse(h, c->table, &rt);
	if (r <= 0)
		return r;
	struct rtnl_route *p = vec_push(&c->v);
	if (!p)
		return -ENOMEM;
	*p = rt;
	return 0;
}

int rtnl_route_list(struct nl_sock *s, uint32_t table, struct rtnl_route **out, size_t *n,
		    struct nl_err *err)
{
	struct rtmsg rt = {.rtm_family = AF_UNSPEC};
	struct route_ctx c = {{NULL, 0, 0, sizeof(struct rtnl_route)}, table};
	int r, tries = 0;
	do {
		c.v.n = 0;
		r = dump(s, RTM_GETROUTE, &rt, sizeof(rt), route_cb, &c, err);
	} while (r == -EINTR && ++tries < 8);
	if (r < 0) {
		free(c.v.items);
		return r;
	}
	*out = c.v.items;
	*n = c.v.n;
	return 0;
}

int rtnl_route_change(struct nl_sock *s, int add, const struct rtnl_route *r, struct nl_err *err)
{
	uint8_t b[RTNL_BUF];
	struct nl_msgbuf m = {b, sizeof(b), 0};
	size_t alen = r->family == AF_INET ? 4 : 16;
	unsigned maxlen = r->family == AF_INET ? 32 : 128;
	uint32_t table = r->table ? r->table : RT_TABLE_MAIN;
	if ((r->family != AF_INET && r->family != AF_INET6) || r->dst_len > maxlen)
		return fail_local(err, -EINVAL);
	struct rtmsg rt = {
		.rtm_family = (uint8_t)r->family,
		.rtm_dst_len = r->dst_len,
		/* Tables above 255 do not fit rtm_table: RT_TABLE_UNSPEC there + RTA_TABLE. */
		.rtm_table = table < 256 ? (uint8_t)table : RT_TABLE_UNSPEC,
		.rtm_protocol = add ? RTPROT_BOOT : 0,
		.rtm_scope = add ? (r->has_gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK) : RT_SCOPE_NOWHERE,
		.rtm_type = add ? RTN_UNICAST : 0,
	};
	uint32_t seq = ++s->seq;
	uint16_t flags = add ? NLM_F_CREATE | NLM_F_EXCL : 0;
	long o = nl_msg_begin(&m, add ? RTM_NEWROUTE : RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK | flags,
			      seq, &rt, sizeof(rt));
	if (o < 0 || nl_put_u32(&m, o, RTA_TABLE, table) < 0 ||
	    nl_put(&m, o, RTA_DST, r->dst, alen) < 0)
		return fail_local(err, -ENOBUFS);
	if (r->oif && nl_put_u32(&m, o, RTA_OIF, (uint32_t)r->oif) < 0)
		return fail_local(err, -ENOBUFS);
	if (r->has_src && nl_put(&m, o, RTA_PREFSRC, r->src, alen) < 0)
		return fail_local(err, -ENOBUFS);
	if (r->has_gw && nl_put(&m, o, RTA_GATEWAY, r->gw, alen) < 0)
		return fail_local(err, -ENOBUFS);
	return nl_transact(s, m.buf, m.len, seq, seq, NULL, NULL, err);
}
