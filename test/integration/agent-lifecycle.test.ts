/**
 * Agent lifecycle end to end against the REAL reference control plane: `plexd up` from source
 * inside a network namespace (userspace WireGuard), reaching the CP over a veth pair.
 * Proves: registration (identity files 0600, token file removed), interface + peers (checked
 * from outside with `wg`/`ip`), heartbeat at the CP, control-socket status/peers, SSE peer
 * events, drift repair, clean SIGTERM exit, offline restart from cache, deregister via daemon.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Lab, labAvailable, sh, waitFor, type Proc } from "./agent-harness.ts";

const run = labAvailable() ? describe : describe.skip;

run("agent lifecycle (netns, userspace WireGuard, real CP)", () => {
  const lab = new Lab();
  let cfg: ReturnType<Lab["agentConfig"]>;
  let agent: Proc;
  let peer1: Awaited<ReturnType<Lab["registerFakeNode"]>>;
  let nodeId = "";

  beforeAll(async () => {
    lab.setup();
    await lab.startCp();
    peer1 = await lab.registerFakeNode(`peer1-${lab.sfx}`);
    cfg = lab.agentConfig("a1");
    writeFileSync(cfg.tokenFile, await lab.newToken(), { mode: 0o600 });
    agent = lab.startAgent(cfg.configPath);
  }, 60_000);

  afterAll(async () => {
    if (agent?.running) console.error(agent.err.slice(-3000));
    await lab.cleanup();
  }, 60_000);

  test("registers: identity files 0600, token file removed", async () => {
    await waitFor("identity.json", () => existsSync(join(cfg.dataDir, "identity.json")), 30_000);
    for (const f of ["identity.json", "private_key", "node_secret_key", "signing_public_key", "signing_keys.json"]) {
      expect(statSync(join(cfg.dataDir, f)).mode & 0o777).toBe(0o600);
    }
    expect(statSync(cfg.dataDir).mode & 0o777).toBe(0o700);
    expect(existsSync(cfg.tokenFile)).toBe(false);
    nodeId = (await Bun.file(join(cfg.dataDir, "identity.json")).json()).node_id;
    expect(nodeId).toMatch(/^n_/);
  }, 40_000);

  test("interface, address, route and peer are configured (seen from outside)", async () => {
    if (Bun.which("nft")) await waitFor("table inet plexd", () => sh(["ip", "netns", "exec", lab.ns, "nft", "list", "table", "inet", "plexd"], true).code === 0);
    const peers = await waitFor("peer on the interface", () => {
      const p = lab.wgPeers(cfg.ifname);
      return p.has(peer1.public_key) ? p : undefined;
    });
    // peer1 never reported an endpoint: keepalive stays off until one is known (decisions "Mesh apply").
    expect(peers.get(peer1.public_key)).toMatchObject({ allowedIps: `${peer1.mesh_ip}/32`, keepalive: "off" });
    const id = await Bun.file(join(cfg.dataDir, "identity.json")).json();
    const addr = sh(["ip", "-n", lab.ns, "-j", "addr", "show", "dev", cfg.ifname]).out;
    expect(addr).toContain(id.mesh_ip);
    const link = JSON.parse(addr)[0];
    expect(link.mtu).toBe(1420);
    const routes = sh(["ip", "-n", lab.ns, "route", "show", "dev", cfg.ifname]).out;
    expect(routes).toContain(`10.100.0.0/16`);
    expect(routes).toContain(`src ${id.mesh_ip}`);
    expect(statSync(join(cfg.dataDir, "cache/peers.json")).mode & 0o777).toBe(0o600);
  }, 30_000);

  test("heartbeat reaches the CP with the full payload", async () => {
    const hb = await waitFor("last_heartbeat at the CP", async () => {
      const r = await lab.admin("GET", `/admin/nodes/${nodeId}`);
      return r.json?.last_heartbeat;
    });
    expect(hb.node_id).toBe(nodeId);
    expect(hb.binary_checksum).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(hb.mesh).toEqual({ interface: cfg.ifname, peer_count: 1, listen_port: expect.any(Number) });
    expect(hb.status).toBe("healthy");
    const list = await lab.admin("GET", "/admin/nodes");
    const me = list.json.nodes.find((n: { id: string }) => n.id === nodeId);
    expect(me.status).toBe("online");
    expect(Date.parse(me.last_seen)).toBeGreaterThan(Date.now() - 60_000);
  }, 30_000);

  test("status and peers over the control socket", async () => {
    const st = await waitFor("connected status with SSE streaming", async () => {
      const r = await lab.cli(["status", "--json", "--socket", cfg.socket]);
      const d = JSON.parse(r.out).data;
      return r.code === 0 && d.phase === "connected" && d.sse.state === "streaming" ? d : undefined;
    });
    expect(st.node_id).toBe(nodeId);
    expect(st.control_plane.connectivity).toBe("online");
    expect(st.peers.total).toBe(1);
    const p = await lab.cli(["peers", "--socket", cfg.socket]);
    expect(p.code).toBe(0);
    expect(p.out).toContain("PEER");
    expect(p.out).toContain(peer1.node_id);
    expect(p.out).toContain(peer1.mesh_ip);
  }, 30_000);

  let peer2: Awaited<ReturnType<Lab["registerFakeNode"]>>;
  test("SSE: a new node arrives as peer_added and is configured", async () => {
    peer2 = await lab.registerFakeNode(`peer2-${lab.sfx}`);
    await waitFor("second peer on the interface", () => lab.wgPeers(cfg.ifname).has(peer2.public_key), 15_000);
    const r = await lab.cli(["status", "--json", "--socket", cfg.socket]);
    expect(JSON.parse(r.out).data.sse.last_event_id).toMatch(/^evt_/);
  }, 30_000);

  test("drift: a peer removed behind the agent's back is restored and reported", async () => {
    sh(["ip", "netns", "exec", lab.ns, "wg", "set", cfg.ifname, "peer", peer1.public_key, "remove"]);
    expect(lab.wgPeers(cfg.ifname).has(peer1.public_key)).toBe(false);
    await waitFor("peer restored by reconcile", () => lab.wgPeers(cfg.ifname).has(peer1.public_key), 20_000);
    const drift = await waitFor("drift record at the CP", async () => {
      const r = await lab.admin("GET", `/admin/nodes/${nodeId}/records/drift`);
      const recs = r.json?.records ?? [];
      return recs.length > 0 ? recs : undefined;
    });
    expect(JSON.stringify(drift)).toContain(`peer ${peer1.node_id}`);
  }, 40_000);

  test("SIGTERM: clean exit 0 within the drain limit; userspace device ends with the service", async () => {
    const t0 = Date.now();
    const code = await agent.kill(15_000);
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(agent.err).toContain("stopped");
    await waitFor("UAPI socket gone", () => !existsSync(`/var/run/wireguard/${cfg.ifname}.sock`), 5_000);
    expect(existsSync(cfg.socket)).toBe(false);
  }, 30_000);

  test("offline restart rebuilds the tunnels from cache", async () => {
    await lab.cp!.proc.kill();
    agent = lab.startAgent(cfg.configPath);
    const peers = await waitFor("peers from cache", () => {
      const p = lab.wgPeers(cfg.ifname);
      return p.has(peer1.public_key) && p.has(peer2.public_key) ? p : undefined;
    }, 20_000);
    expect(peers.size).toBe(2);
    const r = await waitFor("status", async () => {
      const x = await lab.cli(["status", "--json", "--socket", cfg.socket]);
      return x.code !== 3 ? x : undefined;
    });
    const d = JSON.parse(r.out).data;
    expect(d.phase).toBe("connected");
    expect(d.control_plane.connectivity).toBe("offline");
  }, 40_000);

  test("deregister via the daemon: CP unreachable → 69 and nothing torn down; --force tears down", async () => {
    const r1 = await lab.cli(["deregister", "--yes", "--json", "--socket", cfg.socket]);
    expect(r1.code).toBe(69);
    expect(lab.wgPeers(cfg.ifname).size).toBe(2);
    const r2 = await lab.cli(["deregister", "--yes", "--force", "--json", "--socket", cfg.socket]);
    expect(r2.code).toBe(69);
    expect(JSON.parse(r2.out).data.tornDown).toBe(true);
    expect(await agent.exited).toBe(0);
    expect(sh(["ip", "-n", lab.ns, "link", "show", cfg.ifname], true).code).not.toBe(0);
    // The policy table went with it (same nftables path as enforcement).
    if (Bun.which("nft")) expect(sh(["ip", "netns", "exec", lab.ns, "nft", "list", "table", "inet", "plexd"], true).code).not.toBe(0);
    expect(existsSync(join(cfg.dataDir, "identity.json"))).toBe(true); // kept without --purge
    const st = await lab.cli(["status", "--socket", cfg.socket]);
    expect(st.code).toBe(3);
  }, 60_000);
});
