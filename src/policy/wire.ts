/**
 * Fast lowering of large element lists. `lowerBatch` (kernel/nft-lower.ts) is exact but
 * parses every value through the general address parser; with 10,000+ elements that dominates
 * a policy apply. This encodes IPv4/proto/port values with plain number arithmetic and
 * produces byte-identical wire elements (checked against encodeElement in wire.test.ts); any
 * other value (IPv6, unusual spellings) falls back to the kernel module's encoder. Pure.
 */
import type { FwBatch, FwElement, FwSet, NftWireBatch, NftWireElem } from "../kernel/firewall-api.ts";
import { lowerBatch } from "../kernel/nft.ts";
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

/** lowerBatch, with element lists encoded by encodeFast (ops stay one-to-one). */
export function lowerFast(batch: FwBatch, sets: ReadonlyMap<string, FwSet>): NftWireBatch {
  const known = new Map(sets);
  const stripped: FwBatch = {
    ...batch,
    ops: batch.ops.map((o) => {
      if (o.op === "addSet") known.set(o.set.name, o.set);
      return o.op === "addElements" || o.op === "deleteElements" ? { ...o, elements: [] } : o;
    }),
  };
  const wire = lowerBatch(stripped, known);
  batch.ops.forEach((o, i) => {
    if (o.op !== "addElements" && o.op !== "deleteElements") return;
    const w = wire.ops[i];
    const set = known.get(o.set);
    if (!w || (w.op !== "addElements" && w.op !== "deleteElements") || !set) return;
    w.elements = o.elements.flatMap((e) => encodeFast(set, e));
  });
  return wire;
}
