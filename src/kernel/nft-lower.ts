/**
 * Policy-level batch → wire batch (kernel-shaped ops and expressions). Pure.
 *
 * The expression sequences mirror what `nft` 1.0.6 emits for the same rule text, so
 * `nft list` prints our rules the way a human would have written them:
 *   iifname "plexd0"          meta load iifname → cmp eq "plexd0\0…" (16 bytes)
 *   ip saddr 10.0.0.0/8       [meta nfproto = ipv4] payload → bitwise mask → cmp eq
 *   ct state established,related   ct load state → bitwise (mask) → cmp neq 0
 *   ip saddr . meta l4proto . th dport @s   loads into consecutive 32-bit registers → lookup
 */
import { endianness } from "node:os";
import type {
  ElemValue,
  Field,
  FwBatch,
  FwRule,
  FwSet,
  Match,
  NftExpr,
  NftWireBatch,
  NftWireOp,
  Statement,
} from "./firewall-api.ts";
import {
  CONCAT_TYPE_BITS,
  CT_STATES,
  FIELDS,
  HOOKS,
  KEY_TYPES,
  LOG_LEVELS,
  NFT_CMP_EQ,
  NFT_CMP_NEQ,
  NFT_CT_STATE,
  NFT_LOOKUP_F_INV,
  NFT_META_NFPROTO,
  NFT_REG_1,
  NFT_SET_CONCAT,
  NFT_SET_CONSTANT,
  NFT_SET_INTERVAL,
  POLICIES,
  VERDICTS,
  kindLen,
  wordReg,
} from "./nft-consts.ts";
import { NftValueError, encodeElement, keyLayout, parseRange, toBytes } from "./nft-values.ts";

function loadExpr(field: Field, dreg: number): NftExpr {
  const l = FIELDS[field].load;
  return l.type === "payload"
    ? { type: "payload", base: l.base, offset: l.offset, len: l.len, dreg }
    : { type: "meta", key: l.key, dreg };
}

/** Host-order u32 bytes (ct state is a host-endian register value). */
function hostU32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, endianness() === "LE");
  return b;
}

function ifnameBytes(s: string): Uint8Array {
  const enc = new TextEncoder().encode(s);
  if (enc.length === 0 || enc.length > 15 || enc.includes(0)) throw new NftValueError(`bad interface name: ${JSON.stringify(s)}`);
  const out = new Uint8Array(16);
  out.set(enc);
  return out;
}

function cmpMatch(field: Field, value: string | number, neq: boolean): NftExpr[] {
  const def = FIELDS[field];
  const op = neq ? NFT_CMP_NEQ : NFT_CMP_EQ;
  if (def.kind === "ifname") {
    if (typeof value !== "string") throw new NftValueError(`${field}: interface name expected`);
    return [loadExpr(field, NFT_REG_1), { type: "cmp", sreg: NFT_REG_1, op, data: ifnameBytes(value) }];
  }
  const len = kindLen(def.kind);
  const [lo, hi] = parseRange(def.kind, value as ElemValue);
  const out: NftExpr[] = [loadExpr(field, NFT_REG_1)];
  if (lo !== hi) {
    if (def.kind !== "v4" && def.kind !== "v6") throw new NftValueError(`${field}: ranges need a set`);
    const mask = ((1n << BigInt(len * 8)) - 1n) ^ (hi - lo);
    if (((hi - lo + 1n) & (hi - lo)) !== 0n || (lo & (hi - lo)) !== 0n)
      throw new NftValueError(`${field}: ${value} is not a CIDR`);
    out.push({ type: "bitwise", sreg: NFT_REG_1, dreg: NFT_REG_1, len, mask: toBytes(mask, len), xor: new Uint8Array(len) });
  }
  out.push({ type: "cmp", sreg: NFT_REG_1, op, data: toBytes(lo, len) });
  return out;
}

function ctMatch(states: string[]): NftExpr[] {
  if (states.length === 0) throw new NftValueError("ct state: no states");
  let mask = 0;
  for (const s of states) {
    const bit = CT_STATES[s as keyof typeof CT_STATES];
    if (bit === undefined) throw new NftValueError(`ct state: unknown state ${s}`);
    mask |= bit;
  }
  return [
    { type: "ct", key: NFT_CT_STATE, dreg: NFT_REG_1 },
    { type: "bitwise", sreg: NFT_REG_1, dreg: NFT_REG_1, len: 4, mask: hostU32(mask), xor: new Uint8Array(4) },
    { type: "cmp", sreg: NFT_REG_1, op: NFT_CMP_NEQ, data: new Uint8Array(4) },
  ];
}

function setMatch(fields: Field[], set: string, neg: boolean): NftExpr[] {
  if (fields.length === 0 || fields.length > 16) throw new NftValueError(`lookup @${set}: 1..16 fields`);
  const out: NftExpr[] = [];
  let word = 0;
  for (const f of fields) {
    if (FIELDS[f].kind === "ifname") throw new NftValueError(`lookup @${set}: ${f} is not a set key`);
    out.push(loadExpr(f, wordReg(word)));
    word += Math.ceil(kindLen(FIELDS[f].kind) / 4);
  }
  if (word > 16) throw new NftValueError(`lookup @${set}: key longer than 64 bytes`);
  out.push({ type: "lookup", set, sreg: NFT_REG_1, ...(neg ? { flags: NFT_LOOKUP_F_INV } : {}) });
  return out;
}

