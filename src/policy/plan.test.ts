import { describe, expect, test } from "bun:test";
import { compile } from "./compile.ts";
import { asDump, plan } from "./plan.ts";
import type { PolicySet } from "./types.ts";

const OPTS = { interface: "plexd0", default: "deny" as const, logDenied: true };
const ps = (ports: number[]): PolicySet => ({
  policies: [{ id: "p", rules: ports.map((port) => ({ src: "n_a", dst: "n_b", protocol: "tcp", port, action: "allow" })) }],
  local: { nodeId: "n_b", meshIp: "10.100.0.2" },
  peers: [{ id: "n_a", meshIp: "10.100.0.1" }],
});

describe("plan", () => {
  test("missing table → full; equal → none; element change → elements only", () => {
    const a = compile(ps([80]), OPTS).ruleset;
    expect(plan(a, null).kind).toBe("full");
    expect(plan(a, asDump(a)).kind).toBe("none");
    const b = compile(ps([80, 443]), OPTS).ruleset;
    const p = plan(b, asDump(a));
    expect(p.kind).toBe("elements");
    expect(p.batch.ops.map((o) => o.op)).toEqual(["addElements", "addElements"]);
    const back = plan(a, asDump(b));
    expect(back.batch.ops.map((o) => o.op)).toEqual(["deleteElements", "deleteElements"]);
  });

  test("option change refills only the differing chains; foreign objects force a full replace", () => {
    const a = compile(ps([80]), OPTS).ruleset;
    const b = compile(ps([80]), { ...OPTS, logDenied: false }).ruleset;
    const p = plan(b, asDump(a));
    expect(p.kind).toBe("partial");
    expect(p.batch.ops.filter((o) => o.op === "flushChain").map((o) => (o as { chain: string }).chain)).toEqual(["mesh_in", "mesh_out", "mesh_fwd"]);
    const d = asDump(a);
    d.chains.push({ name: "intruder" });
    expect(plan(a, d).kind).toBe("full");
    const d2 = asDump(a);
    d2.rules = d2.rules.filter((r) => r.chain !== "mesh_in");
    expect(plan(a, d2).kind).toBe("partial");
  });
});
