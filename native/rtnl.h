/* rtnl.h — rtnetlink: links, addresses, routes. Pure C over nl.h; -errno returns. */
#ifndef PLEXD_RTNL_H
#define PLEXD_RTNL_H

#include <stddef.h>
#include <stdint.h>
#include <net/if.h>
#include "nl.h"

#ifdef __cplusplus
extern "C" {
#endif

struct rtnl_link {
	int index;
	char name[IF_NAMESIZE];
	char kind[32]; /* IFLA_INFO_KIND, "" when none */
	uint32_t mtu;
	int up;        /* IFF_UP (administrative state) */
};

struct rtnl_addr {
	int ifindex;
	int family;    /* AF_INET / AF_INET6 */
	uint8_t addr[16];
	uint8_t prefixlen;
};

struct rtnl_route {
	int family;
	uint8_t dst[16];
	uint8_t dst_len;
	int oif;       /* 0 = none */
	int has_src;
	uint8_t src[16];
	int has_gw;
	uint8_t gw[16];
	uint32_t table; /* 0 = main when adding */
};

/* Lists return a malloc'ed array in *out (free() it), count in *n. */
int rtnl_link_list(struct nl_sock *s, struct rtnl_link **out, size_t *n, struct nl_err *err);
int rtnl_link_add(struct nl_sock *s, const char *name, const char *kind, struct nl_err *err);
int rtnl_link_del(struct nl_sock *s, const char *name, struct nl_err *err);
/* up: -1 leave, 0 down, 1 up; mtu: 0 leave. */
int rtnl_link_set(struct nl_sock *s, const char *name, int up, uint32_t mtu, struct nl_err *err);

/* ifindex 0 = every interface. */
int rtnl_addr_list(struct nl_sock *s, int ifindex, struct rtnl_addr **out, size_t *n,
		   struct nl_err *err);
int rtnl_addr_change(struct nl_sock *s, int add, const struct rtnl_addr *a, struct nl_err *err);

/* table 0 = every table. Only unicast routes are listed (no local/broadcast/multicast, no
 * cached clones). */
int rtnl_route_list(struct nl_sock *s, uint32_t table, struct rtnl_route **out, size_t *n,
		    struct nl_err *err);
int rtnl_route_change(struct nl_sock *s, int add, const struct rtnl_route *r, struct nl_err *err);

/* Per-message decoders used by the dump callbacks above (and by the addon's pure _rtnlParse
 * test hook, so fuzzing exercises the very code the dumps run). h must be a complete message
 * (nlmsg_len checked by the caller against the buffer, as NLMSG_OK does). Return 1 with *out
 * filled, 0 when the message is skipped (other type/family, filtered out), -EBADMSG when
 * malformed. Filters as in the list functions: ifindex 0 / table 0 = everything. */
int rtnl_link_parse(const struct nlmsghdr *h, struct rtnl_link *out);
int rtnl_addr_parse(const struct nlmsghdr *h, int ifindex, struct rtnl_addr *out);
int rtnl_route_parse(const struct nlmsghdr *h, uint32_t table, struct rtnl_route *out);

#ifdef __cplusplus
}
#endif
#endif
