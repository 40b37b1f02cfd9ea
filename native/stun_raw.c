/* stun_raw.c — see stun_raw.h. */
#define _GNU_SOURCE
#include "stun_raw.h"

#include <errno.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IPV4_MIN_HDR 20
#define UDP_HDR 8

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

static uint32_t get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

void stun_raw_filter(uint16_t port, struct sock_filter *prog)
{
	/* Jump offsets count from the next instruction; index 10 is the drop. */
	struct sock_filter f[STUN_RAW_FILTER_LEN] = {
	    /* 0 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 9), /* IP protocol */
	    /* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_UDP, 0, 8),
	    /* 2 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 6), /* flags + fragment offset */
	    /* 3 */ BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x1fff, 6, 0), /* later fragment: no UDP header */
	    /* 4 */ BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0), /* X = IP header length */
	    /* 5 */ BPF_STMT(BPF_LD | BPF_H | BPF_IND, 2), /* UDP destination port */
	    /* 6 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, port, 0, 3),
	    /* 7 */ BPF_STMT(BPF_LD | BPF_W | BPF_IND, UDP_HDR + 4), /* payload bytes 4..7 */
	    /* 8 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, STUN_RAW_MAGIC, 0, 1),
	    /* 9 */ BPF_STMT(BPF_RET | BPF_K, 0x40000),
	    /* 10 */ BPF_STMT(BPF_RET | BPF_K, 0),
	};
	memcpy(prog, f, sizeof(f));
}

uint16_t stun_raw_udp_checksum(uint32_t src, uint32_t dst, const uint8_t *udp, size_t len)
{
	uint64_t sum = 0;
	sum += (src >> 16) + (src & 0xffff);
	sum += (dst >> 16) + (dst & 0xffff);
	sum += IPPROTO_UDP;
	sum += (uint32_t)len;
	size_t i;
	for (i = 0; i + 1 < len; i += 2)
		sum += get16(udp + i);
	if (len & 1)
		sum += (uint32_t)udp[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	uint16_t c = (uint16_t)~sum;
	return c == 0 ? 0xffff : c;
}

int stun_raw_build(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, const uint8_t *payload,
		   size_t len, uint8_t *out, size_t cap)
{
	if (len > STUN_RAW_MAX_PAYLOAD || UDP_HDR + len > cap)
		return -EMSGSIZE;
	put16(out, sport);
	put16(out + 2, dport);
	put16(out + 4, (uint16_t)(UDP_HDR + len));
	put16(out + 6, 0);
	if (len)
		memcpy(out + UDP_HDR, payload, len);
	put16(out + 6, stun_raw_udp_checksum(src, dst, out, UDP_HDR + len));
	return (int)(UDP_HDR + len);
}

int stun_raw_route_source(uint32_t dst, uint32_t *src)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(9); /* any port: a UDP connect sends nothing */
	sa.sin_addr.s_addr = htonl(dst);
	int r = 0;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		goto out;
	}
	struct sockaddr_in local;
	socklen_t sl = sizeof(local);
	if (getsockname(fd, (struct sockaddr *)&local, &sl) < 0) {
		r = -errno;
		goto out;
	}
	*src = ntohl(local.sin_addr.s_addr);
out:
	close(fd);
	return r;
}

int stun_raw_open(uint16_t port, int *fdp)
{
	int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_UDP);
	if (fd < 0)
		return -errno;
	struct sock_filter prog[STUN_RAW_FILTER_LEN];
	stun_raw_filter(port, prog);
	struct sock_fprog fp = {.len = STUN_RAW_FILTER_LEN, .filter = prog};
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof(fp)) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	/* Datagrams queued between socket() and the filter were not filtered: drop them. */
	uint8_t junk[64];
	while (recv(fd, junk, sizeof(junk), MSG_DONTWAIT) >= 0)
		;
	*fdp = fd;
	return 0;
}

int stun_raw_send(int fd, uint16_t sport, uint32_t dst, uint16_t dport, const uint8_t *payload, size_t len)
{
	uint32_t src;
	int r = stun_raw_route_source(dst, &src);
	if (r < 0)
		return r;
	uint8_t buf[UDP_HDR + STUN_RAW_MAX_PAYLOAD];
	int n = stun_raw_build(src, sport, dst, dport, payload, len, buf, sizeof(buf));
	if (n < 0)
		return n;
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(dst);
	ssize_t s = sendto(fd, buf, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&sa, sizeof(sa));
	if (s < 0)
		return -errno;
	return s == n ? 0 : -EIO;
}

int stun_raw_recv(int fd, int wake_fd, int timeout_ms, uint16_t port, uint32_t *src, uint16_t *sport,
		  uint8_t *buf, size_t cap)
{
	uint8_t pkt[65536];
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		/* One deadline for the whole call: non-matching datagrams must not extend it. */
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long long left = timeout_ms - ((now.tv_sec - t0.tv_sec) * 1000LL + (now.tv_nsec - t0.tv_nsec) / 1000000);
		if (left < 0)
			left = 0;
		struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = wake_fd, .events = POLLIN}};
		int r = poll(p, wake_fd >= 0 ? 2 : 1, (int)left);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return 0;
		if (wake_fd >= 0 && (p[1].revents & POLLIN))
			return -ECANCELED;
		if (p[0].revents & (POLLERR | POLLNVAL))
			return -EBADF;
		ssize_t n = recv(fd, pkt, sizeof(pkt), MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return -errno;
		}
		/* Re-check in user space what the filter checked, then parse. */
		if (n < IPV4_MIN_HDR + UDP_HDR || (pkt[0] >> 4) != 4 || pkt[9] != IPPROTO_UDP)
			continue;
		size_t ihl = (size_t)(pkt[0] & 0x0f) * 4;
		if (ihl < IPV4_MIN_HDR || (size_t)n < ihl + UDP_HDR)
			continue;
		if (get16(pkt + 6) & 0x1fff)
			continue;
		const uint8_t *udp = pkt + ihl;
		if (get16(udp + 2) != port)
			continue;
		size_t ulen = get16(udp + 4);
		if (ulen < UDP_HDR || ihl + ulen > (size_t)n)
			continue;
		size_t plen = ulen - UDP_HDR;
		if (plen < 8 || get32(udp + UDP_HDR + 4) != STUN_RAW_MAGIC || plen > cap)
			continue;
		*src = get32(pkt + 12);
		*sport = get16(udp);
		memcpy(buf, udp + UDP_HDR, plen);
		return (int)plen;
	}
}
