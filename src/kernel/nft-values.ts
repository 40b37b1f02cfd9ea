/**
 * Values ↔ bytes for nftables: addresses, CIDRs, ranges, protocol and port numbers, interface
 * names; and set elements (single, concatenated, interval) ↔ wire elements. Pure.
 *
 * Everything is a closed range [lo, hi] of bigints while computing, so prefixes, ranges and
 * single values share one path, and formatting back picks the shortest exact spelling
 * (single value, CIDR, or "lo-hi").
 */
import { normaliseIp, scanDottedQuad } from "./cidr.ts";
import type { ElemValue, FwElement, FwSet, NftWireElem, SetKeyType } from "./firewall-api.ts";
import { KEY_TYPES, NFT_SET_ELEM_INTERVAL_END, NFT_SET_INTERVAL, kindLen, type ValueKind } from "./nft-consts.ts";

/** A value or element the kernel could not take as written. */
export class NftValueError extends Error {
  override name = "NftValueError";
  readonly code = "NFT_BAD_VALUE";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

const KIND_OF: Record<SetKeyType, ValueKind> = {
  ipv4_addr: "v4",
  ipv6_addr: "v6",
  inet_proto: "u8",
  inet_service: "u16",
};

export function keyKind(t: SetKeyType): ValueKind {
  return KIND_OF[t];
}

function bitsOf(kind: ValueKind): number {
  return kindLen(kind) * 8;
}

const maxes = new Map<ValueKind, bigint>();
function maxOf(kind: ValueKind): bigint {
  let m = maxes.get(kind);
  if (m === undefined) maxes.set(kind, (m = (1n << BigInt(bitsOf(kind))) - 1n));
  return m;
}

function parseAddr(kind: "v4" | "v6", s: string): bigint {
  if (kind === "v4") {
    const q = scanDottedQuad(s);
    if (q !== undefined && q.end === s.length) return BigInt(q.value);
  }
  let canon: string;
  try {
    canon = normaliseIp(s);
  } catch (e) {
    throw new NftValueError(`not an address: ${JSON.stringify(s)}`, { cause: e });
  }
  const isV4 = !canon.includes(":");
  if ((kind === "v4") !== isV4) throw new NftValueError(`wrong address family: ${JSON.stringify(s)}`);
  if (isV4) return canon.split(".").reduce((acc, p) => (acc << 8n) | BigInt(Number(p)), 0n);
  // Expand "::" then read 8 groups.
  const [head = "", tail] = canon.split("::") as [string, string | undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

function formatAddr(kind: "v4" | "v6", v: bigint): string {
  if (kind === "v4") return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 255n)).join(".");
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((v >> BigInt(i * 16)) & 0xffffn).toString(16));
  return normaliseIp(groups.join(":"));
}

function parseNum(kind: ValueKind, s: string | number): bigint {
  const n = typeof s === "number" ? s : /^\d+$/.test(s.trim()) ? Number(s.trim()) : NaN;
  if (!Number.isInteger(n) || n < 0 || BigInt(n) > maxOf(kind))
    throw new NftValueError(`not a ${kind === "u8" ? "protocol" : "port"} number: ${JSON.stringify(s)}`);
  return BigInt(n);
}

