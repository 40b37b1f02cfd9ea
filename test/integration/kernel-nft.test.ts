/**
 * nftables against the real kernel, in a throwaway network namespace: what we apply is what
 * the kernel (read back by the addon AND by `nft` from outside) holds; a rejected batch
 * changes nothing; a foreign table is never touched; element-only changes keep rules and
 * their counters.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import type { FwBatch, FwDump, FwRule } from "../../src/kernel/firewall-api.ts";
import { comparableRule, elementKey, normaliseElement, normaliseRule } from "../../src/kernel/nft.ts";
import { Netns, REPO_ROOT, canUseNetns, run } from "../helpers/netns.ts";

const RUNNER = resolve(REPO_ROOT, "test/integration/kernel-nft-runner.ts");
const enabled = await canUseNetns();
let ns: Netns;

type StepResult = { ok: true; value: FwDump | null } | { ok: false; error: Record<string, string | number | undefined> };

async function steps(list: unknown[]): Promise<StepResult[]> {
  const r = await ns.bun(RUNNER, [JSON.stringify(list)]);
  if (r.code !== 0) throw new Error(`runner exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim().split("\n").map((l) => JSON.parse(l) as StepResult);
}
async function apply(batch: FwBatch): Promise<void> {
  const [r] = await steps([{ apply: batch }]);
  if (!r?.ok) throw new Error(`apply failed: ${JSON.stringify(r)}`);
}
async function dump(): Promise<FwDump> {
  const [r] = await steps([{ dump: true }]);
  if (!r?.ok || !r.value) throw new Error(`dump failed: ${JSON.stringify(r)}`);
  return r.value;
}
async function nft(...args: string[]): Promise<string> {
  const r = await ns.exec(["nft", ...args]);
  if (r.code !== 0) throw new Error(`nft ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

const iif = (v: string) => ({ match: "cmp" as const, field: "meta iifname" as const, value: v });
const policyRules: FwRule[] = [
  { chain: "input", match: [iif("plexd0")], stmt: [{ stmt: "verdict", verdict: "jump", chain: "mesh_in" }] },
  { chain: "output", match: [{ match: "cmp", field: "meta oifname", value: "lo" }], stmt: [{ stmt: "counter" }] },
  { chain: "mesh_in", match: [{ match: "ct", states: ["established", "related"] }], stmt: [{ stmt: "verdict", verdict: "accept" }] },
  { chain: "mesh_in", match: [{ match: "ct", states: ["invalid"] }], stmt: [{ stmt: "verdict", verdict: "drop" }] },
  {
    chain: "mesh_in",
    match: [iif("plexd0"), { match: "set", fields: ["ip saddr", "meta l4proto", "th dport"], set: "allow4" }],
    stmt: [{ stmt: "counter" }, { stmt: "verdict", verdict: "accept" }],
  },
  {
    chain: "mesh_in",
    match: [{ match: "set", fields: ["ip saddr"], set: "deny4" }],
    stmt: [{ stmt: "verdict", verdict: "drop" }],
  },
  {
    chain: "mesh_in",
    match: [
      { match: "cmp", field: "ip saddr", value: "10.100.0.0/16" },
      { match: "cmp", field: "meta l4proto", value: 6 },
      { match: "cmp", field: "th dport", value: 2222 },
    ],
    stmt: [{ stmt: "verdict", verdict: "accept" }],
  },
  { chain: "mesh_in", match: [{ match: "cmp", field: "ip6 saddr", value: "fd00::/8" }], stmt: [{ stmt: "verdict", verdict: "return" }] },
  { chain: "mesh_in", match: [], stmt: [{ stmt: "log", prefix: "plexd-deny ", level: "debug" }, { stmt: "verdict", verdict: "drop" }] },
];
const allow4 = [
  { key: ["10.100.0.2", 6, 22] },
  { key: ["10.100.1.0/24", 17, "1000-2000"] },
];
const deny4 = [{ key: ["10.100.9.9"] }, { key: ["10.100.12.0/22"] }, { key: ["10.100.7.1-10.100.7.5"] }];

/** The full replace: add+delete+add makes it idempotent whether or not the table exists. */
function fullBatch(): FwBatch {
  return {
    family: "inet",
    table: "plexd",
    ops: [
      { op: "addTable" },
      { op: "deleteTable" },
      { op: "addTable" },
      { op: "addChain", chain: { name: "input", hook: "input", priority: 0, policy: "accept" } },
      { op: "addChain", chain: { name: "output", hook: "output", priority: 0, policy: "accept" } },
      { op: "addChain", chain: { name: "mesh_in" } },
      { op: "addSet", set: { name: "allow4", type: ["ipv4_addr", "inet_proto", "inet_service"], flags: ["interval"] } },
      { op: "addSet", set: { name: "deny4", type: ["ipv4_addr"], flags: ["interval"] } },
      { op: "addElements", set: "allow4", elements: allow4 },
      { op: "addElements", set: "deny4", elements: deny4 },
      ...policyRules.map((rule) => ({ op: "addRule" as const, rule })),
    ],
  };
}