function matchFields(m: Match): Field[] {
  return m.match === "cmp" ? [m.field] : m.match === "set" ? m.fields : [];
}

function isNfprotoCheck(m: Match, v: number): boolean {
  return m.match === "cmp" && m.field === "meta nfproto" && (m.op ?? "eq") === "eq" && Number(m.value) === v;
}

function stmtExprs(s: Statement): NftExpr {
  switch (s.stmt) {
    case "counter":
      return { type: "counter" };
    case "log": {
      const x: NftExpr = { type: "log" };
      if (s.prefix !== undefined) x.prefix = s.prefix;
      if (s.level !== undefined) {
        const lv = LOG_LEVELS[s.level];
        if (lv === undefined) throw new NftValueError(`log level ${s.level}`);
        x.level = lv;
      }
      return x;
    }
    case "verdict":
      return s.verdict === "jump" || s.verdict === "goto"
        ? { type: "immediate", verdict: VERDICTS[s.verdict], chain: s.chain }
        : { type: "immediate", verdict: VERDICTS[s.verdict] };
  }
}

/**
 * A rule's expressions. In an inet table, the first ip/ip6 field of a family is preceded by
 * `meta nfproto` = that family unless the rule already checked it (what nft does, so an IPv6
 * packet is never compared against an IPv4 offset).
 */
export function lowerRule(rule: FwRule, family: FwBatch["family"]): NftExpr[] {
  const out: NftExpr[] = [];
  const have = new Set<number>();
  for (const m of rule.match) {
    if (family === "inet") {
      const explicit = [2, 10].find((v) => isNfprotoCheck(m, v));
      if (explicit !== undefined) {
        if (!have.has(explicit)) out.push(...cmpMatch("meta nfproto", explicit, false));
        have.add(explicit);
        continue;
      }
      for (const f of matchFields(m)) {
        const dep = FIELDS[f].nfproto;
        if (dep !== undefined && !have.has(dep)) {
          have.add(dep);
          out.push(...cmpMatch("meta nfproto", dep, false));
        }
      }
    }
    if (m.match === "cmp") out.push(...cmpMatch(m.field, m.value, m.op === "neq"));
    else if (m.match === "ct") out.push(...ctMatch(m.states));
    else out.push(...setMatch(m.fields, m.set, m.neg ?? false));
  }
  for (const s of rule.stmt) out.push(stmtExprs(s));
  if (out.length > 64) throw new NftValueError(`rule in ${rule.chain}: more than 64 expressions`);
  return out;
}

/** Set spec → wire fields (key type packed 6 bits per field, CONCAT for interval concats). */
export function lowerSet(set: FwSet): Extract<NftWireOp, { op: "addSet" }> {
  if (set.type.length === 0 || set.type.length > 16) throw new NftValueError(`set ${set.name}: 1..16 key types`);
  const { keyLen, fieldLens } = keyLayout(set.type);
  if (keyLen > 64) throw new NftValueError(`set ${set.name}: key longer than 64 bytes`);
  let keyType = 0;
  for (const t of set.type) keyType = keyType * (1 << CONCAT_TYPE_BITS) + KEY_TYPES[t].id;
  let flags = 0;
  if (set.flags?.includes("interval")) flags |= NFT_SET_INTERVAL;
  if (set.flags?.includes("constant")) flags |= NFT_SET_CONSTANT;
  if (set.type.length > 1 && flags & NFT_SET_INTERVAL) flags |= NFT_SET_CONCAT;
  return {
    op: "addSet",
    name: set.name,
    flags,
    keyType,
    keyLen,
    ...(set.type.length > 1 ? { fieldLens } : {}),
  };
}

/**
 * Lowers a batch. Element ops need their set's type: taken from an addSet in the same batch,
 * else from `knownSets` (the caller reads them from the kernel).
 */
export function lowerBatch(batch: FwBatch, knownSets: ReadonlyMap<string, FwSet> = new Map()): NftWireBatch {
  const sets = new Map(knownSets);
  const ops: NftWireOp[] = batch.ops.map((op): NftWireOp => {
    switch (op.op) {
      case "addTable":
      case "deleteTable":
      case "flushTable":
        return { op: op.op };
      case "addChain": {
        const c = op.chain;
        if (!c.hook) return { op: "addChain", name: c.name };
        return {
          op: "addChain",
          name: c.name,
          hook: HOOKS[c.hook],
          priority: c.priority ?? 0,
          policy: POLICIES[c.policy ?? "accept"],
          chainType: "filter",
        };
      }
      case "deleteChain":
        return { op: "deleteChain", name: op.chain };
      case "flushChain":
        return { op: "flushChain", chain: op.chain };
      case "addSet":
        sets.set(op.set.name, op.set);
        return lowerSet(op.set);
      case "deleteSet":
        return { op: "deleteSet", name: op.set };
      case "flushSet":
        return { op: "flushSet", set: op.set };
      case "addElements":
      case "deleteElements": {
        const s = sets.get(op.set);
        if (!s) throw new NftValueError(`elements for unknown set ${op.set}`);
        return { op: op.op, set: op.set, elements: op.elements.flatMap((e) => encodeElement(s, e)) };
      }
      case "addRule":
        return { op: "addRule", chain: op.rule.chain, exprs: lowerRule(op.rule, batch.family) };
      case "deleteRule":
        return { op: "deleteRule", chain: op.chain, handle: op.handle };
    }
  });
  return { family: batch.family, table: batch.table, ops };
}
