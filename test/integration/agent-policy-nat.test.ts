/**
 * Policy enforcement and NAT discovery wired into the running agent (real CP, netns, userspace
 * WireGuard, real nftables through the addon): the agent creates `table inet plexd` with the
 * mesh chains (checked from outside with `nft -j`), `plexd policies --json` answers from the
 * daemon, and with `nat_traversal.enabled: true` and an unreachable STUN server the agent still
 * reaches `connected` with nat type `unknown` and nothing reported to the CP.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { Lab, labAvailable, sh, waitFor, type Proc } from "./agent-harness.ts";

const run = labAvailable() && Bun.which("nft") !== null ? describe : describe.skip;

/** `nft -j list table inet plexd` inside the namespace; null when the table is absent. */
function plexdTable(ns: string): { chains: Array<{ name: string; hook?: string }>; rules: number; sets: string[] } | null {
  const r = sh(["ip", "netns", "exec", ns, "nft", "-j", "list", "table", "inet", "plexd"], true);
  if (r.code !== 0) return null;
  const items = (JSON.parse(r.out) as { nftables: Array<Record<string, any>> }).nftables;
  return {
    chains: items.filter((i) => i.chain).map((i) => ({ name: i.chain.name, ...(i.chain.hook ? { hook: i.chain.hook } : {}) })),
    rules: items.filter((i) => i.rule).length,
    sets: items.filter((i) => i.set).map((i) => i.set.name as string),
  };
}

run("agent policy enforcement and NAT discovery (netns, real CP, nftables)", () => {
  const lab = new Lab();
  let cfg: ReturnType<Lab["agentConfig"]>;
  let agent: Proc;
  let peer1: Awaited<ReturnType<Lab["registerFakeNode"]>>;
  let nodeId = "";

  beforeAll(async () => {
    lab.setup();
    await lab.startCp();
    peer1 = await lab.registerFakeNode(`peer1-${lab.sfx}`);
    cfg = lab.agentConfig("pn");
    // NAT traversal on, against a STUN address on the lab's own veth where nothing listens.
    const yaml = readFileSync(cfg.configPath, "utf8").replace(
      "nat_traversal:\n  enabled: false",
      ["nat_traversal:", "  enabled: true", `  stun_servers: ["${lab.hostIp}:3479"]`, "  timeout: 1s"].join("\n"),
    );
    expect(yaml).toContain(`${lab.hostIp}:3479`);
    writeFileSync(cfg.configPath, yaml);
    writeFileSync(cfg.tokenFile, await lab.newToken(), { mode: 0o600 });
    agent = lab.startAgent(cfg.configPath);
  }, 60_000);

  afterAll(async () => {
    if (agent?.running) console.error(agent.err.slice(-3000));
    await lab.cleanup();
  }, 60_000);

  test("STUN unreachable: the agent still reaches connected; nat type unknown, nothing reported", async () => {
    const st = await waitFor(
      "connected status",
      async () => {
        const r = await lab.cli(["status", "--json", "--socket", cfg.socket]);
        if (r.code === 3) return undefined;
        const d = JSON.parse(r.out).data;
        return d.phase === "connected" ? d : undefined;
      },
      40_000,
    );
    nodeId = st.node_id;
    expect(st.nat).toMatchObject({ enabled: true, type: "unknown", public_endpoint: null, report_pending: false });
    expect(st.nat.last_error).toContain(`${lab.hostIp}:3479`);
    expect(agent.err).toContain("NAT discovery failed");
    // Nothing reached PUT /endpoint; the heartbeat carries no nat block.
    const hb = await waitFor("heartbeat at the CP", async () => (await lab.admin("GET", `/admin/nodes/${nodeId}`)).json?.last_heartbeat);
    expect(hb.nat).toBeUndefined();
    const list = await lab.admin("GET", "/admin/nodes");
    const me = list.json.nodes.find((n: { id: string }) => n.id === nodeId);
    expect(me.endpoint ?? "").toBe("");
    expect(me.nat_type ?? "").toBe("");
    // The tunnel itself is there.
    await waitFor("peer on the interface", () => lab.wgPeers(cfg.ifname).has(peer1.public_key));
  }, 60_000);

  test("table inet plexd with the mesh chains exists in the namespace (seen from outside)", async () => {
    const t = await waitFor("table inet plexd", () => plexdTable(lab.ns), 20_000);
    const names = t.chains.map((c) => c.name).sort();
    expect(names).toEqual(["forward", "input", "mesh_fwd", "mesh_in", "mesh_out", "output"]);
    expect(t.chains.filter((c) => c.hook).map((c) => `${c.name}:${c.hook}`).sort()).toEqual(["forward:forward", "input:input", "output:output"]);
    expect(t.rules).toBeGreaterThan(6);
    // 24 policy lookup sets plus the access-session ports.
    expect(t.sets.length).toBe(25);
    expect(t.sets).toContain("access_ports");
    // The base chains jump on the mesh interface.
    const text = sh(["ip", "netns", "exec", lab.ns, "nft", "list", "chain", "inet", "plexd", "input"]).out;
    expect(text).toContain(`iifname "${cfg.ifname}" jump mesh_in`);
  }, 30_000);

  test("plexd policies --json answers from the daemon", async () => {
    const r = await lab.cli(["policies", "--json", "--socket", cfg.socket]);
    expect(r.code).toBe(0);
    const d = JSON.parse(r.out).data;
    expect(d.interface).toBe(cfg.ifname);
    expect(d.default).toBe("allow");
    expect(d.synced).toBe(true);
    expect(d.firewall.exists).toBe(true);
    expect(d.firewall.rules.some((x: { chain: string; text: string }) => x.chain === "input" && x.text.includes("mesh_in"))).toBe(true);
    const human = await lab.cli(["policies", "--socket", cfg.socket]);
    expect(human.code).toBe(0);
    expect(human.out).toContain("table inet plexd present, in sync");
  }, 30_000);

  test("a flushed table is restored by the agent", async () => {
    sh(["ip", "netns", "exec", lab.ns, "nft", "flush", "table", "inet", "plexd"]);
    await waitFor("rules restored", () => (plexdTable(lab.ns)?.rules ?? 0) > 6, 20_000);
  }, 30_000);

  test("SIGTERM leaves the table in place (fail closed while the agent is down)", async () => {
    expect(await agent.kill(15_000)).toBe(0);
    expect(plexdTable(lab.ns)).not.toBeNull();
  }, 30_000);
});
