/**
 * Wire dump → policy-level dump (the inverse of nft-lower.ts), plus the normalisation that
 * makes a requested batch comparable with what the kernel reports. Pure.
 *
 * A rule whose expressions are not ones plexd builds is still returned, with `opaque` set to
 * the expression list: the reconciler must see it differs from anything it wants, never
 * silently take it for an empty rule.
 */
import { endianness } from "node:os";
import type {
  CtState,
  Field,
  FwChain,
  FwDump,
  FwElement,
  FwRule,
  FwSet,
  LogLevel,
  Match,
  NftExpr,
  NftFamily,
  NftWireDump,
  SetKeyType,
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
  NFT_SET_CONSTANT,
  NFT_SET_INTERVAL,
  POLICIES,
  VERDICTS,
  fieldOfLoad,
  kindLen,
  regWord,
  type ValueKind,
} from "./nft-consts.ts";
import { decodeElements, elementKey, formatRange, fromBytes, normaliseElement } from "./nft-values.ts";

/** A raised rule; `opaque` holds the expressions when they are not plexd's vocabulary. */
export type RaisedRule = FwRule & { opaque?: NftExpr[] };

class Opaque extends Error {}

function byValue<T extends string>(rec: Record<T, number>, v: number): T | undefined {
  return (Object.keys(rec) as T[]).find((k) => rec[k] === v);
}

function hostU32(b: Uint8Array): number {
  if (b.length !== 4) throw new Opaque();
  return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, endianness() === "LE");
}

function ifnameOf(b: Uint8Array): string {
  const end = b.indexOf(0);
  return new TextDecoder().decode(end >= 0 ? b.subarray(0, end) : b);
}

/** Leading-ones prefix length of a mask, or undefined if the mask is not contiguous. */
function maskPrefix(mask: Uint8Array): number | undefined {
  const bits = mask.length * 8;
  const v = fromBytes(mask);
  for (let p = 0; p <= bits; p++) {
    const m = ((1n << BigInt(bits)) - 1n) ^ ((1n << BigInt(bits - p)) - 1n);
    if (m === v) return p;
  }
  return undefined;
}

type RegSrc = { field: Field; prefix?: number } | { ct: true; mask?: number };

