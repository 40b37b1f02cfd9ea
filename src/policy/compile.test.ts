import { describe, expect, test } from "bun:test";
import { normaliseElement } from "../kernel/nft.ts";
import { compile, setName } from "./compile.ts";
import type { CompileOptions, PolicyRuleInput, PolicySet } from "./types.ts";

const OPTS: CompileOptions = { interface: "plexd0", default: "deny", logDenied: true };
const B = { nodeId: "n_b", meshIp: "10.100.0.2" };
const PEERS = [
  { id: "n_a", meshIp: "10.100.0.1" },
  { id: "n_c", meshIp: "10.100.0.3" },
];
const set = (rules: PolicyRuleInput[], extra: Partial<PolicySet> = {}): PolicySet => ({ policies: [{ id: "p", rules }], local: B, peers: PEERS, ...extra });
const els = (c: ReturnType<typeof compile>, name: string) => c.ruleset.sets.find((s) => s.name === name)?.elements.map((e) => e.key) ?? [];
const allow = (src: string, dst: string, protocol = "", port = 0): PolicyRuleInput => ({ src, dst, protocol, port, action: "allow" });

describe("compile", () => {
  test("node ids resolve to mesh IPs; inbound uses the source, outbound the destination", () => {
    const c = compile(set([allow("n_a", "n_b", "tcp", 8080), allow("n_b", "n_c", "udp", 53)]), OPTS);
    expect(els(c, "allow_in4_svc")).toEqual([["10.100.0.1", 6, 8080]]);
    expect(els(c, "allow_out4_svc")).toEqual([["10.100.0.3", 17, 53]]);
    expect(els(c, "allow_fwd4_svc")).toEqual([
      ["10.100.0.1", "10.100.0.2", 6, 8080],
      ["10.100.0.2", "10.100.0.3", 17, 53],
    ]);
    expect(c.rules.map((r) => r.status)).toEqual(["active", "active"]);
  });

  test("`*` is the mesh range and includes this node; CIDRs containing us count as us", () => {
    const c = compile(set([allow("*", "10.100.0.0/24", "tcp", 22)]), OPTS);
    expect(els(c, "allow_in4_svc")).toEqual([["10.100.0.0/16", 6, 22]]);
    expect(els(c, "allow_out4_svc")).toEqual([["10.100.0.0/24", 6, 22]]);
    const notUs = compile(set([allow("n_a", "10.100.9.0/24")]), OPTS);
    expect(els(notUs, "allow_in4")).toEqual([]);
    expect(notUs.rules[0]?.directions).toEqual(["fwd"]);
    expect(compile(set([allow("n_a", "n_c")]), { ...OPTS, forward: false }).rules[0]?.status).toBe("not_local");
  });

  test("protocols and ports: any → address set; tcp/udp without port and icmp → full port range", () => {
    const c = compile(set([allow("n_a", "n_b"), allow("n_c", "n_b", "icmp"), allow("n_c", "n_b", "udp")]), OPTS);
    expect(els(c, "allow_in4")).toEqual([["10.100.0.1"]]);
    expect(els(c, "allow_in4_svc")).toEqual([
      ["10.100.0.3", 1, "0-65535"],
      ["10.100.0.3", 17, "0-65535"],
    ]);
    const bad = compile(set([allow("n_a", "n_b", "", 80), allow("n_a", "n_b", "icmp", 1), allow("n_a", "n_b", "sctp")]), OPTS);
    expect(bad.rules.map((r) => r.status)).toEqual(["skipped", "skipped", "skipped"]);
    expect(bad.notes.every((n) => n.level === "warn")).toBe(true);
  });

  test("deny rules are rendered before allow rules in every chain", () => {
    const c = compile(set([{ src: "n_a", dst: "n_b", action: "deny" }, allow("*", "n_b")]), OPTS);
    expect(els(c, "deny_in4")).toEqual([["10.100.0.1"]]);
    for (const chain of ["mesh_in", "mesh_out", "mesh_fwd"]) {
      const sets = c.ruleset.rules.filter((r) => r.chain === chain).flatMap((r) => r.match.flatMap((m) => (m.match === "set" ? [m.set] : [])));
      const firstAllow = sets.findIndex((s) => s.startsWith("allow_"));
      const lastDeny = sets.map((s) => s.startsWith("deny_")).lastIndexOf(true);
      expect(lastDeny).toBeLessThan(firstAllow);
    }
  });

  test("an unknown node id matches nothing (never anyone)", () => {
    const c = compile(set([allow("n_ghost", "n_b"), allow("n_a", "n_ghost")]), OPTS);
    for (const s of c.ruleset.sets) expect(s.elements).toEqual([]);
    expect(c.rules.map((r) => r.status)).toEqual(["no_match", "no_match"]);
    expect(c.notes.map((n) => n.level)).toEqual(["info", "info"]);
  });

  test("anything outside 10.100.0.0/16 is skipped with a warning; the rest still applies", () => {
    const c = compile(set([allow("192.168.1.0/24", "n_b"), allow("10.0.0.0/8", "n_b"), allow("n_a", "n_b")]), OPTS);
    expect(c.rules.map((r) => r.status)).toEqual(["skipped", "skipped", "active"]);
    expect(c.notes.filter((n) => n.level === "warn")).toHaveLength(2);
    expect(els(c, "allow_in4")).toEqual([["10.100.0.1"]]);
  });

  test("overlapping and adjacent intervals are merged into disjoint elements", () => {
    const c = compile(
      set([allow("10.100.1.0/24", "n_b"), allow("10.100.1.128/25", "n_b"), allow("10.100.2.0/24", "n_b"), allow("10.100.1.5", "n_b", "tcp", 80), allow("10.100.0.0/16", "n_b", "tcp", 80)]),
      OPTS,
    );
    expect(els(c, "allow_in4")).toEqual([["10.100.1.0-10.100.2.255"]]);
    expect(els(c, "allow_in4_svc")).toEqual([["10.100.0.0/16", 6, 80]]);
    // Canonical spelling = what the kernel reads back.
    const s = c.ruleset.sets.find((x) => x.name === "allow_in4")!;
    for (const e of s.elements) expect(normaliseElement(s, e)).toEqual(e);
  });

  test("structure: base chains, jumps, ct rules first, IPv6 lookups, default verdicts, log_denied", () => {
    const c = compile(set([]), OPTS);
    expect(c.ruleset.chains.map((x) => [x.name, x.hook ?? null, x.priority ?? null, x.policy ?? null])).toEqual([
      ["input", "input", 0, "accept"],
      ["output", "output", 0, "accept"],
      ["forward", "forward", 0, "accept"],
      ["mesh_in", null, null, null],
      ["mesh_out", null, null, null],
      ["mesh_fwd", null, null, null],
    ]);
    const inRules = c.ruleset.rules.filter((r) => r.chain === "mesh_in");
    expect(inRules[0]?.match).toEqual([{ match: "ct", states: ["established", "related"] }]);
    expect(inRules[1]?.match).toEqual([{ match: "ct", states: ["invalid"] }]);
    const lookups = inRules.flatMap((r) => r.match.flatMap((m) => (m.match === "set" ? [m.fields.join(" . ")] : [])));
    expect(lookups).toContain("ip6 saddr . meta l4proto . th dport");
    expect(lookups).toContain("ip6 saddr");
    expect(c.ruleset.sets.find((s) => s.name === setName("allow", "in", 6, true))?.type).toEqual(["ipv6_addr", "inet_proto", "inet_service"]);
    const last = inRules[inRules.length - 1]!;
    expect(last.stmt).toEqual([{ stmt: "log", prefix: "plexd-deny ", level: "debug" }, { stmt: "counter" }, { stmt: "verdict", verdict: "drop" }]);
    const allowAll = compile(set([]), { ...OPTS, default: "allow", logDenied: false });
    const l2 = allowAll.ruleset.rules.filter((r) => r.chain === "mesh_out").at(-1)!;
    expect(l2.stmt).toEqual([{ stmt: "counter" }, { stmt: "verdict", verdict: "accept" }]);
    expect(allowAll.ruleset.rules.some((r) => r.stmt.some((s) => s.stmt === "log"))).toBe(false);
    // Rules do not depend on the policies: a policy change never changes the structure.
    const withRules = compile(set([allow("n_a", "n_b", "tcp", 1)]), OPTS);
    expect(withRules.ruleset.rules).toEqual(c.ruleset.rules);
  });

  test("IPv6 mesh range (when configured) fills the v6 sets", () => {
    const c = compile(
      { policies: [{ id: "p", rules: [allow("fd00:100::/64", "n_b")] }], local: { nodeId: "n_b", meshIp: "fd00:100::2" }, peers: [] },
      { ...OPTS, meshRanges: ["10.100.0.0/16", "fd00:100::/48"] },
    );
    expect(els(c, "allow_in6")).toEqual([["fd00:100::/64"]]);
  });
});
