import { describe, expect, test } from "bun:test";
import { compile } from "./compile.ts";
import { incremental, snapshot } from "./incremental.ts";
import { disjointBoxes, type Box } from "./ranges.ts";
import type { Compiled, PolicyRuleInput, PolicySet } from "./types.ts";

const OPTS = { interface: "plexd0", default: "deny" as const, logDenied: false, meshRanges: ["10.100.0.0/16", "fd00::/64"] };
const ps = (rules: PolicyRuleInput[]): PolicySet => ({
  policies: [{ id: "p", rules }],
  local: { nodeId: "n_self", meshIp: "10.100.0.1" },
  peers: [{ id: "n0", meshIp: "10.100.0.9" }, { id: "n6", meshIp: "fd00::3" }],
});
const allow = (src: string, port: number, protocol = "tcp"): PolicyRuleInput => ({ src, dst: "n_self", port, protocol, action: "allow" });

/** Two boxes a set cannot hold side by side (overlap; single-field sets: also adjacency). */
function clash(a: Box, b: Box): boolean {
  const adj = a.length === 1 ? 1n : 0n;
  return a.every((r, i) => r[0] <= (b[i] as Box[number])[1] + adj && (b[i] as Box[number])[0] <= r[1] + adj);
}

/** The increment holds exactly the union a full compile holds, as disjoint elements. */
function expectEquivalent(inc: Compiled, full: Compiled): void {
  for (const s of full.ruleset.sets) {
    const have = inc.boxes.get(s.name) ?? [];
    expect(disjointBoxes(have)).toEqual(full.boxes.get(s.name) ?? []);
    for (let i = 0; i < have.length; i++) for (let j = i + 1; j < have.length; j++) expect(clash(have[i] as Box, have[j] as Box)).toBe(false);
    expect(inc.ruleset.sets.find((x) => x.name === s.name)!.elements.length).toBe(have.length);
  }
  expect(inc.rules).toEqual(full.rules);
}

describe("incremental", () => {
  test("appended rules that touch nothing become element additions equal to a full compile", () => {
    let rules = [allow("10.100.1.1", 80), allow("10.100.1.0/30", 0, ""), allow("n6", 443)];
    let set = snapshot(ps(rules));
    let c = compile(set, OPTS);
    for (let k = 0; k < 40; k++) {
      rules = [...rules, allow(`10.100.${2 + (k % 7)}.${3 * k + 1}`, 1000 + k), allow(`fd00::${(100 + k).toString(16)}`, 22, "udp")];
      const next = snapshot(ps(rules));
      const inc = incremental(set, c, next, OPTS);
      expect(inc).not.toBeNull();
      expectEquivalent(inc!.compiled, compile(next, OPTS));
      set = next;
      c = inc!.compiled;
    }
  });

  test("an appended rule that overlaps or (single field) touches an existing element falls back", () => {
    const base = [allow("10.100.1.0/30", 0, ""), allow("10.100.5.5", 80)];
    const set = snapshot(ps(base));
    const c = compile(set, OPTS);
    // 10.100.1.4 is adjacent to 10.100.1.0/30 in the address-only set: the kernel wants them merged.
    expect(incremental(set, c, snapshot(ps([...base, allow("10.100.1.4", 0, "")])), OPTS)).toBeNull();
    // Overlap in the service set.
    expect(incremental(set, c, snapshot(ps([...base, allow("10.100.5.0/24", 80)])), OPTS)).toBeNull();
    // Same address, another port: no overlap in the concatenated set.
    expect(incremental(set, c, snapshot(ps([...base, allow("10.100.5.5", 81)])), OPTS)).not.toBeNull();
    // Edited (not appended) rule: full path.
    expect(incremental(set, c, snapshot(ps([base[0]!, allow("10.100.5.5", 82)])), OPTS)).toBeNull();
  });

  test("more than a thousand successive appends keep detecting conflicts (index re-sorted on the way)", () => {
    let rules: PolicyRuleInput[] = [allow("10.100.200.0/24", 0, "")];
    let set = snapshot(ps(rules));
    let c = compile(set, OPTS);
    for (let k = 0; k < 1100; k++) {
      // Descending addresses: every append lands before the previous ones.
      rules = [...rules, allow(`10.100.${100 - Math.floor(k / 200)}.${250 - (k % 200)}`, 7000 + (k % 3))];
      const next = snapshot(ps(rules));
      const inc = incremental(set, c, next, OPTS);
      expect(inc).not.toBeNull();
      set = next;
      c = inc!.compiled;
      // Now and then: the element appended just before (not yet in the sorted part) is seen.
      if (k % 50 === 1) expect(incremental(set, c, snapshot(ps([...rules, { ...rules.at(-2)! }])), OPTS)).toBeNull();
    }
    expectEquivalent(c, compile(set, OPTS));
    expect(incremental(set, c, snapshot(ps([...rules, { ...rules.at(-1)! }])), OPTS)).toBeNull();
    // A rule overlapping an element appended long ago is still caught.
    expect(incremental(set, c, snapshot(ps([...rules, allow("10.100.100.250", 7000)])), OPTS)).toBeNull();
    expect(incremental(set, c, snapshot(ps([...rules, allow("10.100.100.0/24", 7001)])), OPTS)).toBeNull();
    expect(incremental(set, c, snapshot(ps([...rules, allow("10.100.200.9", 0, "")])), OPTS)).toBeNull();
  });
});
