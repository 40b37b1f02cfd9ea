/* Standalone sanitizer fuzz of the rtnetlink dump decoders (not part of the addon build:
 * native/fuzz/ is outside the CMake glob). Run:
 *   cc -std=c11 -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -I native \
 *      native/fuzz/fuzz_rtnl.c native/nl.c native/rtnl.c -o /tmp/fuzz_rtnl && /tmp/fuzz_rtnl 200000
 * Random and mutated messages into rtnl_link_parse / rtnl_addr_parse / rtnl_route_parse (the
 * per-message decoders the dumps use); any out-of-bounds read or UB aborts. The TS-side fuzz
 * (src/kernel/rtnl-fuzz.test.ts) only sees crashes; this one sees silent over-reads too.
 * Deterministic (fixed seed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/if_link.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include "nl.h"
#include "rtnl.h"

static uint32_t st = 0x7a11;
static uint32_t rnd(void) { st ^= st << 13; st ^= st >> 17; st ^= st << 5; return st; }

struct seed {
	uint8_t buf[512];
	size_t len;
};

static void seed_link(struct seed *s)
{
	struct nl_msgbuf m = {s->buf, sizeof(s->buf), 0};
	struct ifinfomsg ifi = {.ifi_index = 9, .ifi_flags = 1};
	long o = nl_msg_begin(&m, RTM_NEWLINK, NLM_F_MULTI, 1, &ifi, sizeof(ifi));
	nl_put_str(&m, o, IFLA_IFNAME, "plexd0");
	nl_put_u32(&m, o, IFLA_MTU, 1420);
	long li = nl_nest_begin(&m, o, IFLA_LINKINFO);
	nl_put_str(&m, o, IFLA_INFO_KIND, "wireguard");
	nl_nest_end(&m, li);
	s->len = m.len;
}

static void seed_addr(struct seed *s, int family)
{
	struct nl_msgbuf m = {s->buf, sizeof(s->buf), 0};
	struct ifaddrmsg ifa = {.ifa_family = (uint8_t)family, .ifa_prefixlen = 24, .ifa_index = 9};
	uint8_t a[16] = {10, 100, 0, 1};
	long o = nl_msg_begin(&m, RTM_NEWADDR, NLM_F_MULTI, 1, &ifa, sizeof(ifa));
	nl_put(&m, o, IFA_ADDRESS, a, family == AF_INET ? 4 : 16);
	nl_put(&m, o, IFA_LOCAL, a, family == AF_INET ? 4 : 16);
	nl_put_str(&m, o, IFA_LABEL, "plexd0");
	s->len = m.len;
}

static void seed_route(struct seed *s, int family)
{
	struct nl_msgbuf m = {s->buf, sizeof(s->buf), 0};
	struct rtmsg rt = {.rtm_family = (uint8_t)family, .rtm_dst_len = 16, .rtm_table = 254,
			   .rtm_type = RTN_UNICAST};
	uint8_t a[16] = {10, 100};
	long o = nl_msg_begin(&m, RTM_NEWROUTE, NLM_F_MULTI, 1, &rt, sizeof(rt));
	size_t alen = family == AF_INET ? 4 : 16;
	nl_put_u32(&m, o, RTA_TABLE, 51820);
	nl_put(&m, o, RTA_DST, a, alen);
	nl_put_u32(&m, o, RTA_OIF, 9);
	nl_put(&m, o, RTA_PREFSRC, a, alen);
	nl_put(&m, o, RTA_GATEWAY, a, alen);
	s->len = m.len;
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 100000;
	struct seed seeds[5];
	seed_link(&seeds[0]);
	seed_addr(&seeds[1], AF_INET);
	seed_addr(&seeds[2], AF_INET6);
	seed_route(&seeds[3], AF_INET);
	seed_route(&seeds[4], AF_INET6);
	static const uint16_t types[] = {RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE};
	long parsed = 0;

	for (long it = 0; it < iters; it++) {
		size_t len;
		uint8_t *b;
		if (rnd() % 4) {
			const struct seed *s = &seeds[rnd() % 5];
			len = s->len;
			b = malloc(len);
			memcpy(b, s->buf, len);
			for (int e = 1 + rnd() % 4; e > 0; e--) {
				size_t at = rnd() % len;
				b[rnd() % 3 ? at : at & ~(size_t)3] = (uint8_t)rnd();
			}
			len = rnd() % 4 ? len : rnd() % (len + 1);
		} else {
			len = rnd() % 256;
			b = malloc(len ? len : 1);
			for (size_t i = 0; i < len; i++)
				b[i] = (uint8_t)rnd();
			if (len >= sizeof(struct nlmsghdr))
				((struct nlmsghdr *)b)->nlmsg_type = types[rnd() % 3];
		}
		if (len < sizeof(struct nlmsghdr)) {
			free(b);
			continue;
		}
		/* Exact-size heap copy so ASan sees any read past the end. */
		uint8_t *c = malloc(len);
		memcpy(c, b, len);
		struct nlmsghdr *h = (struct nlmsghdr *)c;
		if (h->nlmsg_len > len || rnd() % 2)
			h->nlmsg_len = (uint32_t)len; /* what NLMSG_OK guarantees the caller */
		if (h->nlmsg_len >= sizeof(*h)) {
			struct rtnl_link l;
			struct rtnl_addr a;
			struct rtnl_route r;
			parsed += rtnl_link_parse(h, &l) > 0;
			parsed += rtnl_addr_parse(h, (int)(rnd() % 3 ? 0 : rnd() % 12), &a) > 0;
			parsed += rtnl_route_parse(h, rnd() % 3 ? 0 : 51820, &r) > 0;
		}
		free(c);
		free(b);
	}
	printf("fuzz_rtnl: %ld iterations clean, %ld records decoded\n", iters, parsed);
	return parsed > 0 ? 0 : 1;
}