const FOREIGN = `table inet foreign {
  set s {
    type ipv4_addr
    elements = { 192.0.2.1, 192.0.2.2 }
  }
  chain c {
    type filter hook input priority 10; policy accept;
    ip saddr @s counter drop
    tcp dport 80 accept
  }
}
`;

beforeAll(async () => {
  if (!enabled) return;
  ns = await Netns.create("plexd-nft");
  const file = `/tmp/${ns.name}-foreign.nft`;
  await Bun.write(file, FOREIGN);
  try {
    await nft("-f", file);
  } finally {
    await run(["rm", "-f", file]);
  }
});

afterAll(async () => {
  await ns?.remove();
});

describe.skipIf(!enabled)("nftables in a network namespace", () => {
  test("apply → addon dump equals the request; nft from outside agrees", async () => {
    const foreignBefore = await nft("list", "table", "inet", "foreign");
    await apply(fullBatch());
    const d = await dump();
    expect(d.exists).toBe(true);
    expect(d.chains.map(({ handle: _h, ...c }) => c)).toEqual([
      { name: "input", hook: "input", priority: 0, policy: "accept" },
      { name: "output", hook: "output", priority: 0, policy: "accept" },
      { name: "mesh_in" },
    ]);
    const set = (n: string) => d.sets.find((s) => s.name === n);
    expect(set("allow4")?.type).toEqual(["ipv4_addr", "inet_proto", "inet_service"]);
    expect(set("allow4")?.flags).toEqual(["interval"]);
    const norm = (type: FwDump["sets"][number]["type"], els: { key: (string | number)[] }[]) =>
      els.map((e) => elementKey(normaliseElement({ type }, e))).sort();
    expect(norm(["ipv4_addr", "inet_proto", "inet_service"], set("allow4")?.elements ?? [])).toEqual(
      norm(["ipv4_addr", "inet_proto", "inet_service"], allow4),
    );
    expect(norm(["ipv4_addr"], set("deny4")?.elements ?? [])).toEqual(norm(["ipv4_addr"], deny4));
    expect(d.rules.map(comparableRule)).toEqual(policyRules.map((r) => normaliseRule(r, "inet")));

    // From outside: nft's JSON view of the same table.
    const j = JSON.parse(await nft("-j", "list", "table", "inet", "plexd")) as { nftables: Array<Record<string, any>> };
    const chains = j.nftables.filter((o) => o.chain).map((o) => o.chain);
    expect(chains.map((c) => [c.name, c.hook, c.prio, c.policy])).toEqual([
      ["input", "input", 0, "accept"],
      ["output", "output", 0, "accept"],
      ["mesh_in", undefined, undefined, undefined],
    ]);
    const sets = j.nftables.filter((o) => o.set).map((o) => o.set);
    expect(sets.find((s) => s.name === "allow4").type).toEqual(["ipv4_addr", "inet_proto", "inet_service"]);
    expect(sets.find((s) => s.name === "allow4").elem).toHaveLength(2);
    expect(sets.find((s) => s.name === "deny4").elem).toEqual([
      { range: ["10.100.7.1", "10.100.7.5"] },
      "10.100.9.9",
      { prefix: { addr: "10.100.12.0", len: 22 } },
    ]);
    expect(j.nftables.filter((o) => o.rule)).toHaveLength(policyRules.length);
    // And the rule text nft derives from our expressions, line by line.
    const text = (await nft("list", "chain", "inet", "plexd", "mesh_in"))
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("chain") && !l.startsWith("table") && l !== "}");
    expect(text).toEqual([
      "ct state established,related accept",
      "ct state invalid drop",
      'iifname "plexd0" ip saddr . meta l4proto . th dport @allow4 counter packets 0 bytes 0 accept',
      "ip saddr @deny4 drop",
      "ip saddr 10.100.0.0/16 tcp dport 2222 accept",
      "ip6 saddr fd00::/8 return",
      'log prefix "plexd-deny " level debug drop',
    ]);
    expect(await nft("list", "table", "inet", "foreign")).toBe(foreignBefore);
  });

  test("a batch the kernel rejects half-way changes nothing and names the failing op", async () => {
    await apply(fullBatch());
    const before = await nft("list", "ruleset");
    const bad = fullBatch();
    bad.ops.push(
      { op: "addElements", set: "deny4", elements: [{ key: ["10.100.50.1"] }] },
      { op: "flushChain", chain: "mesh_in" },
      { op: "addRule", rule: { chain: "no_such_chain", match: [], stmt: [{ stmt: "verdict", verdict: "accept" }] } },
    );
    const [r] = await steps([{ apply: bad }]);
    expect(r?.ok).toBe(false);
    if (r?.ok !== false) return;
    expect(r.error.name).toBe("NativeError");
    expect(r.error.code).toBe("ENOENT");
    expect(r.error.op).toBe("nft.apply");
    expect(r.error.object).toBe(`add rule inet plexd no_such_chain #${bad.ops.length - 1}`);
    expect(await nft("list", "ruleset")).toBe(before);
  });

  test("the foreign table is byte-identical after our applies, flushes and deletes", async () => {
    const before = await nft("list", "table", "inet", "foreign");
    await apply(fullBatch());
    await apply({ family: "inet", table: "plexd", ops: [{ op: "flushTable" }] });
    await apply({ family: "inet", table: "plexd", ops: [{ op: "flushSet", set: "deny4" }, { op: "deleteSet", set: "deny4" }] });
    await apply({ family: "inet", table: "plexd", ops: [{ op: "deleteTable" }] });
    expect((await dump()).exists).toBe(false);
    // The wrapper refuses the foreign table outright.
    const [r] = await steps([{ apply: { family: "inet", table: "foreign", ops: [{ op: "deleteTable" }] } }]);
    expect(r?.ok === false && r.error.name).toBe("NftForeignTableError");
    expect(await nft("list", "table", "inet", "foreign")).toBe(before);
  });

  test("element-only changes keep rules, handles and counters", async () => {
    await apply(fullBatch());
    const p = await ns.exec(["ping", "-c", "3", "-i", "0.2", "-W", "1", "127.0.0.1"]);
    expect(p.code).toBe(0);
    const d1 = await dump();
    const counter = (d: FwDump) => d.rules.find((r) => r.chain === "output")?.stmt.find((s) => s.stmt === "counter");
    const c1 = counter(d1);
    expect(c1?.stmt === "counter" && (c1.packets ?? 0)).toBeGreaterThanOrEqual(6);
    await apply({
      family: "inet",
      table: "plexd",
      ops: [
        { op: "addElements", set: "allow4", elements: [{ key: ["10.100.0.7", 6, 443] }] },
        { op: "deleteElements", set: "allow4", elements: [{ key: ["10.100.0.2", 6, 22] }] },
        { op: "addElements", set: "deny4", elements: [{ key: ["10.100.60.0/24"] }] },
      ],
    });
    const d2 = await dump();
    expect(d2.rules).toEqual(d1.rules); // same handles, same counter values
    expect(d2.sets.find((s) => s.name === "allow4")?.elements.map(elementKey).sort()).toEqual(
      [{ key: ["10.100.0.7", 6, 443] }, { key: ["10.100.1.0/24", 17, "1000-2000"] }].map(elementKey).sort(),
    );
    expect(d2.sets.find((s) => s.name === "deny4")?.elements).toHaveLength(4);
  });
});
