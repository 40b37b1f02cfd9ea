/**
 * nftables shapes for plexd's one owned table (`inet plexd`).
 *
 * Two levels:
 *  - the policy level (`FwBatch`, `FwDump`): declarative ops on one table, rules as a list of
 *    matches (field = value, field in CIDR, ct state, concatenated set lookup) plus statements
 *    (counter, log, verdict). This is what the policy compiler writes and reads back.
 *  - the wire level (`NftWireBatch`, `NftWireDump`): kernel-shaped (numeric hooks and key
 *    types, raw element bytes, low-level expressions payload/meta/cmp/bitwise/lookup/ct/
 *    counter/log/immediate). This is what the native addon takes and returns; nft-lower.ts
 *    and nft-raise.ts translate between the two, so the C side stays a plain encoder/parser.
 *
 * A batch names its table once; ops cannot name another one. That makes "plexd never touches
 * anything but its own table" structural rather than a convention.
 */

/** Address families plexd may use for its table. */
export type NftFamily = "inet" | "ip" | "ip6";

/** Set key types (nft names). A concatenated set lists several. */
export type SetKeyType = "ipv4_addr" | "ipv6_addr" | "inet_proto" | "inet_service";

/** Packet fields a rule can match or feed into a set lookup (nft spelling). */
export type Field =
  | "ip saddr"
  | "ip daddr"
  | "ip6 saddr"
  | "ip6 daddr"
  | "meta l4proto"
  | "meta nfproto"
  | "th sport"
  | "th dport"
  | "meta iifname"
  | "meta oifname";

/** Conntrack states for `ct state`. */
export type CtState = "invalid" | "established" | "related" | "new" | "untracked";

/** syslog levels accepted by `log level`. */
export type LogLevel = "emerg" | "alert" | "crit" | "err" | "warn" | "notice" | "info" | "debug";

/** Final verdicts. */
export type Verdict =
  | { verdict: "accept" | "drop" | "return" }
  | { verdict: "jump" | "goto"; chain: string };

/**
 * One match. Values: addresses as "a.b.c.d" or CIDR "a.b.c.d/n" (IPv6 alike); l4proto and
 * nfproto as numbers (6 = tcp, 17 = udp; nfproto 2 = ipv4, 10 = ipv6); ports as numbers;
 * interface names as strings. In an `inet` table an ip/ip6 field implies the matching
 * `meta nfproto` check (added when lowering, hidden when raising), as nft does.
 */
export type Match =
  | { match: "cmp"; field: Field; value: string | number; op?: "eq" | "neq" }
  | { match: "ct"; states: CtState[] }
  | { match: "set"; fields: Field[]; set: string; neg?: boolean };

/** Statements after the matches, in order. Counter values are read back only. */
export type Statement =
  | { stmt: "counter"; packets?: number; bytes?: number }
  | { stmt: "log"; prefix?: string; level?: LogLevel }
  | ({ stmt: "verdict" } & Verdict);

/** A rule: every match must hold, then the statements run in order. */
export interface FwRule {
  chain: string;
  match: Match[];
  stmt: Statement[];
  /** Kernel handle; read back only (use it to delete one rule). */
  handle?: number;
}

/** A chain; with `hook` it is a base chain of type filter. */
export interface FwChain {
  name: string;
  hook?: "input" | "output" | "forward";
  /** Base chains: priority (default 0) and policy (default accept). */
  priority?: number;
  policy?: "accept" | "drop";
  handle?: number;
}

/** A named set; `type` has one entry, or several for a concatenation. */
export interface FwSet {
  name: string;
  type: SetKeyType[];
  /** `interval` allows CIDRs and ranges in elements. */
  flags?: Array<"interval" | "constant">;
  handle?: number;
}

/**
 * One element value per key field: "10.0.0.1", "10.0.0.0/24", "10.0.0.1-10.0.0.9",
 * 6, 22, "1000-2000". Prefixes and ranges need an `interval` set.
 */
export type ElemValue = string | number;

/** A set element: one value per field of the set's type. */
export interface FwElement {
  key: ElemValue[];
}

