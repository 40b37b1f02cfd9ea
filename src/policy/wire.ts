/**
 * Fast lowering of large element lists. `lowerBatch` (kernel/nft-lower.ts) is exact but
 * parses every value through the general address parser; with 10,000+ elements that dominates
 * a policy apply. Compiled element lists are encoded from the numeric boxes they were
 * formatted from (no parsing at all); other lists encode IPv4/proto/port values with plain
 * number arithmetic, falling back to the kernel module's encoder for anything else (IPv6,
 * unusual spellings). Either way the bytes equal encodeElement's (wire.test.ts) and each
 * element list travels to the addon as one packed buffer (kernel/nft-packed.ts). Pure.
 */
import type { FwBatch, FwElement, FwSet, NftWireElem, SetKeyType } from "../kernel/firewall-api.ts";
import { lowerBatch } from "../kernel/nft.ts";
import { ElemPacker, type NftPackedBatch } from "../kernel/nft-packed.ts";
import type { Box, Range } from "./ranges.ts";
import { encodeElement } from "../kernel/nft-values.ts";
import { NFT_SET_ELEM_INTERVAL_END } from "../kernel/nft-consts.ts";

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const LEN: Record<string, number> = { ipv4_addr: 4, inet_proto: 1, inet_service: 2 };
const MAX: Record<string, number> = { ipv4_addr: 0xffffffff, inet_proto: 0xff, inet_service: 0xffff };

function v4(s: string): number | undefined {
  const m = V4.exec(s);
  if (!m) return undefined;
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    const o = Number(m[i]);
    if (o > 255) return undefined;
    v = v * 256 + o;
  }
  return v;
}

/** [lo, hi] of one field value, or undefined when the fast path does not apply. */
function range(type: string, v: string | number): [number, number] | undefined {
  if (type === "ipv4_addr") {
    if (typeof v !== "string") return undefined;
    const slash = v.indexOf("/");
    const dash = v.indexOf("-");
    if (dash >= 0) {
      const lo = v4(v.slice(0, dash));
      const hi = v4(v.slice(dash + 1));
      return lo === undefined || hi === undefined || lo > hi ? undefined : [lo, hi];
    }
    const a = v4(slash >= 0 ? v.slice(0, slash) : v);
    if (a === undefined) return undefined;
    if (slash < 0) return [a, a];
    const p = v.slice(slash + 1);
    if (!/^\d{1,2}$/.test(p) || Number(p) > 32) return undefined;
    const size = 2 ** (32 - Number(p));
    const lo = a - (a % size);
    return [lo, lo + size - 1];
  }
  if (type !== "inet_proto" && type !== "inet_service") return undefined;
  const max = MAX[type] as number;
  if (typeof v === "number") return Number.isInteger(v) && v >= 0 && v <= max ? [v, v] : undefined;
  const m = /^(\d+)-(\d+)$/.exec(v);
  if (!m) return /^\d+$/.test(v) && Number(v) <= max ? [Number(v), Number(v)] : undefined;
  const lo = Number(m[1]);
  const hi = Number(m[2]);
  return lo <= hi && hi <= max ? [lo, hi] : undefined;
}

function put(out: Uint8Array, off: number, v: number, len: number): void {
  for (let i = len - 1; i >= 0; i--) {
    out[off + i] = v % 256;
    v = Math.floor(v / 256);
  }
}

/** Wire elements of one element; same bytes as nft-values encodeElement. */
export function encodeFast(set: FwSet, el: FwElement): NftWireElem[] {
  const interval = set.flags?.includes("interval") ?? false;
  if (el.key.length !== set.type.length) return encodeElement(set, el);
  const rs: Array<[number, number]> = [];
  for (let i = 0; i < set.type.length; i++) {
    const r = range(set.type[i] as string, el.key[i] as string | number);
    if (!r) return encodeElement(set, el);
    if (!interval && r[0] !== r[1]) return encodeElement(set, el); // let it throw the usual error
    rs.push(r);
  }
  const concat = set.type.length > 1;
  const lens = set.type.map((t) => LEN[t] as number);
  const padded = concat ? lens.map((l) => Math.ceil(l / 4) * 4) : lens;
  const total = padded.reduce((a, b) => a + b, 0);
  const build = (pick: 0 | 1) => {
    const b = new Uint8Array(total);
    let off = 0;
    rs.forEach((r, i) => {
      put(b, off, r[pick], lens[i] as number);
      off += padded[i] as number;
    });
    return b;
  };
  if (!interval) return [{ key: build(0) }];
  if (concat) return [{ key: build(0), keyEnd: build(1) }];
  const [lo, hi] = rs[0] as [number, number];
  const t = set.type[0] as string;
  const out: NftWireElem[] = [{ key: build(0) }];
  if (hi < (MAX[t] as number)) {
    const end = new Uint8Array(lens[0] as number);
    put(end, 0, hi + 1, lens[0] as number);
    out.push({ key: end, flags: NFT_SET_ELEM_INTERVAL_END });
  }
  return out;
}

/**
 * Compiled element lists and the disjoint boxes they were formatted from (same order).
 * Lowering such a list encodes the boxes' numbers directly instead of parsing the strings
 * back; both give the same bytes (wire.test.ts).
 */
