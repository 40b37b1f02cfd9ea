/* nft.h — nftables over nfnetlink, hand-rolled (no libnftnl/libmnl).
 *
 * Pure C, no N-API: the builder and the dump parser are checked byte for byte and fuzzed from
 * plain C and through the addon. Every function returns 0 / a length or -errno; nothing logs.
 *
 * Shape: a batch names ONE table (family + name) and carries kernel-shaped operations (numeric
 * hooks, set key types, raw element bytes, low-level expressions). Every message of the batch
 * gets that table name; there is no way to express an op on another table, and the builder
 * refuses an empty table name (a DELRULE without a table would flush the whole family).
 * Translating policy-level rules into expressions happens in TypeScript (src/kernel/nft-*.ts).
 */
#ifndef PLEXD_NFT_H
#define PLEXD_NFT_H

#include <stddef.h>
#include <stdint.h>
#include <linux/netlink.h>

#include "nl.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NFT_NAME_MAX 256       /* NFT_NAME_MAXLEN incl. NUL */
#define NFT_DATA_MAX 64        /* NFT_REG32_COUNT * 4: largest register value */
#define NFT_FIELDS_MAX 16      /* NFT_REG32_COUNT: largest concatenation */
#define NFT_RULE_MAX_EXPRS 64  /* more in one rule = -E2BIG when parsing */

enum nft_op_kind {
	NFT_OP_ADD_TABLE = 1,
	NFT_OP_DEL_TABLE,
	NFT_OP_FLUSH_TABLE, /* all rules of the table (DELRULE with the table only) */
	NFT_OP_ADD_CHAIN,
	NFT_OP_DEL_CHAIN,
	NFT_OP_FLUSH_CHAIN,
	NFT_OP_ADD_SET,
	NFT_OP_DEL_SET,
	NFT_OP_FLUSH_SET,   /* all elements (DELSETELEM without a list) */
	NFT_OP_ADD_ELEMS,
	NFT_OP_DEL_ELEMS,
	NFT_OP_ADD_RULE,
	NFT_OP_DEL_RULE,    /* by handle */
};

enum nft_expr_type {
	NFT_X_PAYLOAD = 1,
	NFT_X_META,
	NFT_X_CMP,
	NFT_X_BITWISE,
	NFT_X_LOOKUP,
	NFT_X_CT,
	NFT_X_COUNTER,
	NFT_X_LOG,
	NFT_X_IMMEDIATE,
	NFT_X_UNKNOWN, /* parse only: `name` holds the kernel's expression name */
};

/* One expression, flat: each type uses the fields its kernel attributes need.
 *  payload: base offset len dreg          meta: key dreg           ct: key dreg
 *  cmp: sreg op data                      bitwise: sreg dreg len data(mask) xor
 *  lookup: sreg name(set) flags(NFT_LOOKUP_F_INV)
 *  counter: packets bytes (read back)     log: name(prefix, has_prefix) level(has_level)
 *  immediate: verdict, name(chain for jump/goto) — always into the verdict register. */
struct nft_expr {
	int type;
	uint32_t base, offset, len, dreg, sreg, key, op, flags, level;
	int32_t verdict;
	int has_prefix, has_level;
	uint64_t packets, bytes;
	uint32_t data_len, xor_len;
	uint8_t data[NFT_DATA_MAX];
	uint8_t xor_[NFT_DATA_MAX];
	char name[NFT_NAME_MAX];
};

struct nft_elem {
	uint32_t key_len, key_end_len; /* key_end_len 0 = no KEY_END */
	uint32_t flags;                /* NFT_SET_ELEM_INTERVAL_END */
	uint8_t key[NFT_DATA_MAX];
	uint8_t key_end[NFT_DATA_MAX];
};

struct nft_op {
	int kind;                 /* enum nft_op_kind */
	const char *name;         /* chain / set name (chain for rules) */
	/* chain */
	int has_hook;
	uint32_t hooknum;
	int32_t prio;
	int has_policy;
	uint32_t policy;          /* NF_DROP 0 / NF_ACCEPT 1 */
	const char *chain_type;   /* "filter" when NULL and has_hook */
	/* set */
	uint32_t set_flags, key_type, key_len, nfields;
	uint32_t field_len[NFT_FIELDS_MAX];
	/* elements */
	const struct nft_elem *elems;
	uint32_t nelems;
	/* rule */
	const struct nft_expr *exprs;
	uint32_t nexprs;
	uint64_t handle;
};

