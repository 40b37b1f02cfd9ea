/**
 * Desired ruleset vs the table read back → the smallest transaction that makes them equal.
 * Pure.
 *
 *  - none:     structurally equal, same elements.
 *  - elements: only set elements differ → delete/add elements; chains, rules, handles and
 *              counters stay (the normal policy change).
 *  - partial:  some chains' rules differ or chains/sets are missing → add what is missing,
 *              flush and refill only the differing chains, then the element diff.
 *  - full:     the table is missing or holds things we cannot repair in place (foreign chains
 *              or sets in our table, a base chain with another hook/priority, a set with another
 *              type) → delete and recreate the table in the same transaction.
 *
 * Every plan is one FwBatch, i.e. one nfnetlink transaction: all or nothing.
 */
import type { FwBatch, FwChain, FwDump, FwElement, FwOp, FwRule, FwSet } from "../kernel/firewall-api.ts";
import { comparableRule, normaliseRule, type RaisedRule } from "../kernel/nft.ts";
import type { DesiredSet, Ruleset } from "./types.ts";

export type PlanKind = "none" | "elements" | "partial" | "full";

export interface Plan {
  kind: PlanKind;
  /** Empty ops for kind none. */
  batch: FwBatch;
  /** Why it is not "none"/"elements", for logs and drift details. */
  reasons: string[];
  added: number;
  removed: number;
}

/** The whole table from scratch; add+delete+add makes it valid whether or not it exists. */
export function fullBatch(rs: Ruleset): FwBatch {
  const ops: FwOp[] = [{ op: "addTable" }, { op: "deleteTable" }, { op: "addTable" }];
  for (const c of rs.chains) ops.push({ op: "addChain", chain: c });
  for (const s of rs.sets) ops.push({ op: "addSet", set: setSpec(s) });
  for (const s of rs.sets) if (s.elements.length) ops.push({ op: "addElements", set: s.name, elements: s.elements });
  for (const r of rs.rules) ops.push({ op: "addRule", rule: r });
  return { family: rs.family, table: rs.table, ops };
}

function setSpec(s: FwSet): FwSet {
  const out: FwSet = { name: s.name, type: s.type };
  if (s.flags?.length) out.flags = s.flags;
  return out;
}

function sameChain(a: FwChain, b: FwChain): boolean {
  if (!a.hook !== !b.hook) return false;
  if (!a.hook) return true;
  return a.hook === b.hook && (a.priority ?? 0) === (b.priority ?? 0) && (a.policy ?? "accept") === (b.policy ?? "accept");
}

function sameSetSpec(a: FwSet, b: FwSet): boolean {
  const fa = [...(a.flags ?? [])].sort().join(",");
  const fb = [...(b.flags ?? [])].sort().join(",");
  return a.type.join(".") === b.type.join(".") && fa === fb;
}

/** The rule list of each chain, comparable (normalised, no handles/counter values). */
function rulesByChain(rules: readonly FwRule[], raised: boolean, family: "inet"): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const r of rules) {
    const c = raised ? comparableRule(r as RaisedRule) : normaliseRule(r, family);
    const l = out.get(r.chain) ?? [];
    l.push(JSON.stringify(c));
    out.set(r.chain, l);
  }
  return out;
}

/** Both sides use the read-back spelling, so a plain join is an exact key (no spaces occur). */
const elementKey = (e: FwElement): string => e.key.join(" ");

/** Element differences of one set (keys already canonical on both sides). */
export function elementDiff(desired: readonly FwElement[], actual: readonly FwElement[]): { add: FwElement[]; del: FwElement[] } {
  const want = new Map(desired.map((e) => [elementKey(e), e]));
  const have = new Map(actual.map((e) => [elementKey(e), e]));
  const add: FwElement[] = [];
  const del: FwElement[] = [];
  for (const [k, e] of want) if (!have.has(k)) add.push(e);
  for (const [k, e] of have) if (!want.has(k)) del.push(e);
  return { add, del };
}

