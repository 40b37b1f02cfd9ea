/**
 * The fast path for the common policy change "rules appended": compiles only the new rules
 * and, when their elements neither overlap nor touch any existing element of their sets,
 * appends them — no recompilation of the other rules, no diff over every element. Anything
 * else (removed or edited rules, new peers, other options) returns null and the caller takes
 * the full path (compile + plan). Pure.
 */
import type { FwElement } from "../kernel/firewall-api.ts";
import { compile, elementsOf } from "./compile.ts";
import type { Box, Range } from "./ranges.ts";
import type { CompileOptions, Compiled, PolicyInput, PolicyRuleInput, PolicySet } from "./types.ts";

/** At most this many appended rules take the fast path. */
export const MAX_INCREMENTAL_RULES = 256;

function sameRule(a: PolicyRuleInput, b: PolicyRuleInput): boolean {
  return (
    a === b ||
    (a.src === b.src && a.dst === b.dst && (a.port ?? 0) === (b.port ?? 0) && (a.protocol ?? "") === (b.protocol ?? "") && a.action === b.action)
  );
}

/**
 * Would adding b next to a break the set? Multi-field (pipapo) sets only reject overlaps;
 * single-field interval (rbtree) sets also need adjacent ranges merged.
 */
function conflicts(a: Box, b: Box): boolean {
  if (a.length === 1) {
    const x = a[0] as readonly [bigint, bigint];
    const y = b[0] as readonly [bigint, bigint];
    return !(x[0] > y[1] + 1n || y[0] > x[1] + 1n);
  }
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as readonly [bigint, bigint];
    const y = b[i] as readonly [bigint, bigint];
    if (x[0] > y[1] || y[0] > x[1]) return false;
  }
  return true;
}

/**
 * First-field bounds of a set's boxes as doubles, sorted by lower bound, with a running
 * maximum of the upper bounds: an overlap query is a binary search plus a short backward scan
 * instead of a pass over every element. Doubles are a conservative prefilter (Number() rounds
 * IPv6 values, so every bound is widened by a relative 1e-15 and 2 units either way, which
 * also catches adjacency); the exact bigint test (`conflicts`) decides.
 *
 * Indexes persist between applies: an appended-rules increment reuses its predecessor's sorted
 * part and only lists the appended boxes separately (`extra`, scanned linearly); after
 * MAX_EXTRA appended boxes the next query re-sorts.
 */
interface FirstIndex {
  /** Boxes in ascending order of `lo`. */
  sorted: readonly Box[];
  lo: Float64Array;
  hi: Float64Array;
  /** maxHi[i] = max(hi[0..i]). */
  maxHi: Float64Array;
  /** Boxes appended since `sorted` was built, with their widened bounds. */
  extra: readonly Box[];
  extraLo: readonly number[];
  extraHi: readonly number[];
}

const MAX_EXTRA = 1024;
const indexes = new WeakMap<readonly Box[], FirstIndex>();

const wideLo = (v: bigint): number => Number(v) * (1 - 1e-15) - 2;
const wideHi = (v: bigint): number => Number(v) * (1 + 1e-15) + 2;

function buildIndex(boxes: readonly Box[]): FirstIndex {
  const n = boxes.length;
  let lo = new Float64Array(n);
  let hi = new Float64Array(n);
  let sortedOk = true;
  for (let i = 0; i < n; i++) {
    const r = boxes[i]![0] as Range;
    lo[i] = wideLo(r[0]);
    hi[i] = wideHi(r[1]);
    if (i > 0 && (lo[i] as number) < (lo[i - 1] as number)) sortedOk = false;
  }
  let sorted: readonly Box[] = boxes;
  // A full compile's boxes are already in first-field order; only increments need sorting.
  if (!sortedOk) {
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (lo[a] as number) - (lo[b] as number));
    sorted = order.map((i) => boxes[i] as Box);
    lo = Float64Array.from(order, (i) => lo[i] as number);
    hi = Float64Array.from(order, (i) => hi[i] as number);
  }
  const maxHi = new Float64Array(n);
  let m = -Infinity;
  for (let i = 0; i < n; i++) {
    if ((hi[i] as number) > m) m = hi[i] as number;
    maxHi[i] = m;
  }
  return { sorted, lo, hi, maxHi, extra: [], extraLo: [], extraHi: [] };
}

function indexOf(boxes: readonly Box[]): FirstIndex {
  let x = indexes.get(boxes);
  if (!x) {
    x = buildIndex(boxes);
    indexes.set(boxes, x);
  }
  return x;
}

