/* Standalone sanitizer fuzz of the pure C parsers (not part of the addon build: native/fuzz/ is
 * outside the CMake glob). Run:
 *   cc -std=c11 -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -I native \
 *      native/fuzz/fuzz_wg.c native/nl.c native/wg.c -o /tmp/fuzz_wg && /tmp/fuzz_wg 200000
 * Random and mutated inputs into nl_parse_attrs and wg_parse_get_msg; any out-of-bounds read
 * or UB aborts. Deterministic (fixed seed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/genetlink.h>
#include "nl.h"
#include "wg.h"

static uint32_t st = 0x5eed;
static uint32_t rnd(void) { st ^= st << 13; st ^= st >> 17; st ^= st << 5; return st; }

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 100000;
	uint8_t seedbuf[2048];
	struct nl_msgbuf m = {seedbuf, sizeof(seedbuf), 0};
	/* Seed: a GET-shaped message built with the SET builder's primitives. */
	struct genlmsghdr g = {.cmd = 0, .version = 1};
	long o = nl_msg_begin(&m, 0x1b, NLM_F_MULTI, 1, &g, sizeof(g));
	nl_put_str(&m, o, 2, "plexd0");
	uint8_t k[32] = {1};
	nl_put(&m, o, 3, k, 32);
	long peers = nl_nest_begin(&m, o, 8);
	for (int i = 0; i < 3; i++) {
		long p = nl_nest_begin(&m, o, 0);
		k[0] = (uint8_t)i;
		nl_put(&m, o, 1, k, 32);
		long ips = nl_nest_begin(&m, o, 9);
		long ip = nl_nest_begin(&m, o, 0);
		nl_put_u16(&m, o, 1, 2);
		nl_put_u32(&m, o, 2, 0x0a000001);
		nl_put_u8(&m, o, 3, 32);
		nl_nest_end(&m, ip);
		nl_nest_end(&m, ips);
		nl_nest_end(&m, p);
	}
	nl_nest_end(&m, peers);
	size_t seedlen = m.len;

	for (long it = 0; it < iters; it++) {
		size_t len;
		uint8_t *b;
		if (rnd() & 1) {
			len = seedlen;
			b = malloc(len);
			memcpy(b, seedbuf, len);
			for (int e = 1 + rnd() % 4; e > 0; e--)
				b[rnd() % len] = (uint8_t)rnd();
			len = rnd() % 4 ? len : rnd() % (len + 1);
		} else {
			len = rnd() % 512;
			b = malloc(len ? len : 1);
			for (size_t i = 0; i < len; i++)
				b[i] = (uint8_t)rnd();
		}
		/* Exact-size heap copy so ASan sees any read past the end. */
		uint8_t *c = malloc(len ? len : 1);
		memcpy(c, b, len);
		const struct nlattr *tb[17];
		(void)nl_parse_attrs(c, len, tb, 16);
		if (len >= sizeof(struct nlmsghdr)) {
			struct nlmsghdr *h = (struct nlmsghdr *)c;
			if (h->nlmsg_len > len)
				h->nlmsg_len = (uint32_t)len; /* what NLMSG_OK guarantees the caller */
			if (h->nlmsg_len >= sizeof(*h)) {
				struct wg_device d;
				memset(&d, 0, sizeof(d));
				(void)wg_parse_get_msg(&d, h);
				wg_device_free(&d);
			}
		}
		free(c);
		free(b);
	}
	printf("fuzz_wg: %ld iterations clean\n", iters);
	return 0;
}
