/**
 * The fast path for the common policy change "rules appended": compiles only the new rules
 * and, when their elements neither overlap nor touch any existing element of their sets,
 * appends them — no recompilation of the other rules, no diff over every element. Anything
 * else (removed or edited rules, new peers, other options) returns null and the caller takes
 * the full path (compile + plan). Pure.
 */
import type { FwElement } from "../kernel/firewall-api.ts";
import { compile, elementsOf } from "./compile.ts";
import type { Box } from "./ranges.ts";
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

/** First-field bounds as doubles: a cheap prefilter before the exact bigint comparison. */
const bounds = new WeakMap<readonly Box[], { lo: Float64Array; hi: Float64Array }>();
function firstBounds(boxes: readonly Box[]): { lo: Float64Array; hi: Float64Array } {
  let b = bounds.get(boxes);
  if (!b) {
    b = { lo: new Float64Array(boxes.length), hi: new Float64Array(boxes.length) };
    for (let i = 0; i < boxes.length; i++) {
      const r = boxes[i]![0] as readonly [bigint, bigint];
      // Number() rounds IPv6 values; widen by one unit either way so the filter stays conservative.
      b.lo[i] = Number(r[0]) * (1 - 1e-15) - 2;
      b.hi[i] = Number(r[1]) * (1 + 1e-15) + 2;
    }
    bounds.set(boxes, b);
  }
  return b;
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
    const fb = firstBounds(have);
    for (const b of nb) {
      const r = b[0] as readonly [bigint, bigint];
      const lo = Number(r[0]);
      const hi = Number(r[1]);
      for (let i = 0; i < have.length; i++) {
        if ((fb.lo[i] as number) > hi || lo > (fb.hi[i] as number)) continue;
        if (conflicts(have[i] as Box, b)) return null;
      }
    }
    boxes.set(name, [...have, ...nb]);
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