function raiseExprs(exprs: NftExpr[]): { match: Match[]; stmt: Statement[] } {
  const regs = new Map<number, RegSrc>();
  const match: Match[] = [];
  const stmt: Statement[] = [];
  for (const x of exprs) {
    if (stmt.length > 0 && (x.type === "payload" || x.type === "meta" || x.type === "cmp" || x.type === "lookup"))
      throw new Opaque(); // a match after a statement: not our layout
    switch (x.type) {
      case "payload":
      case "meta": {
        const f = fieldOfLoad(x);
        if (!f) throw new Opaque();
        regs.set(regWord(x.dreg), { field: f });
        break;
      }
      case "ct":
        if (x.key !== NFT_CT_STATE) throw new Opaque();
        regs.set(regWord(x.dreg), { ct: true });
        break;
      case "bitwise": {
        const src = regs.get(regWord(x.sreg));
        if (!src || x.sreg !== x.dreg || x.xor.some((b) => b !== 0)) throw new Opaque();
        if ("ct" in src) src.mask = hostU32(x.mask);
        else {
          const p = maskPrefix(x.mask);
          if (p === undefined || x.len !== kindLen(FIELDS[src.field].kind)) throw new Opaque();
          src.prefix = p;
        }
        break;
      }
      case "cmp": {
        const src = regs.get(regWord(x.sreg));
        regs.delete(regWord(x.sreg));
        if (!src || (x.op !== NFT_CMP_EQ && x.op !== NFT_CMP_NEQ)) throw new Opaque();
        if ("ct" in src) {
          if (x.op !== NFT_CMP_NEQ || src.mask === undefined || hostU32(x.data) !== 0) throw new Opaque();
          const mask = src.mask;
          const states = (Object.keys(CT_STATES) as CtState[]).filter((s) => mask & CT_STATES[s]);
          if (states.reduce((a, s) => a | CT_STATES[s], 0) !== mask) throw new Opaque();
          match.push({ match: "ct", states });
          break;
        }
        const kind = FIELDS[src.field].kind;
        let value: string | number;
        if (kind === "ifname") value = ifnameOf(x.data);
        else {
          const lo = fromBytes(x.data);
          const bits = x.data.length * 8;
          const host = src.prefix === undefined ? 0n : (1n << BigInt(bits - src.prefix)) - 1n;
          value = formatRange(kind, lo, lo | host);
          if (typeof value === "string" && src.prefix !== undefined && !value.includes("/") && src.prefix !== bits)
            throw new Opaque();
        }
        match.push({ match: "cmp", field: src.field, value, ...(x.op === NFT_CMP_NEQ ? { op: "neq" as const } : {}) });
        break;
      }
      case "lookup": {
        const start = regWord(x.sreg);
        const fields: Field[] = [];
        let w = start;
        for (;;) {
          const src = regs.get(w);
          if (!src || "ct" in src || src.prefix !== undefined) break;
          fields.push(src.field);
          regs.delete(w);
          w += Math.ceil(kindLen(FIELDS[src.field].kind) / 4);
        }
        if (fields.length === 0) throw new Opaque();
        match.push({ match: "set", fields, set: x.set, ...(x.flags && x.flags & NFT_LOOKUP_F_INV ? { neg: true } : {}) });
        break;
      }
      case "counter":
        stmt.push({ stmt: "counter", packets: x.packets ?? 0, bytes: x.bytes ?? 0 });
        break;
      case "log": {
        const s: Statement = { stmt: "log" };
        if (x.prefix !== undefined) s.prefix = x.prefix;
        // nft's default level is warn; the kernel reports it either way: keep it implicit.
        if (x.level !== undefined && x.level !== LOG_LEVELS.warn) {
          const lv = byValue(LOG_LEVELS, x.level) as LogLevel | undefined;
          if (!lv) throw new Opaque();
          s.level = lv;
        }
        stmt.push(s);
        break;
      }
      case "immediate": {
        const v = byValue(VERDICTS, x.verdict);
        if (!v) throw new Opaque();
        if (v === "jump" || v === "goto") stmt.push({ stmt: "verdict", verdict: v, chain: x.chain ?? "" });
        else stmt.push({ stmt: "verdict", verdict: v });
        break;
      }
      default:
        throw new Opaque();
    }
  }
  return { match, stmt };
}

/** Drops `meta nfproto` checks that only guard a later ip/ip6 field (inet tables). */
function dropImpliedNfproto(match: Match[], family: NftFamily): Match[] {
  if (family !== "inet") return match;
  return match.filter((m, i) => {
    if (m.match !== "cmp" || m.field !== "meta nfproto" || (m.op ?? "eq") !== "eq") return true;
    const v = Number(m.value);
    const fields = match.slice(i + 1).flatMap((n) => (n.match === "cmp" ? [n.field] : n.match === "set" ? n.fields : []));
    return !fields.some((f) => FIELDS[f].nfproto === v);
  });
}

/** Wire rule expressions → matches + statements (or opaque). */
export function raiseRule(r: { chain: string; handle: number; exprs: NftExpr[] }, family: NftFamily): RaisedRule {
  try {
    const { match, stmt } = raiseExprs(r.exprs);
    return { chain: r.chain, handle: r.handle, match: dropImpliedNfproto(match, family), stmt };
  } catch (e) {
    if (!(e instanceof Opaque)) throw e;
    return { chain: r.chain, handle: r.handle, match: [], stmt: [], opaque: r.exprs };
  }
}