const boxesOfElements = new WeakMap<readonly FwElement[], { boxes: readonly Box[]; type: string }>();

/** Remembers that `elements` were formatted from `boxes` for a set of `type` (compile.ts elementsOf). */
export function rememberBoxes(elements: readonly FwElement[], boxes: readonly Box[], type: readonly SetKeyType[]): void {
  boxesOfElements.set(elements, { boxes, type: type.join(".") });
}

const KIND_LEN: Record<string, number> = { ipv4_addr: 4, ipv6_addr: 16, inet_proto: 1, inet_service: 2 };
const KIND_MAX: Record<string, bigint> = { ipv4_addr: 0xffffffffn, ipv6_addr: (1n << 128n) - 1n, inet_proto: 0xffn, inet_service: 0xffffn };

/** Big-endian `len` bytes of v at b[off]. */
function putBig(b: Uint8Array, off: number, v: bigint, len: number): void {
  if (len <= 4) {
    let n = Number(v);
    for (let i = len - 1; i >= 0; i--) {
      b[off + i] = n & 0xff;
      n = n >>> 8;
    }
    return;
  }
  for (let i = len - 1; i >= 0; i -= 4) {
    let n = Number(v & 0xffffffffn);
    v >>= 32n;
    for (let j = 0; j < 4 && i - j >= 0; j++) {
      b[off + i - j] = n & 0xff;
      n = n >>> 8;
    }
  }
}

/**
 * Packs the wire elements of `boxes` in a set of type `set`, exactly as encodeElement would
 * encode their formatted elements; false (nothing written) when a box does not fit the type
 * (the caller takes the general path, which throws the usual error).
 */
export function packBoxes(set: FwSet, boxes: readonly Box[], out: ElemPacker, fitted = false): boolean {
  const n = set.type.length;
  const interval = set.flags?.includes("interval") ?? false;
  const lens: number[] = [];
  const maxes: bigint[] = [];
  for (const t of set.type) {
    const l = KIND_LEN[t];
    const m = KIND_MAX[t];
    if (l === undefined || m === undefined) return false;
    lens.push(l);
    maxes.push(m);
  }
  // `fitted`: the boxes were parsed for exactly this type (compile), so every range is within
  // its field; only a non-interval set still needs its single-value check.
  if (!fitted || !interval)
    for (const box of boxes) {
      if (box.length !== n) return false;
      for (let i = 0; i < n; i++) {
        const r = box[i] as Range;
        if (r[0] < 0n || r[0] > r[1] || r[1] > (maxes[i] as bigint) || (!interval && r[0] !== r[1])) return false;
      }
    }
  const offs: number[] = [];
  let keyLen = 0;
  for (const l of lens) {
    offs.push(keyLen);
    keyLen += n > 1 ? Math.ceil(l / 4) * 4 : l;
  }
  for (const box of boxes) {
    if (n > 1 || !interval) {
      const o = out.record(keyLen, interval ? keyLen : 0, 0);
      const b = out.bytes;
      for (let i = 0; i < n; i++) {
        const r = box[i] as Range;
        putBig(b, o + (offs[i] as number), r[0], lens[i] as number);
        if (interval) putBig(b, o + keyLen + (offs[i] as number), r[1], lens[i] as number);
      }
      continue;
    }
    // Single-field interval (rbtree): start element, then INTERVAL_END at hi + 1 unless hi is the maximum.
    const r = box[0] as Range;
    let o = out.record(keyLen, 0, 0);
    putBig(out.bytes, o, r[0], keyLen);
    if (r[1] < (maxes[0] as bigint)) {
      o = out.record(keyLen, 0, NFT_SET_ELEM_INTERVAL_END);
      putBig(out.bytes, o, r[1] + 1n, keyLen);
    }
  }
  return true;
}

/**
 * lowerBatch, with element lists packed (kernel/nft-packed.ts): compiled lists straight from
 * their boxes, any other list through encodeFast. Ops stay one-to-one.
 */
export function lowerFast(batch: FwBatch, sets: ReadonlyMap<string, FwSet>): NftPackedBatch {
  const known = new Map(sets);
  const stripped: FwBatch = {
    ...batch,
    ops: batch.ops.map((o) => {
      if (o.op === "addSet") known.set(o.set.name, o.set);
      return o.op === "addElements" || o.op === "deleteElements" ? { ...o, elements: [] } : o;
    }),
  };
  const wire = lowerBatch(stripped, known);
  const ops: NftPackedBatch["ops"] = wire.ops.map((w, i) => {
    const o = batch.ops[i];
    if (!o || (o.op !== "addElements" && o.op !== "deleteElements") || (w.op !== "addElements" && w.op !== "deleteElements")) return w;
    const set = known.get(o.set);
    if (!set) return w;
    const out = new ElemPacker(o.elements.length * 40 + 16);
    const from = boxesOfElements.get(o.elements);
    const fitted = from !== undefined && from.type === set.type.join(".");
    if (!(from && from.boxes.length === o.elements.length && packBoxes(set, from.boxes, out, fitted)))
      for (const e of o.elements) for (const x of encodeFast(set, e)) out.push(x);
    return { op: w.op, set: w.set, packed: out.finish() };
  });
  return { family: wire.family, table: wire.table, ops };
}