/** One operation on the batch's table. */
export type FwOp =
  | { op: "addTable" | "deleteTable" | "flushTable" }
  | { op: "addChain"; chain: FwChain }
  | { op: "deleteChain" | "flushChain"; chain: string }
  | { op: "addSet"; set: FwSet }
  | { op: "deleteSet" | "flushSet"; set: string }
  | { op: "addElements" | "deleteElements"; set: string; elements: FwElement[] }
  | { op: "addRule"; rule: FwRule }
  | { op: "deleteRule"; chain: string; handle: number };

/** One transaction on one table: all ops commit together or none does. */
export interface FwBatch {
  family: NftFamily;
  table: string;
  ops: FwOp[];
}

/** The table as read back from the kernel, in the same shapes as the batch. */
export interface FwDump {
  family: NftFamily;
  table: string;
  exists: boolean;
  chains: FwChain[];
  /** Sets with their elements (element values normalised: see normaliseElement). */
  sets: Array<FwSet & { elements: FwElement[] }>;
  /** Rules in kernel order per chain, with handles and counter values. */
  rules: FwRule[];
}

// ---- wire level: the addon's contract (native/binding_nft.cc) ----------------------------

/** Low-level expressions, numbers as in linux/netfilter/nf_tables.h. */
export type NftExpr =
  | { type: "payload"; base: number; offset: number; len: number; dreg: number }
  | { type: "meta"; key: number; dreg: number }
  | { type: "ct"; key: number; dreg: number }
  | { type: "cmp"; sreg: number; op: number; data: Uint8Array }
  | { type: "bitwise"; sreg: number; dreg: number; len: number; mask: Uint8Array; xor: Uint8Array }
  | { type: "lookup"; set: string; sreg: number; flags?: number }
  | { type: "counter"; packets?: number; bytes?: number }
  | { type: "log"; prefix?: string; level?: number }
  | { type: "immediate"; verdict: number; chain?: string }
  /** Read back only: an expression plexd does not build. */
  | { type: "unknown"; name: string };

/** Raw set element: key bytes (fields padded to 4 bytes), optional closing key, flags. */
export interface NftWireElem {
  key: Uint8Array;
  keyEnd?: Uint8Array;
  /** NFT_SET_ELEM_INTERVAL_END = 1 */
  flags?: number;
}

/** Wire ops; names are chain/set names inside the batch's table. */
export type NftWireOp =
  | { op: "addTable" | "deleteTable" | "flushTable" }
  | { op: "addChain"; name: string; hook?: number; priority?: number; policy?: number; chainType?: string }
  | { op: "deleteChain"; name: string }
  | { op: "flushChain"; chain: string }
  | { op: "addSet"; name: string; flags: number; keyType: number; keyLen: number; fieldLens?: number[] }
  | { op: "deleteSet"; name: string }
  | { op: "flushSet"; set: string }
  | { op: "addElements" | "deleteElements"; set: string; elements: NftWireElem[] }
  | { op: "addRule"; chain: string; exprs: NftExpr[] }
  | { op: "deleteRule"; chain: string; handle: number };

/** What nftApply / nftBuildBatch take. */
export interface NftWireBatch {
  family: NftFamily;
  table: string;
  ops: NftWireOp[];
}

/** What nftDump / nftParseDump return. */
export interface NftWireDump {
  tables: Array<{ family: string; name: string; flags: number; use: number; handle: number }>;
  chains: Array<{
    name: string;
    handle: number;
    use: number;
    hook?: number;
    priority?: number;
    chainType?: string;
    policy?: number;
  }>;
  sets: Array<{ name: string; handle: number; flags: number; keyType: number; keyLen: number; fieldLens: number[] }>;
  elements: Array<{ set: string; key: Uint8Array; keyEnd?: Uint8Array; flags: number }>;
  rules: Array<{ chain: string; handle: number; exprs: NftExpr[] }>;
}

/** The nftables part of the native addon (addon-api.ts NativeAddon, typed). */
export interface NftAddon {
  nftApply(batch: NftWireBatch): Promise<void>;
  nftDump(family: NftFamily, table: string): Promise<NftWireDump>;
  nftBuildBatch(batch: NftWireBatch, seq: number): Uint8Array[];
  /** Pure parser of raw nf_tables messages (tests, fuzzing). */
  nftParseDump(messages: Uint8Array[]): NftWireDump;
}