/** Plans the transaction that turns `actual` into `desired`. */
export function plan(desired: Ruleset, actual: FwDump | null): Plan {
  const full = (reasons: string[]): Plan => ({
    kind: "full",
    batch: fullBatch(desired),
    reasons,
    added: desired.sets.reduce((n, s) => n + s.elements.length, 0),
    removed: actual?.sets.reduce((n, s) => n + s.elements.length, 0) ?? 0,
  });
  if (!actual || !actual.exists) return full(["table missing"]);

  const reasons: string[] = [];
  const wantChains = new Map(desired.chains.map((c) => [c.name, c]));
  const haveChains = new Map(actual.chains.map((c) => [c.name, c]));
  for (const c of actual.chains) {
    const w = wantChains.get(c.name);
    if (!w) return full([`unexpected chain ${c.name}`]);
    if (!sameChain(w, c)) return full([`chain ${c.name} has another hook, priority or policy`]);
  }
  const wantSets = new Map(desired.sets.map((s) => [s.name, s]));
  const haveSets = new Map(actual.sets.map((s) => [s.name, s]));
  for (const s of actual.sets) {
    const w = wantSets.get(s.name);
    if (!w) return full([`unexpected set ${s.name}`]);
    if (!sameSetSpec(w, s)) return full([`set ${s.name} has another type or flags`]);
  }

  const addChains = desired.chains.filter((c) => !haveChains.has(c.name));
  const addSets = desired.sets.filter((s) => !haveSets.has(s.name));
  for (const c of addChains) reasons.push(`chain ${c.name} missing`);
  for (const s of addSets) reasons.push(`set ${s.name} missing`);

  const want = rulesByChain(desired.rules, false, "inet");
  const have = rulesByChain(actual.rules, true, "inet");
  const refill: string[] = [];
  for (const c of desired.chains) {
    const w = want.get(c.name) ?? [];
    const h = have.get(c.name) ?? [];
    if (!haveChains.has(c.name)) {
      if (w.length) refill.push(c.name);
      continue;
    }
    if (w.length !== h.length || w.some((x, i) => x !== h[i])) {
      refill.push(c.name);
      reasons.push(`rules of chain ${c.name} differ`);
    }
  }

  const ops: FwOp[] = [];
  for (const c of addChains) ops.push({ op: "addChain", chain: c });
  for (const s of addSets) ops.push({ op: "addSet", set: setSpec(s) });
  for (const c of refill) if (haveChains.has(c)) ops.push({ op: "flushChain", chain: c });
  let added = 0;
  let removed = 0;
  const adds: FwOp[] = [];
  for (const s of desired.sets) {
    const cur = haveSets.get(s.name);
    const d = elementDiff(s.elements, cur?.elements ?? []);
    // Deletes first (all sets), then adds: a re-merged interval never overlaps its old self.
    if (d.del.length) ops.push({ op: "deleteElements", set: s.name, elements: d.del });
    if (d.add.length) adds.push({ op: "addElements", set: s.name, elements: d.add });
    added += d.add.length;
    removed += d.del.length;
  }
  ops.push(...adds);
  for (const c of refill) for (const r of desired.rules) if (r.chain === c) ops.push({ op: "addRule", rule: r });

  const kind: PlanKind = ops.length === 0 ? "none" : reasons.length === 0 ? "elements" : "partial";
  return { kind, batch: { family: desired.family, table: desired.table, ops }, reasons, added, removed };
}

/** The dump the kernel would return right after applying `rs` (used as a cache). */
export function asDump(rs: Ruleset): FwDump {
  return {
    family: rs.family,
    table: rs.table,
    exists: true,
    chains: rs.chains.map((c) => ({ ...c })),
    sets: rs.sets.map((s: DesiredSet) => ({ ...setSpec(s), elements: s.elements })),
    rules: rs.rules.map((r) => normaliseRule(r, "inet")),
  };
}
