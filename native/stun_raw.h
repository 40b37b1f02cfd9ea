/* stun_raw.h — raw IPv4/UDP socket for STUN from a port another process owns
 * (lifecycle.md §5.1). Pure C, no N-API. Functions return 0 / a length, or -errno.
 *
 * Addresses and ports are in HOST byte order in this interface; the functions convert.
 *
 * Why raw: the reflexive mapping must be the one the NAT keeps for WireGuard's socket, but
 * WireGuard already owns the listen port. A SOCK_RAW/IPPROTO_UDP socket lets us write the UDP
 * header ourselves (source port = listen port) while the kernel still writes the IP header, and
 * it receives a copy of every inbound UDP datagram; a classic BPF filter keeps only STUN
 * messages addressed to the listen port. */
#ifndef PLEXD_STUN_RAW_H
#define PLEXD_STUN_RAW_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STUN_RAW_MAGIC 0x2112A442u
/* Instructions in the filter built by stun_raw_filter. */
#define STUN_RAW_FILTER_LEN 11
/* Largest UDP payload accepted by stun_raw_build / returned by stun_raw_recv. */
#define STUN_RAW_MAX_PAYLOAD 1472

struct sock_filter;

/* Fills `prog` (STUN_RAW_FILTER_LEN instructions) with: IPv4 non-fragment (offset 0, no MF
 * needed: first fragment only), UDP destination port == port, UDP payload bytes 4..7 ==
 * STUN magic cookie. Packet data of a raw IPv4 socket starts at the IP header. */
void stun_raw_filter(uint16_t port, struct sock_filter *prog);

/* RFC 768 checksum of a UDP datagram (header with checksum field 0 + payload) over the IPv4
 * pseudo-header; 0 is sent as 0xffff. `udp` is the full datagram in network byte order. */
uint16_t stun_raw_udp_checksum(uint32_t src, uint32_t dst, const uint8_t *udp, size_t len);

/* Writes the UDP header (src port, dst port, length, checksum) and payload into out (cap bytes).
 * Returns the datagram length or -EMSGSIZE. Pure (golden-testable). */
int stun_raw_build(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, const uint8_t *payload,
		   size_t len, uint8_t *out, size_t cap);

/* Route lookup: the source address the kernel would use towards dst (connect() + getsockname()
 * on a throwaway UDP socket; nothing is sent). */
int stun_raw_route_source(uint32_t dst, uint32_t *src);

/* socket(AF_INET, SOCK_RAW, IPPROTO_UDP), close-on-exec, filter for `port` attached, anything
 * queued before the filter was attached drained. -EPERM without CAP_NET_RAW. */
int stun_raw_open(uint16_t port, int *fd);

/* Builds and sends one datagram sport → dst:dport with the checksum computed over the route
 * lookup's source address. */
int stun_raw_send(int fd, uint16_t sport, uint32_t dst, uint16_t dport, const uint8_t *payload, size_t len);

/* Waits up to timeout_ms for a datagram passing the filter (poll on fd and on wake_fd, which
 * may be -1; readable wake_fd = cancelled → -ECANCELED). Parses the IP and UDP headers and
 * re-checks what the filter checked. Returns the payload length (copied to buf), 0 on timeout,
 * or -errno. */
int stun_raw_recv(int fd, int wake_fd, int timeout_ms, uint16_t port, uint32_t *src, uint16_t *sport,
		  uint8_t *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
