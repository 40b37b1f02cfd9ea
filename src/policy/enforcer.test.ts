import { describe, expect, test } from "bun:test";
import { Enforcer } from "./enforcer.ts";
import { FakeFirewall } from "./fake-target.ts";
import type { FirewalldControl } from "./firewalld.ts";
import type { PolicySet } from "./types.ts";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const OPTS = { interface: "plexd0", default: "deny" as const, logDenied: true, debounceMs: 5 };
const ps = (rules: Array<[string, number]>, ids = ["p"]): PolicySet => ({
  policies: ids.map((id) => ({ id, rules: rules.map(([src, port]) => ({ src, dst: "n_b", protocol: "tcp", port, action: "allow" })) })),
  local: { nodeId: "n_b", meshIp: "10.100.0.2" },
  peers: [{ id: "n_a", meshIp: "10.100.0.1" }],
});
const mk = (fw = new FakeFirewall(), firewalld: FirewalldControl | null = null) =>
  new Enforcer({ target: fw, log: quiet, options: OPTS, firewalld, isOwnThread: (pid) => pid === process.pid });

describe("Enforcer", () => {
  test("first apply creates the table; appending a rule adds elements only; policy ids reported", async () => {
    const fw = new FakeFirewall();
    const e = mk(fw);
    expect(await e.apply(ps([["n_a", 80]]))).toEqual([]);
    expect(fw.state.exists).toBe(true);
    const handles = fw.state.rules.map((r) => r.handle);
    expect(await e.apply(ps([["n_a", 80], ["10.100.7.7", 22]], ["p", "q"]))).toEqual([{ type: "policy_added", detail: "policy q" }]);
    expect(fw.state.rules.map((r) => r.handle)).toEqual(handles);
    expect(fw.batches.at(-1)!.ops.every((o) => o.op === "addElements" || o.op === "deleteElements")).toBe(true);
    // Fast path (pure append) also takes only element ops.
    await e.apply(ps([["n_a", 80], ["10.100.7.7", 22], ["10.100.9.9", 443]], ["p", "q"]));
    expect(fw.batches.at(-1)!.ops.map((o) => o.op)).toEqual(["addElements", "addElements"]);
    expect(await e.apply(ps([["n_a", 80]]))).toEqual([{ type: "policy_removed", detail: "policy q" }]);
    expect((await e.status()).synced).toBe(true);
  });

  test("reconcile repairs drift and reports firewall_restored once", async () => {
    const fw = new FakeFirewall();
    const e = mk(fw);
    await e.apply(ps([["n_a", 80]]));
    expect(await e.reconcile()).toEqual([]);
    fw.external((s) => s.sets.find((x) => x.name === "allow_in4")!.elements.push({ key: ["10.100.0.3"] }));
    expect(await e.reconcile()).toEqual([{ type: "firewall_restored", detail: "table inet plexd differed from desired ruleset" }]);
    expect(fw.state.sets.find((x) => x.name === "allow_in4")!.elements).toEqual([]);
    expect(await e.reconcile()).toEqual([]);
  });

  test("apply after outside tampering reads the kernel (generation changed) and reports it", async () => {
    const fw = new FakeFirewall();
    const e = mk(fw);
    await e.apply(ps([["n_a", 80]]));
    fw.external((s) => (s.rules = s.rules.filter((r) => r.chain !== "mesh_in")));
    const c = await e.apply(ps([["n_a", 80], ["n_a", 81]]));
    expect(c.map((x) => x.type)).toEqual(["firewall_restored"]);
    expect(fw.state.rules.filter((r) => r.chain === "mesh_in").length).toBeGreaterThan(5);
  });

  test("steady state: an append is one conditional commit, no generation read, no dump", async () => {
    const fw = new FakeFirewall();
    const e = mk(fw);
    await e.apply(ps([["n_a", 80]]));
    const before = { ...fw.calls };
    await e.apply(ps([["n_a", 80], ["n_a", 81]]));
    await e.apply(ps([["n_a", 80], ["n_a", 81], ["n_a", 82]]));
    await e.apply(ps([["n_a", 82]])); // removal: full compile + diff against memory, still one commit
    expect(fw.calls).toEqual({ applyAt: before.applyAt + 3, dump: before.dump, generation: before.generation });
    expect(fw.state.sets.find((s) => s.name === "allow_in4_svc")!.elements).toEqual([{ key: ["10.100.0.1", 6, 82] }]);
    // Nothing changed: the cache is checked with one generation read instead of a commit.
    expect(await e.apply(ps([["n_a", 82]]))).toEqual([]);
    expect(fw.calls.generation).toBe(before.generation + 1);
  });

  test("someone else commits right after ours: the generation is not trusted, the next apply reads the kernel", async () => {
    const fw = new FakeFirewall();
    const e = mk(fw);
    await e.apply(ps([["n_a", 80]]));
    const apply = fw.apply.bind(fw);
    fw.apply = async (b, s) => {
      await apply(b, s);
      fw.gen++; // an unrelated table changed in the same instant
    };
    await e.apply(ps([["n_a", 80], ["n_a", 81]]));
    fw.apply = apply;
    const dumps = fw.calls.dump;
    expect(await e.apply(ps([["n_a", 80], ["n_a", 81], ["n_a", 82]]))).toEqual([]);
    expect(fw.calls.dump).toBe(dumps + 1);
  });

  test("targets without conditional commits: generation read around apply; tampering still detected", async () => {
    const fw = new FakeFirewall();
    Object.defineProperty(fw, "applyAt", { value: undefined }); // a target that cannot commit conditionally
    const e = mk(fw);
    await e.apply(ps([["n_a", 80]]));
    await e.apply(ps([["n_a", 80], ["n_a", 81]]));
    expect(fw.batches.at(-1)!.ops.map((o) => o.op)).toEqual(["addElements", "addElements"]);
    fw.external((s) => (s.rules = s.rules.filter((r) => r.chain !== "mesh_in")));
    const c = await e.apply(ps([["n_a", 80], ["n_a", 81], ["n_a", 82]]));
    expect(c.map((x) => x.type)).toEqual(["firewall_restored"]);
    expect(fw.state.rules.filter((r) => r.chain === "mesh_in").length).toBeGreaterThan(5);
    expect(fw.calls.applyAt).toBe(0);
  });

  test("a rejected delta falls back to a full replace in one transaction", async () => {
    const fw = new FakeFirewall();
    const e = mk(fw);
    await e.apply(ps([["n_a", 80]]));
    fw.failNext = "EEXIST";
    await e.apply(ps([["n_a", 81]]));
    expect(fw.batches.at(-1)!.ops.slice(0, 3).map((o) => o.op)).toEqual(["addTable", "deleteTable", "addTable"]);
    expect(fw.state.sets.find((s) => s.name === "allow_in4_svc")!.elements).toEqual([{ key: ["10.100.0.1", 6, 81] }]);
  });

  test("watch: a foreign flush is repaired; our own commits trigger nothing", async () => {
    const fw = new FakeFirewall();
    const e = mk(fw);
    await e.apply(ps([["n_a", 80]]));
    e.startWatch();
    const n = fw.batches.length;
    await e.apply(ps([["n_a", 80], ["n_a", 90]]));
    await Bun.sleep(30);
    expect(fw.batches.length).toBe(n + 1); // no reconcile-triggered commit after our own
    fw.external((s) => Object.assign(s, { exists: false, chains: [], sets: [], rules: [] }));
    for (let i = 0; i < 50 && !fw.state.exists; i++) await Bun.sleep(10);
    expect(fw.state.exists).toBe(true);
    expect((await e.status()).restored).toBe(1);
    await e.stop();
  });

  test("firewalld running → interface put into the trusted zone (once)", async () => {
    const calls: string[] = [];
    let zone: string | null = "public";
    const fwd: FirewalldControl = {
      running: async () => true,
      zoneOf: async () => zone,
      trust: async (i) => {
        calls.push(i);
        zone = "trusted";
      },
    };
    const e = mk(new FakeFirewall(), fwd);
    e.startWatch();
    await Bun.sleep(20);
    expect(calls).toEqual(["plexd0"]);
    expect((await e.status()).firewalld).toEqual({ running: true, zone: "trusted" });
    await e.stop();
  });

  test("status warns about foreign base chains that can drop mesh traffic first", async () => {
    const fw = new FakeFirewall();
    fw.foreign = [
      {
        family: "inet",
        name: "fw",
        dump: {
          family: "inet",
          table: "fw",
          exists: true,
          chains: [
            { name: "in", hook: "input", priority: -10, policy: "drop" },
            { name: "late", hook: "input", priority: 10, policy: "accept" },
            { name: "other", hook: "input", priority: -5, policy: "accept" },
          ],
          sets: [],
          rules: [
            { chain: "late", match: [], stmt: [{ stmt: "verdict", verdict: "drop" }] },
            { chain: "other", match: [{ match: "cmp", field: "meta iifname", value: "eth0" }], stmt: [{ stmt: "verdict", verdict: "drop" }] },
          ],
        },
      },
    ];
    const e = mk(fw);
    await e.apply(ps([]));
    const st = await e.status();
    expect(st.foreign.map((w) => [w.chain, w.level, w.runsFirst])).toEqual([
      ["in", "warn", true],
      ["late", "info", false],
    ]);
  });
});