struct nft_batch {
	uint8_t family;           /* NFPROTO_INET / IPV4 / IPV6 */
	const char *table;
	const struct nft_op *ops;
	uint32_t nops;
	/* Non-zero: BATCH_BEGIN carries NFNL_BATCH_GENID, so the kernel refuses the whole batch
	 * (-ERESTART) unless the ruleset generation still equals it. 0 = unconditional. */
	uint32_t genid;
};

/* A built batch: the messages back to back in buf; msg_off[i]/msg_op[i] give message i's
 * offset and the op it came from (UINT32_MAX for BATCH_BEGIN/END). One op may produce several
 * messages (element lists are split so no attribute exceeds 16 bits of length). */
struct nft_built {
	uint8_t *buf;
	size_t len;
	uint32_t nmsgs;
	size_t *msg_off;
	uint32_t *msg_op;
};

/* seq = BATCH_BEGIN's sequence; message i gets seq + i. Allocates; free with nft_built_free. */
int nft_build_batch(const struct nft_batch *b, uint32_t seq, struct nft_built *out);
void nft_built_free(struct nft_built *out); /* accepts a zeroed struct */

/* Apply as one transaction. On failure returns -errno, err filled (ext-ack message) and
 * *bad_op = index of the op whose message the kernel rejected (-1: the batch as a whole;
 * -ERESTART with b->genid set: the generation had moved on, nothing was applied).
 * On success *gen (when not NULL) = the ruleset generation read right after the commit, in
 * the same socket round trip (0 if the kernel did not report it). */
int nft_apply(const struct nft_batch *b, struct nl_err *err, long *bad_op, uint32_t *gen);

/* ---- reading back ---------------------------------------------------------------------- */

struct nft_table_info {
	uint8_t family;
	uint32_t flags, use;
	uint64_t handle;
	char name[NFT_NAME_MAX];
};

struct nft_chain_info {
	uint8_t family;
	int has_hook, has_policy;
	uint32_t hooknum, policy, use;
	int32_t prio;
	uint64_t handle;
	char table[NFT_NAME_MAX], name[NFT_NAME_MAX], type[32];
};

struct nft_set_info {
	uint8_t family;
	uint32_t flags, key_type, key_len, nfields;
	uint32_t field_len[NFT_FIELDS_MAX];
	uint64_t handle;
	char table[NFT_NAME_MAX], name[NFT_NAME_MAX];
};

struct nft_elem_info {
	uint8_t family;
	struct nft_elem e;
	char table[NFT_NAME_MAX], set[NFT_NAME_MAX];
};

struct nft_rule_info {
	uint8_t family;
	uint32_t nexprs;
	uint64_t handle;
	char table[NFT_NAME_MAX], chain[NFT_NAME_MAX];
	struct nft_expr exprs[NFT_RULE_MAX_EXPRS];
};

/* Sinks for parsed objects; any may be NULL. A negative return aborts the parse with it. */
struct nft_dump_cb {
	int (*table)(const struct nft_table_info *t, void *arg);
	int (*chain)(const struct nft_chain_info *c, void *arg);
	int (*set)(const struct nft_set_info *s, void *arg);
	int (*elem)(const struct nft_elem_info *e, void *arg);
	int (*rule)(const struct nft_rule_info *r, void *arg);
	void *arg;
	/* Only objects of this family/table are passed on (0 / NULL = all). */
	uint8_t want_family;
	const char *want_table;
};

/* Parses one nf_tables message (NEWTABLE/NEWCHAIN/NEWSET/NEWSETELEM/NEWRULE; others are
 * ignored). `len` bounds the message. Never reads past len; -EBADMSG when malformed. */
int nft_parse_msg(const void *msg, size_t len, const struct nft_dump_cb *cb);
/* Walks a buffer of back-to-back messages (a recv() worth), stopping at the first error. */
int nft_parse_buf(const void *buf, size_t len, const struct nft_dump_cb *cb);

/* Dumps one table: table, chains, sets, each set's elements, rules (in that order, each
 * object passed to cb). A missing table yields no objects and returns 0. */
int nft_dump(uint8_t family, const char *table, const struct nft_dump_cb *cb, struct nl_err *err);

#ifdef __cplusplus
}
#endif
#endif
