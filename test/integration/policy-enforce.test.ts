/**
 * Policy enforcement against the real kernel. Three namespaces A (10.100.0.1), B (.2) and
 * C (.3) on one bridge, each link named plexd0; an Enforcer runs inside B
 * (test/integration/policy-runner.ts). What it proves:
 *  - allow tcp/8080 A→B: A reaches B:8080, not B:22; C reaches nothing on B;
 *  - a policy change is effective when apply returns (well within 1 s);
 *  - an established connection keeps exchanging bytes across an unrelated policy change,
 *    and such a change is an element-only transaction (rule handles unchanged);
 *  - `nft flush ruleset` from outside → our table is back within 1 s (nftables monitor);
 *  - a foreign table is byte-identical after start, policy changes, stop and kill -9.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import type { PolicyInput, PolicySet } from "../../src/policy/index.ts";
import { canUseNetns } from "../helpers/netns.ts";
import { MESH_IF, RunnerClient, canConnect, createLab, echoServer, firstLine, longClient, restOf, type Lab } from "./policy-lab.ts";

const enabled = await canUseNetns();
let lab: Lab;
let runner: RunnerClient | null = null;
const procs: Subprocess[] = [];

const A = { id: "n_a", meshIp: "10.100.0.1" };
const B = { id: "n_b", meshIp: "10.100.0.2" };
const C = { id: "n_c", meshIp: "10.100.0.3" };
const OPTIONS = { interface: MESH_IF, default: "deny", logDenied: true };

function desired(policies: PolicyInput[]): PolicySet {
  return { policies, local: { nodeId: B.id, meshIp: B.meshIp }, peers: [A, C] };
}
const allow8080: PolicyInput = { id: "pol_web", rules: [{ src: "n_a", dst: "n_b", port: 8080, protocol: "tcp", action: "allow" }] };
const unrelated: PolicyInput = { id: "pol_dns", rules: [{ src: "n_c", dst: "n_b", port: 53, protocol: "udp", action: "allow" }] };

const FOREIGN = `table inet foreign {
  set s {
    type ipv4_addr
    elements = { 192.0.2.1 }
  }
  chain c {
    type filter hook input priority 10; policy accept;
    ip saddr @s counter drop
    tcp dport 9999 accept
  }
}
`;

async function nftB(...args: string[]): Promise<string> {
  const r = await lab.nodes[1]!.exec(["nft", ...args]);
  if (r.code !== 0) throw new Error(`nft ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}
const foreignText = () => nftB("list", "table", "inet", "foreign");
const ourTable = async () => {
  const r = await lab.nodes[1]!.exec(["nft", "-a", "list", "table", "inet", "plexd"]);
  return r.code === 0 ? r.stdout : null;
};

beforeAll(async () => {
  if (!enabled) return;
  lab = await createLab(3);
  const b = lab.nodes[1]!;
  await b.exec(["sh", "-c", `printf '%s' '${FOREIGN}' | nft -f -`]);
  const srv = echoServer(b, [8080, 22]);
  procs.push(srv);
  expect(await firstLine(srv)).toContain("ready");
});

afterAll(async () => {
  runner?.kill();
  for (const p of procs) p.kill("SIGKILL");
  await Promise.all(procs.map((p) => p.exited));
  if (runner) await runner.exited();
  await lab?.remove();
});

describe.skipIf(!enabled)("policy enforcement in namespaces", () => {
  test("without plexd everything connects (the lab works)", async () => {
    const [a, , c] = lab.nodes;
    expect(await canConnect(a!, B.meshIp, 8080)).toBe(true);
    expect(await canConnect(c!, B.meshIp, 22)).toBe(true);
  });

  test("allow tcp/8080 A→B: A reaches 8080 only, C reaches nothing; foreign table untouched", async () => {
    const before = await foreignText();
    runner = await RunnerClient.start(lab.nodes[1]!, OPTIONS);
    await runner.call("apply", { desired: desired([allow8080]) });
    const [a, , c] = lab.nodes;
    expect(await canConnect(a!, B.meshIp, 8080)).toBe(true);
    expect(await canConnect(a!, B.meshIp, 22)).toBe(false);
    expect(await canConnect(c!, B.meshIp, 8080)).toBe(false);
    expect(await canConnect(c!, B.meshIp, 22)).toBe(false);
    expect(await foreignText()).toBe(before);
    const text = (await ourTable()) ?? "";
    expect(text).toContain('iifname "plexd0" jump mesh_in');
    expect(text).toContain("ip saddr . meta l4proto . th dport @allow_in4_svc");
    expect(text).toContain('log prefix "plexd-deny " level debug');
  });

  test("a policy change is effective when apply returns (< 1 s)", async () => {
    const c = lab.nodes[2]!;
    const open: PolicyInput = { id: "pol_c", rules: [{ src: "10.100.0.3/32", dst: "*", port: 22, protocol: "tcp", action: "allow" }] };
    const t0 = performance.now();
    await runner!.call("apply", { desired: desired([allow8080, open]) });
    expect(await canConnect(c, B.meshIp, 22)).toBe(true);
    expect(performance.now() - t0).toBeLessThan(1000);
    await runner!.call("apply", { desired: desired([allow8080]) });
    expect(await canConnect(c, B.meshIp, 22)).toBe(false);
  });

  test("an established connection survives an unrelated change; the change touches elements only", async () => {
    const a = lab.nodes[0]!;
    const handles = (t: string | null) => (t ?? "").split("\n").filter((l) => l.includes("# handle") && !l.includes("chain ") && !l.includes("set "));
    const before = handles(await ourTable());
    const cl = longClient(a, B.meshIp, 8080, 1500);
    procs.push(cl);
    expect(await firstLine(cl)).toContain("connected");
    await Bun.sleep(300);
    // Unrelated element change, then one that removes the allow (ct established keeps the flow).
    await runner!.call("apply", { desired: desired([allow8080, unrelated]) });
    await Bun.sleep(300);
    await runner!.call("apply", { desired: desired([unrelated]) });
    const out = await restOf(cl);
    expect(await cl.exited).toBe(0);
    expect(out).toMatch(/ok \d+/);
    expect(Number(/ok (\d+)/.exec(out)?.[1])).toBeGreaterThan(15);
    // Rules and their handles did not change: only set elements were touched.
    expect(handles(await ourTable()).map((l) => l.replace(/counter packets \d+ bytes \d+/, ""))).toEqual(
      before.map((l) => l.replace(/counter packets \d+ bytes \d+/, "")),
    );
    // New connections follow the new policy.
    expect(await canConnect(a, B.meshIp, 8080)).toBe(false);
    await runner!.call("apply", { desired: desired([allow8080]) });
  });

  test("`nft flush ruleset` from outside: table restored within 1 s by the monitor", async () => {
    await runner!.call("watch");
    await Bun.sleep(100);
    const want = await ourTable();
    await nftB("flush", "ruleset");
    const t0 = performance.now();
    let back: string | null = null;
    while (performance.now() - t0 < 1000) {
      back = await ourTable();
      if (back) break;
      await Bun.sleep(20);
    }
    expect(back).not.toBeNull();
    const strip = (s: string | null) => (s ?? "").replace(/# handle \d+/g, "").replace(/packets \d+ bytes \d+/g, "");
    // Let the restore settle, then the content must be what we had.
    await Bun.sleep(200);
    expect(strip(await ourTable())).toBe(strip(want));
    expect(await canConnect(lab.nodes[0]!, B.meshIp, 8080)).toBe(true);
    expect(await canConnect(lab.nodes[2]!, B.meshIp, 8080)).toBe(false);
    // No feedback loop: our own restore does not trigger further restores.
    const s1 = (await runner!.call<{ restored: number }>("status")).value.restored;
    await Bun.sleep(400);
    const s2 = (await runner!.call<{ restored: number }>("status")).value.restored;
    expect(s1).toBeGreaterThanOrEqual(1);
    expect(s2).toBe(s1);
  });

  test("drift (element added from outside) → reconcile repairs it and reports firewall_restored", async () => {
    await runner!.call("unwatch"); // so the monitor does not repair it first
    await nftB("add", "element", "inet", "plexd", "allow_in4", "{ 10.100.0.3 }");
    expect(await canConnect(lab.nodes[2]!, B.meshIp, 22)).toBe(true);
    const { value } = await runner!.call<Array<{ type: string }>>("reconcile");
    expect(value.map((c) => c.type)).toEqual(["firewall_restored"]);
    expect(await canConnect(lab.nodes[2]!, B.meshIp, 22)).toBe(false);
    expect((await runner!.call<Array<unknown>>("reconcile")).value).toEqual([]);
    const st = (await runner!.call<{ synced: boolean }>("status")).value;
    expect(st.synced).toBe(true);
    await runner!.call("watch");
  });

  test("foreign table byte-identical after stop and after kill -9", async () => {
    await nftB("delete", "table", "inet", "foreign").catch(() => "");
    await lab.nodes[1]!.exec(["sh", "-c", `printf '%s' '${FOREIGN}' | nft -f -`]);
    const before = await foreignText();
    await runner!.call("apply", { desired: desired([allow8080, unrelated]) });
    await runner!.call("stop");
    await runner!.exited();
    expect(await foreignText()).toBe(before);
    expect(await ourTable()).not.toBeNull(); // stop leaves the table: fail closed
    runner = await RunnerClient.start(lab.nodes[1]!, OPTIONS);
    await runner.call("watch");
    await runner.call("apply", { desired: desired([allow8080]) });
    runner.kill();
    await runner.exited();
    runner = null;
    expect(await foreignText()).toBe(before);
    expect(await canConnect(lab.nodes[0]!, B.meshIp, 8080)).toBe(true);
    expect(await canConnect(lab.nodes[2]!, B.meshIp, 8080)).toBe(false);
  });
});
