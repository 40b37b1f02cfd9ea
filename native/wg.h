/* wg.h — WireGuard generic netlink (uapi/linux/wireguard.h layout), modelled on
 * wireguard-tools' embeddable-wg-library: plain structs with has-flags, builder separate from
 * sending, SET_DEVICE split across messages exactly like wg_set_device(). */
#ifndef PLEXD_WG_H
#define PLEXD_WG_H

#include <stddef.h>
#include <stdint.h>
#include <net/if.h>
#include <netinet/in.h>
#include "nl.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WG_KEY_LEN_ 32
/* Per-message cap, as wireguard-tools (page size, max 8 KiB; fixed here so builds are
 * byte-identical on every machine). */
#define WG_MSG_MAX 4096

enum wg_device_flags {
	WGDEV_HAS_PRIVATE_KEY = 1U << 0,
	WGDEV_HAS_PUBLIC_KEY = 1U << 1,
	WGDEV_HAS_LISTEN_PORT = 1U << 2,
	WGDEV_HAS_FWMARK = 1U << 3,
	WGDEV_REPLACE_PEERS = 1U << 4,
};

enum wg_peer_flags {
	WGP_HAS_PUBLIC_KEY = 1U << 0,
	WGP_HAS_PRESHARED_KEY = 1U << 1,
	WGP_HAS_KEEPALIVE = 1U << 2,
	WGP_REMOVE_ME = 1U << 3,
	WGP_REPLACE_ALLOWEDIPS = 1U << 4,
	WGP_UPDATE_ONLY = 1U << 5,
	WGP_HAS_STATS = 1U << 6, /* read-back: handshake/rx/tx present */
};

struct wg_allowedip {
	uint16_t family; /* AF_INET / AF_INET6 */
	uint8_t cidr;
	uint8_t addr[16];
};

struct wg_peer {
	uint32_t flags;
	uint8_t public_key[32];
	uint8_t preshared_key[32];
	union {
		struct sockaddr addr;
		struct sockaddr_in addr4;
		struct sockaddr_in6 addr6;
	} endpoint; /* sa_family 0 = none */
	uint16_t keepalive;
	int64_t last_handshake_sec;
	int64_t last_handshake_nsec;
	uint64_t rx_bytes, tx_bytes;
	struct wg_allowedip *allowedips;
	size_t n_allowedips, cap_allowedips;
};

struct wg_device {
	char name[IF_NAMESIZE];
	uint32_t ifindex;
	uint32_t flags;
	uint8_t public_key[32];
	uint8_t private_key[32];
	uint32_t fwmark;
	uint16_t listen_port;
	struct wg_peer *peers;
	size_t n_peers, cap_peers;
};

/* Growth helpers (zero the new element); NULL on ENOMEM. */
struct wg_peer *wg_device_add_peer(struct wg_device *d);
struct wg_allowedip *wg_peer_add_allowedip(struct wg_peer *p);
void wg_device_free(struct wg_device *d); /* frees arrays, keeps the struct; NULL ok */

/* Builds every SET_DEVICE message into m (messages back to back, seq, seq+1, …), each at
 * most msg_max bytes. *n_msgs gets the message count. -EMSGSIZE when one peer header does not
 * fit into an empty message. */
int wg_build_set(const struct wg_device *d, uint16_t family, uint32_t seq, size_t msg_max,
		 struct nl_msgbuf *m, size_t *n_msgs);

/* Merges one GET_DEVICE reply message (the genl payload after nlmsghdr) into d; a peer that
 * continues the previous message's last peer (same public key) is coalesced. */
int wg_parse_get_msg(struct wg_device *d, const struct nlmsghdr *h);

/* Kernel calls. The socket must be NETLINK_GENERIC. *family caches the resolved id (0 =
 * resolve now). Resolution failures are reported with *stage = 1, everything else 2. */
int wg_get_device(struct nl_sock *s, uint16_t *family, const char *ifname, struct wg_device *d,
		  struct nl_err *err, int *stage);
int wg_set_device(struct nl_sock *s, uint16_t *family, const struct wg_device *d,
		  struct nl_err *err, int *stage);

#ifdef __cplusplus
}
#endif
#endif