/** Parses one field value into a closed range. */
export function parseRange(kind: ValueKind, v: ElemValue): [bigint, bigint] {
  if (kind === "ifname") throw new NftValueError("interface names are not set keys");
  if (kind === "u8" || kind === "u16") {
    if (typeof v === "string" && v.includes("-")) {
      const [a = "", b = ""] = v.split("-");
      const lo = parseNum(kind, a);
      const hi = parseNum(kind, b);
      if (lo > hi) throw new NftValueError(`empty range: ${v}`);
      return [lo, hi];
    }
    const n = parseNum(kind, v);
    return [n, n];
  }
  if (typeof v !== "string") throw new NftValueError(`address expected, got ${v}`);
  const dash = v.indexOf("-");
  if (dash >= 0) {
    const lo = parseAddr(kind, v.slice(0, dash).trim());
    const hi = parseAddr(kind, v.slice(dash + 1).trim());
    if (lo > hi) throw new NftValueError(`empty range: ${v}`);
    return [lo, hi];
  }
  const slash = v.indexOf("/");
  if (slash < 0) {
    const a = parseAddr(kind, v);
    return [a, a];
  }
  const bits = bitsOf(kind);
  const plen = Number(v.slice(slash + 1));
  if (!/^\d{1,3}$/.test(v.slice(slash + 1)) || plen > bits) throw new NftValueError(`bad prefix: ${v}`);
  const host = (1n << BigInt(bits - plen)) - 1n;
  const net = parseAddr(kind, v.slice(0, slash)) & ~host & maxOf(kind);
  return [net, net | host];
}

/** Prefix length when [lo, hi] is exactly one CIDR block, else undefined. */
function prefixOf(kind: ValueKind, lo: bigint, hi: bigint): number | undefined {
  const size = hi - lo + 1n;
  if ((size & (size - 1n)) !== 0n || (lo & (size - 1n)) !== 0n) return undefined;
  return bitsOf(kind) - (size.toString(2).length - 1);
}

/** Shortest exact spelling of a range: single value, CIDR, or "lo-hi". */
export function formatRange(kind: ValueKind, lo: bigint, hi: bigint): ElemValue {
  if (kind === "u8" || kind === "u16") return lo === hi ? Number(lo) : `${lo}-${hi}`;
  if (kind === "ifname") throw new NftValueError("interface names are not set keys");
  if (lo === hi) return formatAddr(kind, lo);
  const p = prefixOf(kind, lo, hi);
  return p === undefined ? `${formatAddr(kind, lo)}-${formatAddr(kind, hi)}` : `${formatAddr(kind, lo)}/${p}`;
}

/** Big-endian bytes of v, `len` long. */
export function toBytes(v: bigint, len: number): Uint8Array {
  const out = new Uint8Array(len);
  if (len <= 4 && v >= 0n && v <= 0xffffffffn) {
    // Number arithmetic for the common short fields (addresses, protocols, ports).
    let n = Number(v);
    for (let i = len - 1; i >= 0; i--) {
      out[i] = n & 255;
      n = n >>> 8;
    }
    return out;
  }
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(v & 255n);
    v >>= 8n;
  }
  return out;
}

export function fromBytes(b: Uint8Array): bigint {
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v;
}

/** Key length and per-field lengths of a set type (fields padded to 4 in a concatenation). */
export function keyLayout(type: SetKeyType[]): { keyLen: number; fieldLens: number[]; padded: number[] } {
  const fieldLens = type.map((t) => KEY_TYPES[t].len);
  const padded = type.length > 1 ? fieldLens.map((l) => Math.ceil(l / 4) * 4) : fieldLens;
  return { keyLen: padded.reduce((a, b) => a + b, 0), fieldLens, padded };
}

/** keyLayout per distinct type spelling (encodeElement runs once per element). */
const layouts = new Map<string, ReturnType<typeof keyLayout>>();
function layoutOf(type: SetKeyType[]): ReturnType<typeof keyLayout> {
  const k = type.join(".");
  let l = layouts.get(k);
  if (!l) layouts.set(k, (l = keyLayout(type)));
  return l;
}

function concat(parts: Uint8Array[], padded: number[]): Uint8Array {
  const out = new Uint8Array(padded.reduce((a, b) => a + b, 0));
  let off = 0;
  parts.forEach((p, i) => {
    out.set(p, off);
    off += padded[i] ?? 0;
  });
  return out;
}

/**
 * Wire elements for one element. Interval sets: a single field becomes a start element plus
 * an INTERVAL_END element at hi + 1 (rbtree; omitted when hi is the maximum); a concatenation
 * becomes one element with KEY (all lows) and KEY_END (all highs) (pipapo).
 */
