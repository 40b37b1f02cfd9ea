/**
 * Closed ranges and disjoint boxes for nftables interval sets. Pure.
 *
 * The kernel rejects overlapping elements in an interval set (rbtree: EEXIST; pipapo, the
 * concatenated-interval backend: ENOTEMPTY/EEXIST), so every set's elements are first turned
 * into a canonical set of DISJOINT boxes: one range per key field, adjacent pieces merged.
 * The same input always yields the same boxes, so a policy change becomes a small element
 * diff instead of a reshuffle.
 */
import { parseRange } from "../kernel/nft-values.ts";
import { formatRange } from "../kernel/nft-values.ts";
import type { ElemValue } from "../kernel/firewall-api.ts";

/** A closed range [lo, hi]. */
export type Range = readonly [bigint, bigint];
/** One range per key field. */
export type Box = readonly Range[];
/** Value kinds of our set key fields. */
export type Kind = "v4" | "v6" | "u8" | "u16";

const cmp = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);

/** Union of ranges as sorted, non-overlapping, non-adjacent ranges. */
export function mergeRanges(rs: readonly Range[]): Range[] {
  const sorted = [...rs].sort((a, b) => cmp(a[0], b[0]) || cmp(a[1], b[1]));
  const out: Array<[bigint, bigint]> = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1n) {
      if (hi > last[1]) last[1] = hi;
    } else out.push([lo, hi]);
  }
  return out;
}

const tailKeys = new WeakMap<Box, string>();
function tailKey(b: Box): string {
  let k = tailKeys.get(b);
  if (k === undefined) {
    k = boxKey([b.slice(1)]);
    tailKeys.set(b, k);
  }
  return k;
}

function boxKey(boxes: readonly Box[]): string {
  return boxes.map((b) => b.map((r) => `${r[0]}-${r[1]}`).join(",")).join(";");
}

/**
 * The union of `boxes` (all of the same dimension) as disjoint boxes. Sweeps the first axis
 * over its elementary intervals, decomposes the boxes covering each one on the remaining axes,
 * and merges neighbouring intervals whose decompositions are equal. Canonical: the result
 * depends only on the union, not on the input order.
 */
export function disjointBoxes(boxes: readonly Box[]): Box[] {
  const first = boxes[0];
  if (!first) return [];
  if (first.length === 1) return mergeRanges(boxes.map((b) => b[0] as Range)).map((r) => [r]);
  const starts = [...boxes].sort((a, b) => cmp((a[0] as Range)[0], (b[0] as Range)[0]));
  const ends = [...boxes].sort((a, b) => cmp((a[0] as Range)[1], (b[0] as Range)[1]));
  const points = [...new Set([...boxes.map((b) => (b[0] as Range)[0]), ...boxes.map((b) => (b[0] as Range)[1] + 1n)])].sort(cmp);
  const active = new Set<Box>();
  const out: Box[] = [];
  let run: { lo: bigint; hi: bigint; key: string; sub: Box[] } | null = null;
  const flush = () => {
    if (run) for (const s of run.sub) out.push([[run.lo, run.hi], ...s]);
    run = null;
  };
  let si = 0;
  let ei = 0;
  for (let i = 0; i < points.length; i++) {
    const p = points[i] as bigint;
    while (ei < ends.length && (ends[ei]![0] as Range)[1] + 1n === p) active.delete(ends[ei++]!);
    while (si < starts.length && (starts[si]![0] as Range)[0] === p) active.add(starts[si++]!);
    const next = points[i + 1];
    if (active.size === 0 || next === undefined) {
      flush();
      continue;
    }
    let sub: Box[];
    let key: string;
    if (active.size === 1) {
      // One box is disjoint by itself: no recursion (the common case: distinct peers).
      const only = active.values().next().value as Box;
      sub = [only.slice(1)];
      key = tailKey(only);
    } else {
      sub = disjointBoxes([...active].map((b) => b.slice(1)));
      key = boxKey(sub);
    }
    if (run && run.key === key && run.hi + 1n === p) run.hi = next - 1n;
    else {
      flush();
      run = { lo: p, hi: next - 1n, key, sub };
    }
  }
  flush();
  return out;
}

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/;

/** Fast path for "a.b.c.d" and "a.b.c.d/n"; undefined when the text is anything else. */
function parseV4(s: string): Range | undefined {
  const m = V4.exec(s);
  if (!m) return undefined;
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    const o = Number(m[i]);
    if (o > 255) return undefined;
    v = v * 256 + o;
  }
  const plen = m[5] === undefined ? 32 : Number(m[5]);
  if (plen > 32) return undefined;
  const size = 2 ** (32 - plen);
  const lo = v - (v % size);
  return [BigInt(lo), BigInt(lo + size - 1)];
}

/** Parses an address, CIDR or range of the given kind (throws NftValueError). */
export function parseKind(kind: Kind, v: ElemValue): Range {
  if (kind === "v4" && typeof v === "string") {
    const r = parseV4(v);
    if (r) return r;
  } else if ((kind === "u8" || kind === "u16") && typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= (kind === "u8" ? 255 : 65535)) {
    const b = BigInt(v);
    return [b, b];
  }
  return parseRange(kind, v);
}

function v4Text(n: number): string {
  return `${Math.floor(n / 16777216)}.${Math.floor(n / 65536) % 256}.${Math.floor(n / 256) % 256}.${n % 256}`;
}

/** The spelling the kernel read-back uses (nft-values formatRange): single, CIDR or lo-hi. */
export function formatKind(kind: Kind, r: Range): ElemValue {
  if (kind === "v4") {
    const lo = Number(r[0]);
    const hi = Number(r[1]);
    if (lo === hi) return v4Text(lo);
    const size = hi - lo + 1;
    const bits = Math.log2(size);
    if (Number.isInteger(bits) && lo % size === 0) return `${v4Text(lo)}/${32 - bits}`;
    return `${v4Text(lo)}-${v4Text(hi)}`;
  }
  if (kind === "u8" || kind === "u16") return r[0] === r[1] ? Number(r[0]) : `${r[0]}-${r[1]}`;
  return formatRange(kind, r[0], r[1]);
}

/** True when `inner` lies completely inside `outer`. */
export function within(inner: Range, outer: Range): boolean {
  return inner[0] >= outer[0] && inner[1] <= outer[1];
}

/** True when the point lies inside the range. */
export function contains(r: Range, p: bigint): boolean {
  return p >= r[0] && p <= r[1];
}
