/**
 * Kernel numbers (linux/netfilter/nf_tables.h, nf_conntrack_common.h) and the field table
 * shared by lowering (nft-lower.ts) and raising (nft-raise.ts). One place, so the two
 * directions cannot disagree.
 */
import type { CtState, Field, LogLevel, SetKeyType } from "./firewall-api.ts";

export const NFPROTO_IPV4 = 2;
export const NFPROTO_IPV6 = 10;

export const NFT_REG_VERDICT = 0;
export const NFT_REG_1 = 1;
export const NFT_REG32_00 = 8;

export const NFT_CMP_EQ = 0;
export const NFT_CMP_NEQ = 1;
export const NFT_PAYLOAD_NETWORK_HEADER = 1;
export const NFT_PAYLOAD_TRANSPORT_HEADER = 2;
export const NFT_META_IIFNAME = 6;
export const NFT_META_OIFNAME = 7;
export const NFT_META_NFPROTO = 15;
export const NFT_META_L4PROTO = 16;
export const NFT_CT_STATE = 0;
export const NFT_LOOKUP_F_INV = 1;

export const NFT_SET_CONSTANT = 0x2;
export const NFT_SET_INTERVAL = 0x4;
export const NFT_SET_CONCAT = 0x80;
export const NFT_SET_ELEM_INTERVAL_END = 0x1;

export const HOOKS = { input: 1, forward: 2, output: 3 } as const;
export const POLICIES = { drop: 0, accept: 1 } as const;
export const VERDICTS = { drop: 0, accept: 1, jump: -3, goto: -4, return: -5 } as const;

/** syslog numbering; nft's default (no level) is warn. */
export const LOG_LEVELS: Record<LogLevel, number> = {
  emerg: 0,
  alert: 1,
  crit: 2,
  err: 3,
  warn: 4,
  notice: 5,
  info: 6,
  debug: 7,
};

/** NF_CT_STATE_*_BIT: 1 << (ctinfo + 1), invalid = 1, untracked = 64. */
export const CT_STATES: Record<CtState, number> = {
  invalid: 1,
  established: 2,
  related: 4,
  new: 8,
  untracked: 64,
};

/** nft datatype ids; a concatenation packs them 6 bits each, first field highest. */
export const KEY_TYPES: Record<SetKeyType, { id: number; len: number }> = {
  ipv4_addr: { id: 7, len: 4 },
  ipv6_addr: { id: 8, len: 16 },
  inet_proto: { id: 12, len: 1 },
  inet_service: { id: 13, len: 2 },
};
export const CONCAT_TYPE_BITS = 6;

/** How a field's value is encoded. */
export type ValueKind = "v4" | "v6" | "u8" | "u16" | "ifname";

export type FieldLoad =
  | { type: "payload"; base: number; offset: number; len: number }
  | { type: "meta"; key: number; len: number };

export interface FieldDef {
  load: FieldLoad;
  kind: ValueKind;
  /** In an inet table, the meta nfproto value this field depends on. */
  nfproto?: number;
  keyType?: SetKeyType;
}

const NET = NFT_PAYLOAD_NETWORK_HEADER;
const TH = NFT_PAYLOAD_TRANSPORT_HEADER;

export const FIELDS: Record<Field, FieldDef> = {
  "ip saddr": { load: { type: "payload", base: NET, offset: 12, len: 4 }, kind: "v4", nfproto: NFPROTO_IPV4, keyType: "ipv4_addr" },
  "ip daddr": { load: { type: "payload", base: NET, offset: 16, len: 4 }, kind: "v4", nfproto: NFPROTO_IPV4, keyType: "ipv4_addr" },
  "ip6 saddr": { load: { type: "payload", base: NET, offset: 8, len: 16 }, kind: "v6", nfproto: NFPROTO_IPV6, keyType: "ipv6_addr" },
  "ip6 daddr": { load: { type: "payload", base: NET, offset: 24, len: 16 }, kind: "v6", nfproto: NFPROTO_IPV6, keyType: "ipv6_addr" },
  "th sport": { load: { type: "payload", base: TH, offset: 0, len: 2 }, kind: "u16", keyType: "inet_service" },
  "th dport": { load: { type: "payload", base: TH, offset: 2, len: 2 }, kind: "u16", keyType: "inet_service" },
  "meta l4proto": { load: { type: "meta", key: NFT_META_L4PROTO, len: 1 }, kind: "u8", keyType: "inet_proto" },
  "meta nfproto": { load: { type: "meta", key: NFT_META_NFPROTO, len: 1 }, kind: "u8" },
  "meta iifname": { load: { type: "meta", key: NFT_META_IIFNAME, len: 16 }, kind: "ifname" },
  "meta oifname": { load: { type: "meta", key: NFT_META_OIFNAME, len: 16 }, kind: "ifname" },
};

/** Finds the field a load expression reads, if it is one of ours. */
export function fieldOfLoad(
  x: { type: "payload"; base: number; offset: number; len: number } | { type: "meta"; key: number },
): Field | undefined {
  for (const [name, def] of Object.entries(FIELDS) as Array<[Field, FieldDef]>) {
    const l = def.load;
    if (x.type === "payload" && l.type === "payload" && l.base === x.base && l.offset === x.offset && l.len === x.len)
      return name;
    if (x.type === "meta" && l.type === "meta" && l.key === x.key) return name;
  }
  return undefined;
}

/** Byte length of a value of this kind. */
export function kindLen(kind: ValueKind): number {
  return kind === "v4" ? 4 : kind === "v6" ? 16 : kind === "u8" ? 1 : kind === "u16" ? 2 : 16;
}

/** Register number → 32-bit word index (NFT_REG_1..4 are 16 bytes each; REG32 one word). */
export function regWord(reg: number): number {
  return reg >= NFT_REG32_00 ? reg - NFT_REG32_00 : (reg - 1) * 4;
}

/** Word index → register: word 0 = NFT_REG_1 (as nft writes it), others NFT_REG32_xx. */
export function wordReg(word: number): number {
  return word === 0 ? NFT_REG_1 : NFT_REG32_00 + word;
}