export function encodeElement(set: FwSet, el: FwElement): NftWireElem[] {
  const interval = set.flags?.includes("interval") ?? false;
  if (el.key.length !== set.type.length)
    throw new NftValueError(`set ${set.name}: element has ${el.key.length} fields, type has ${set.type.length}`);
  const { fieldLens, padded } = layoutOf(set.type);
  const ranges = set.type.map((t, i) => parseRange(KIND_OF[t], el.key[i] as ElemValue));
  if (!interval && ranges.some(([lo, hi]) => lo !== hi))
    throw new NftValueError(`set ${set.name} has no interval flag: ${JSON.stringify(el.key)}`);
  const lows = ranges.map(([lo], i) => toBytes(lo, fieldLens[i] ?? 0));
  if (!interval) return [{ key: concat(lows, padded) }];
  if (set.type.length > 1) {
    const highs = ranges.map(([, hi], i) => toBytes(hi, fieldLens[i] ?? 0));
    return [{ key: concat(lows, padded), keyEnd: concat(highs, padded) }];
  }
  const t = set.type[0] as SetKeyType;
  const [lo, hi] = ranges[0] as [bigint, bigint];
  const out: NftWireElem[] = [{ key: toBytes(lo, KEY_TYPES[t].len) }];
  if (hi < maxOf(KIND_OF[t])) out.push({ key: toBytes(hi + 1n, KEY_TYPES[t].len), flags: NFT_SET_ELEM_INTERVAL_END });
  return out;
}

function splitKey(type: SetKeyType[], key: Uint8Array): bigint[] {
  const { fieldLens, padded } = keyLayout(type);
  let off = 0;
  return type.map((_, i) => {
    const v = fromBytes(key.subarray(off, off + (fieldLens[i] ?? 0)));
    off += padded[i] ?? 0;
    return v;
  });
}

/** Wire elements (as dumped) → elements; rbtree start/end pairs are joined again. */
export function decodeElements(
  type: SetKeyType[],
  setFlags: number,
  wire: Array<{ key: Uint8Array; keyEnd?: Uint8Array; flags: number }>,
): FwElement[] {
  const kinds = type.map((t) => KIND_OF[t]);
  const interval = (setFlags & NFT_SET_INTERVAL) !== 0;
  if (!interval || type.length > 1) {
    return wire.map((w) => {
      const lo = splitKey(type, w.key);
      const hi = w.keyEnd ? splitKey(type, w.keyEnd) : lo;
      return { key: lo.map((l, i) => formatRange(kinds[i] as ValueKind, l, hi[i] as bigint)) };
    });
  }
  const kind = kinds[0] as ValueKind;
  const pts = wire
    .map((w) => ({ v: fromBytes(w.key), end: (w.flags & NFT_SET_ELEM_INTERVAL_END) !== 0 }))
    .sort((a, b) => (a.v < b.v ? -1 : a.v > b.v ? 1 : a.end === b.end ? 0 : a.end ? -1 : 1));
  const out: FwElement[] = [];
  for (let i = 0; i < pts.length; i++) {
    const p = pts[i] as { v: bigint; end: boolean };
    if (p.end) continue; // a closing marker without a start (e.g. nft's leading 0 marker)
    const next = pts[i + 1];
    const hi = next && next.end ? next.v - 1n : next ? next.v - 1n : maxOf(kind);
    out.push({ key: [formatRange(kind, p.v, hi)] });
    if (next && next.end) i++;
  }
  return out;
}

/** Canonical spelling of an element, as decodeElements would return it. */
export function normaliseElement(set: Pick<FwSet, "type">, el: FwElement): FwElement {
  return {
    key: set.type.map((t, i) => {
      const [lo, hi] = parseRange(KIND_OF[t], el.key[i] as ElemValue);
      return formatRange(KIND_OF[t], lo, hi);
    }),
  };
}

/** Stable sort key for comparing element lists. */
export function elementKey(el: FwElement): string {
  return JSON.stringify(el.key);
}
