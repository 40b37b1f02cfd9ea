import { describe, expect, test } from "bun:test";
import { parseRuleEnd, visiblePeers, type VisibilityPolicy } from "./visibility.ts";

const self = { id: "n_self", meshIp: "10.100.0.1" };
const a = { id: "n_a", meshIp: "10.100.0.2" };
const b = { id: "n_b", meshIp: "10.100.1.3" };
const c = { id: "n_c", meshIp: "10.100.2.4" };
const peers = [self, a, b, c];
const vis = (policies: VisibilityPolicy[], defaultAction: "allow" | "deny" = "deny") =>
  [...visiblePeers({ self, peers, policies, defaultAction }).visible].sort();
const pol = (...rules: Array<[string, string, string?]>): VisibilityPolicy => ({
  id: "pol_1",
  rules: rules.map(([src, dst, action]) => ({ src, dst, action: action ?? "allow" })),
});

describe("visiblePeers", () => {
  test("default allow shows every peer except self", () => {
    expect(vis([], "allow")).toEqual(["n_a", "n_b", "n_c"]);
    expect(vis([pol(["n_a", "n_b", "deny"])], "allow")).toEqual(["n_a", "n_b", "n_c"]);
  });
  test("default deny without policies shows none", () => {
    expect(vis([])).toEqual([]);
  });
  test("allow by node id links both directions", () => {
    expect(vis([pol(["n_self", "n_a"])])).toEqual(["n_a"]);
    expect(vis([pol(["n_b", "n_self"])])).toEqual(["n_b"]);
  });
  test("a rule between two other nodes does not concern us", () => {
    expect(vis([pol(["n_a", "n_b"])])).toEqual([]);
  });
  test("wildcards", () => {
    expect(vis([pol(["*", "n_self"])])).toEqual(["n_a", "n_b", "n_c"]);
    expect(vis([pol(["n_self", "*"])])).toEqual(["n_a", "n_b", "n_c"]);
    expect(vis([pol(["*", "n_a"])])).toEqual(["n_a"]); // * includes self as src
  });
  test("CIDRs and single addresses", () => {
    expect(vis([pol(["10.100.0.0/24", "10.100.1.0/24"])])).toEqual(["n_b"]);
    expect(vis([pol(["10.100.0.1", "10.100.2.4"])])).toEqual(["n_c"]);
    expect(vis([pol(["10.100.0.0/16", "10.100.0.0/16"])])).toEqual(["n_a", "n_b", "n_c"]);
  });
  test("unknown node id matches nothing", () => {
    expect(vis([pol(["n_self", "n_ghost"])])).toEqual([]);
  });
  test("deny rules alone show nothing and do not hide allowed peers", () => {
    expect(vis([pol(["n_self", "n_a", "deny"])])).toEqual([]);
    expect(vis([pol(["n_self", "n_a", "deny"], ["n_self", "n_a"])])).toEqual(["n_a"]);
  });
  test("out-of-range rule ends are skipped and reported; other rules still apply", () => {
    const r = visiblePeers({ self, peers, defaultAction: "deny", policies: [pol(["192.168.0.0/24", "*"], ["n_self", "n_c"])] });
    expect([...r.visible]).toEqual(["n_c"]);
    expect(r.skipped).toHaveLength(1);
    expect(r.skipped[0]!.reason).toContain("outside 10.100.0.0/16");
  });
  test("a self-only rule makes nothing visible", () => {
    expect(vis([pol(["n_self", "n_self"])])).toEqual([]);
  });
});

describe("parseRuleEnd", () => {
  test("kinds", () => {
    expect(parseRuleEnd("*").kind).toBe("any");
    expect(parseRuleEnd("n_x").kind).toBe("node");
    expect(parseRuleEnd("10.100.3.0/24").kind).toBe("cidr");
    expect(parseRuleEnd("10.0.0.0/8").kind).toBe("invalid");
    expect(parseRuleEnd("10.100.300.1").kind).toBe("invalid");
  });
});