/** True when `b` conflicts with any indexed box. */
function conflictsAny(x: FirstIndex, b: Box): boolean {
  const r = b[0] as Range;
  const qlo = wideLo(r[0]);
  const qhi = wideHi(r[1]);
  // First index whose lo exceeds qhi: everything from there on starts after b.
  let a = 0;
  let z = x.lo.length;
  while (a < z) {
    const mid = (a + z) >>> 1;
    if ((x.lo[mid] as number) > qhi) z = mid;
    else a = mid + 1;
  }
  for (let i = a - 1; i >= 0 && (x.maxHi[i] as number) >= qlo; i--)
    if ((x.hi[i] as number) >= qlo && conflicts(x.sorted[i] as Box, b)) return true;
  for (let i = 0; i < x.extra.length; i++)
    if ((x.extraLo[i] as number) <= qhi && (x.extraHi[i] as number) >= qlo && conflicts(x.extra[i] as Box, b)) return true;
  return false;
}

/** Registers the index of `merged` = `have` + `added` (when cheap), sharing `have`'s sorted part. */
function extendIndex(x: FirstIndex, merged: readonly Box[], added: readonly Box[]): void {
  if (x.extra.length + added.length > MAX_EXTRA) return; // rebuilt (and re-sorted) on next use
  indexes.set(merged, {
    ...x,
    extra: [...x.extra, ...added],
    extraLo: [...x.extraLo, ...added.map((b) => wideLo((b[0] as Range)[0]))],
    extraHi: [...x.extraHi, ...added.map((b) => wideHi((b[0] as Range)[1]))],
  });
}

/** A frozen copy of the parts of a PolicySet the fast path compares (callers may reuse arrays). */
export function snapshot(p: PolicySet): PolicySet {
  return {
    policies: p.policies.map((x) => ({ id: x.id, rules: [...x.rules] })),
    local: { ...p.local },
    peers: p.peers.map((x) => ({ id: x.id, meshIp: x.meshIp })),
  };
}

export interface Increment {
  compiled: Compiled;
  /** Elements to add, per set. */
  adds: Map<string, FwElement[]>;
}

/** The appended-rules increment from `prev` (compiled from `prevSet`) to `next`, or null. */
export function incremental(prevSet: PolicySet, prev: Compiled, next: PolicySet, opts: CompileOptions): Increment | null {
  if (prevSet.local.nodeId !== next.local.nodeId || prevSet.local.meshIp !== next.local.meshIp) return null;
  if (prevSet.peers.length !== next.peers.length) return null;
  for (let i = 0; i < next.peers.length; i++) {
    const a = prevSet.peers[i]!;
    const b = next.peers[i]!;
    if (a.id !== b.id || a.meshIp !== b.meshIp) return null;
  }
  if (prevSet.policies.length !== next.policies.length) return null;
  const added: PolicyInput[] = [];
  const offsets: number[] = [];
  let count = 0;
  for (let i = 0; i < next.policies.length; i++) {
    const a = prevSet.policies[i]!;
    const b = next.policies[i]!;
    if (a.id !== b.id || b.rules.length < a.rules.length) return null;
    for (let j = 0; j < a.rules.length; j++) if (!sameRule(a.rules[j]!, b.rules[j]!)) return null;
    if (b.rules.length > a.rules.length) {
      added.push({ id: b.id, rules: b.rules.slice(a.rules.length) });
      offsets.push(a.rules.length);
      count += b.rules.length - a.rules.length;
    }
  }
  if (count === 0) return { compiled: prev, adds: new Map() };
  if (count > MAX_INCREMENTAL_RULES) return null;
  const small = compile({ policies: added, local: next.local, peers: next.peers }, opts);
  const boxes = new Map(prev.boxes);
  const adds = new Map<string, FwElement[]>();
  for (const [name, nb] of small.boxes) {
    const have = prev.boxes.get(name) ?? [];
    const x = indexOf(have);
    for (const b of nb) if (conflictsAny(x, b)) return null;
    const merged = [...have, ...nb];
    extendIndex(x, merged, nb);
    boxes.set(name, merged);
  }
  const sets = prev.ruleset.sets.map((s) => {
    const nb = small.boxes.get(s.name);
    if (!nb) return s;
    const els = elementsOf(s.type, nb);
    adds.set(s.name, els);
    return { ...s, elements: [...s.elements, ...els] };
  });
  const fix = <T extends { policy: string; index: number }>(x: T): T => {
    const k = added.findIndex((p) => p.id === x.policy);
    return { ...x, index: x.index + (offsets[k] ?? 0) };
  };
  return {
    compiled: {
      ruleset: { ...prev.ruleset, sets },
      rules: [...prev.rules, ...small.rules.map(fix)],
      notes: [...prev.notes, ...small.notes.map(fix)],
      boxes,
    },
    adds,
  };
}
