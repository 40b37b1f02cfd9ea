/* nl.h — netlink core shared by every family (rtnl.c, wg.c, nft.c, genl).
 *
 * Contract pinned before the files were written so several people can work at once:
 * extend it, do not break it. Pure C, no N-API: testable and fuzzable from plain C.
 * Every function returns 0 / a length on success and -errno on failure; nothing here logs.
 *
 * Building is separate from sending (golden-byte tests check the builder): messages are
 * appended into a caller-owned fixed-capacity buffer and a put that does not fit returns
 * -ENOBUFS without changing the buffer, so a caller can close the message and continue in
 * a new one (WireGuard peer chunking).
 */
#ifndef PLEXD_NL_H
#define PLEXD_NL_H

#include <stddef.h>
#include <stdint.h>
#include <linux/netlink.h>

#ifdef __cplusplus
extern "C" {
#endif

struct nl_msgbuf {
	uint8_t *buf;  /* caller owned */
	size_t cap;
	size_t len;    /* bytes used by complete + open messages */
};

struct nl_sock {
	int fd;
	uint32_t portid;
	uint32_t seq;
	int protocol;
};

/* Error detail: errno plus the kernel's extended-ack message when it sent one. */
struct nl_err {
	int err;           /* positive errno, 0 = none */
	char msg[256];     /* NLMSGERR_ATTR_MSG, "" if absent */
};

int nl_open(struct nl_sock *s, int protocol);
void nl_close(struct nl_sock *s); /* accepts a closed/zeroed socket */

/* Message building. Offsets, not pointers, so a caller may copy the buffer. */
/* Starts a message at the end of m; returns its offset or -ENOBUFS. hdr/hdrlen = family header. */
long nl_msg_begin(struct nl_msgbuf *m, uint16_t type, uint16_t flags, uint32_t seq,
		  const void *hdr, size_t hdrlen);
/* Removes an open message (and everything after it). */
void nl_msg_cancel(struct nl_msgbuf *m, long msg_off);
/* nlmsg_len of the message at msg_off is kept in sync by every put. */
int nl_put(struct nl_msgbuf *m, long msg_off, uint16_t type, const void *data, size_t len);
int nl_put_u8(struct nl_msgbuf *m, long msg_off, uint16_t type, uint8_t v);
int nl_put_u16(struct nl_msgbuf *m, long msg_off, uint16_t type, uint16_t v);
int nl_put_u32(struct nl_msgbuf *m, long msg_off, uint16_t type, uint32_t v);
int nl_put_u64(struct nl_msgbuf *m, long msg_off, uint16_t type, uint64_t v);
int nl_put_be16(struct nl_msgbuf *m, long msg_off, uint16_t type, uint16_t host_v);
int nl_put_be32(struct nl_msgbuf *m, long msg_off, uint16_t type, uint32_t host_v);
int nl_put_str(struct nl_msgbuf *m, long msg_off, uint16_t type, const char *s); /* with NUL */
/* Nests: returns the nest's offset or -ENOBUFS; type gets NLA_F_NESTED added. */
long nl_nest_begin(struct nl_msgbuf *m, long msg_off, uint16_t type);
void nl_nest_end(struct nl_msgbuf *m, long nest_off);
void nl_nest_cancel(struct nl_msgbuf *m, long msg_off, long nest_off);

/* I/O. */
int nl_send(struct nl_sock *s, const void *buf, size_t len);
typedef int (*nl_msg_cb)(const struct nlmsghdr *h, void *arg); /* <0 aborts with that error */
/* Receives replies for `seq` (inclusive range [seq, seq_last] for batches) until the ACK or
 * NLMSG_DONE; multipart dumps are fed message by message to cb. Receive buffer is sized for
 * large dumps (>= 32 KiB, MSG_PEEK|MSG_TRUNC to grow). Returns 0 or -errno, err filled.
 * A dump flagged NLM_F_DUMP_INTR (changed while dumping) returns -EINTR after draining:
 * callers retry the whole dump. */
int nl_recv(struct nl_sock *s, uint32_t seq, uint32_t seq_last, nl_msg_cb cb, void *arg,
	    struct nl_err *err);
/* send + recv for one request buffer (one or more messages, seqs seq..seq_last). */
int nl_transact(struct nl_sock *s, const void *buf, size_t len, uint32_t seq, uint32_t seq_last,
		nl_msg_cb cb, void *arg, struct nl_err *err);

/* Copies the NLMSGERR_ATTR_MSG string of an NLMSG_ERROR message (extended ack) into err->msg;
 * leaves it untouched when the kernel sent none. For receive loops outside nl_recv (batches). */
void nl_decode_ext_ack(const struct nlmsghdr *h, struct nl_err *err);

/* Parsing: tb[0..max] filled with attribute pointers (NULL when absent); bounds-checked,
 * never reads past len; returns -EINVAL on a malformed attribute stream. */
int nl_parse_attrs(const void *data, size_t len, const struct nlattr **tb, int max);
static inline const void *nl_attr_data(const struct nlattr *a) { return (const uint8_t *)a + NLA_HDRLEN; }
static inline size_t nl_attr_len(const struct nlattr *a) { return a->nla_len - NLA_HDRLEN; }
static inline uint16_t nl_attr_type(const struct nlattr *a) { return a->nla_type & NLA_TYPE_MASK; }

/* Resolve a generic-netlink family id by name (-ENOENT when the kernel has none). */
int nl_genl_family(struct nl_sock *genl, const char *name, uint16_t *id, struct nl_err *err);

#ifdef __cplusplus
}
#endif
#endif