/** Packed key type → field types; undefined for a type plexd does not use. */
export function keyTypesOf(keyType: number): SetKeyType[] | undefined {
  const out: SetKeyType[] = [];
  let t = keyType;
  while (t > 0) {
    const id = t % (1 << CONCAT_TYPE_BITS);
    const name = (Object.keys(KEY_TYPES) as SetKeyType[]).find((k) => KEY_TYPES[k].id === id);
    if (!name) return undefined;
    out.unshift(name);
    t = Math.floor(t / (1 << CONCAT_TYPE_BITS));
  }
  return out.length ? out : undefined;
}

/** The whole wire dump → policy-level dump. */
export function raiseDump(family: NftFamily, table: string, w: NftWireDump): FwDump {
  const chains: FwChain[] = w.chains.map((c) => {
    const out: FwChain = { name: c.name, handle: c.handle };
    if (c.hook !== undefined) {
      const hook = byValue(HOOKS, c.hook);
      if (hook) out.hook = hook;
      out.priority = c.priority ?? 0;
      out.policy = byValue(POLICIES, c.policy ?? 1) ?? "accept";
    }
    return out;
  });
  const sets = w.sets.map((s) => {
    const type = keyTypesOf(s.keyType) ?? [];
    const flags: Array<"interval" | "constant"> = [];
    if (s.flags & NFT_SET_INTERVAL) flags.push("interval");
    if (s.flags & NFT_SET_CONSTANT) flags.push("constant");
    const wire = w.elements.filter((e) => e.set === s.name);
    const elements: FwElement[] = type.length ? decodeElements(type, s.flags, wire) : [];
    const set: FwSet & { elements: FwElement[] } = { name: s.name, type, handle: s.handle, elements };
    if (flags.length) set.flags = flags;
    return set;
  });
  return {
    family,
    table,
    exists: w.tables.some((t) => t.name === table),
    chains,
    sets,
    rules: w.rules.map((r) => raiseRule(r, family)),
  };
}

/**
 * Canonical form of a requested rule, comparable with a raised one: values normalised the
 * way the kernel reports them, implied nfproto checks dropped, default log level dropped,
 * counter values and handle removed.
 */
export function normaliseRule(rule: FwRule, family: NftFamily): FwRule {
  const match = rule.match.map((m): Match => {
    if (m.match !== "cmp") return m.match === "set" && !m.neg ? { match: "set", fields: m.fields, set: m.set } : m;
    const kind = FIELDS[m.field].kind;
    const value = kind === "ifname" ? m.value : normValue(kind, m.value);
    return { match: "cmp", field: m.field, value, ...(m.op === "neq" ? { op: "neq" as const } : {}) };
  });
  const stmt = rule.stmt.map((s): Statement => {
    if (s.stmt === "counter") return { stmt: "counter" };
    if (s.stmt === "log") {
      const o: Statement = { stmt: "log" };
      if (s.prefix !== undefined) o.prefix = s.prefix;
      if (s.level !== undefined && s.level !== "warn") o.level = s.level;
      return o;
    }
    return s;
  });
  return { chain: rule.chain, match: dropImpliedNfproto(match, family), stmt };
}

function normValue(kind: Exclude<ValueKind, "ifname">, v: string | number): string | number {
  const t: SetKeyType = kind === "v4" ? "ipv4_addr" : kind === "v6" ? "ipv6_addr" : kind === "u8" ? "inet_proto" : "inet_service";
  return normaliseElement({ type: [t] }, { key: [v] }).key[0] as string | number;
}

/** A raised rule without handle and counter values, for comparisons. */
export function comparableRule(rule: RaisedRule): FwRule & { opaque?: NftExpr[] } {
  const out: FwRule & { opaque?: NftExpr[] } = {
    chain: rule.chain,
    match: rule.match,
    stmt: rule.stmt.map((s) => (s.stmt === "counter" ? { stmt: "counter" } : s)),
  };
  if (rule.opaque) out.opaque = rule.opaque;
  return out;
}

export { elementKey };
