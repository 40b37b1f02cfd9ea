/**
 * Conditional commits against the real kernel, inside a namespace made by
 * policy-target.test.ts. Prints one JSON object with what it observed.
 *
 *   bun test/integration/policy-target-runner.ts
 */
import { loadAddon } from "../../src/kernel/addon.ts";
import type { FwSet } from "../../src/kernel/firewall-api.ts";
import { Enforcer, compile, fullBatch, nftTarget, type PolicySet } from "../../src/policy/index.ts";

const OPTS = { interface: "plexd0", default: "deny" as const, logDenied: false };
const ps = (ports: number[]): PolicySet => ({
  policies: [{ id: "p", rules: ports.map((port) => ({ src: "n_a", dst: "n_b", protocol: "tcp", port, action: "allow" })) }],
  local: { nodeId: "n_b", meshIp: "10.100.0.2" },
  peers: [{ id: "n_a", meshIp: "10.100.0.1" }],
});

async function nft(...args: string[]): Promise<string> {
  const p = Bun.spawn(["nft", ...args], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`nft ${args.join(" ")}: ${err}`);
  return out;
}

if (import.meta.main) {
  const addon = loadAddon();
  const t = nftTarget(addon);
  const c = compile(ps([80]), OPTS);
  const sets = new Map<string, FwSet>(c.ruleset.sets.map((s) => [s.name, s]));
  const add = (port: number) => ({ family: "inet" as const, table: "plexd", ops: [{ op: "addElements" as const, set: "allow_in4_svc", elements: [{ key: ["10.100.0.1", 6, port] }] }] });
  const out: Record<string, unknown> = {};
  out.g1 = await t.applyAt!(fullBatch(c.ruleset), sets, null);
  out.g1Read = await addon.nftGetGen();
  out.g2 = await t.applyAt!(add(81), sets, out.g1 as number);
  out.g2Read = await addon.nftGetGen();
  try {
    await t.applyAt!(add(82), sets, out.g1 as number);
    out.stale = "applied";
  } catch (e) {
    out.stale = (e as { code?: string }).code;
  }
  out.elements = (await t.dump()).sets.find((s) => s.name === "allow_in4_svc")?.elements.map((e) => e.key[2]);

  // Enforcer: a foreign change between two applies is caught by the conditional commit.
  const log = { debug() {}, info() {}, warn() {}, error() {} };
  const e = new Enforcer({ target: t, log, options: OPTS, firewalld: null });
  await e.apply(ps([80]));
  await nft("add", "element", "inet", "plexd", "allow_in4", "{ 10.100.0.77 }");
  out.corrections = (await e.apply(ps([80, 443]))).map((x) => x.type);
  const d = await t.dump();
  out.allowIn4 = d.sets.find((s) => s.name === "allow_in4")?.elements.length;
  out.svc = d.sets.find((s) => s.name === "allow_in4_svc")?.elements.map((x) => x.key[2]);
  // Steady state afterwards: the next append commits without reading the table back.
  out.afterAppend = (await e.apply(ps([80, 443, 8443]))).length;
  out.svcAfter = (await t.dump()).sets.find((s) => s.name === "allow_in4_svc")?.elements.map((x) => x.key[2]);
  await e.stop();
  console.log(JSON.stringify(out));
}
