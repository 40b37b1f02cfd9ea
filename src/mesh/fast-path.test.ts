/**
 * The mesh event fast path (docs/decisions.md "Mesh apply fast path"): one peer's delta written
 * against the model of what was applied, the peers cache written behind it, and the periodic
 * whole-mesh apply still finding and repairing drift the fast writes never look at.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Peer, Policy } from "../controlplane/schemas.ts";
import { generateKeyPair } from "../identity/keys.ts";
import { FakeKernel } from "../kernel/fake.ts";
import { readMeshCache } from "./cache.ts";
import { MeshController, type FirewallInput, type MeshFirewall } from "./controller.ts";
import type { MeshSettings } from "./desired.ts";

const me = generateKeyPair();
const self = { nodeId: "n_self", meshIp: "10.100.0.1", privateKey: me.privateKey, publicKey: me.publicKey };
const mkPeer = (id: string, ip: string, extra: Partial<Peer> = {}): Peer => ({
  id,
  public_key: generateKeyPair().publicKey,
  mesh_ip: ip,
  endpoint: `192.0.2.${ip.split(".")[3]}:51820`,
  allowed_ips: [`${ip}/32`],
  psk: "",
  ...extra,
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir: string;
let kernel: FakeKernel;
let settings: MeshSettings;
let fwInputs: FirewallInput[];
let mesh: MeshController;

function make(cacheDelayMs = 50, firewall?: MeshFirewall): MeshController {
  return new MeshController({ kernel, dataDir: dir, settings: () => settings, self: () => self, cacheDelayMs, ...(firewall ? { firewall } : {}) });
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "plexd-fast-"));
  kernel = new FakeKernel();
  settings = { ifname: "plexdt0", listenPort: 51820, mtu: 1420, keepaliveSec: 25, policyDefault: "allow", policyEnabled: true };
  fwInputs = [];
  mesh = make();
  mesh.commit({ peers: [mkPeer("n_a", "10.100.0.2"), mkPeer("n_b", "10.100.0.3")], policies: [] });
  expect((await mesh.apply()).errors).toEqual([]); // builds the model
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Calls since `from` without the reads. */
const writesSince = (from: number) => kernel.calls.slice(from).filter((c) => !c.startsWith("read"));

describe("mesh fast path", () => {
  test("peer added: one applyPeers write of that peer only, no read, no whole-device apply", async () => {
    const c = mkPeer("n_c", "10.100.0.4");
    const from = kernel.calls.length;
    const r = await mesh.upsertPeer(c);
    expect(r).toEqual({ corrections: [{ type: "peer_added", detail: "peer n_c" }], errors: [] });
    expect(kernel.calls.slice(from)).toEqual(["applyPeers plexdt0"]);
    const p = (await kernel.readDevice("plexdt0"))!.peers.find((x) => x.publicKey === c.public_key);
    expect(p).toMatchObject({ endpoint: c.endpoint, allowedIps: ["10.100.0.4/32"], persistentKeepalive: 25, presharedKey: null });
    // The same event again (replay) writes nothing.
    const again = kernel.calls.length;
    expect(await mesh.upsertPeer(c)).toEqual({ corrections: [], errors: [] });
    expect(kernel.calls.slice(again)).toEqual([]);
    // And the whole-mesh apply agrees with what the fast path wrote.
    expect((await mesh.apply()).corrections).toEqual([]);
  });

  test("key rotation removes the old key and adds the new one in one write; removal; update", async () => {
    const a = mesh.peer("n_a")!;
    const rotated = { ...a, public_key: generateKeyPair().publicKey };
    const from = kernel.calls.length;
    const r = await mesh.upsertPeer(rotated);
    expect(r.corrections).toEqual([
      { type: "peer_removed", detail: "peer n_a" },
      { type: "peer_added", detail: "peer n_a" },
    ]);
    expect(writesSince(from)).toEqual(["applyPeers plexdt0"]);
    let keys = (await kernel.readDevice("plexdt0"))!.peers.map((p) => p.publicKey);
    expect(keys).toContain(rotated.public_key);
    expect(keys).not.toContain(a.public_key);
    // An allowed IP moving to the new key never sits on two peers: removal is written first.
    expect((await mesh.upsertPeer({ ...mesh.peer("n_b")!, allowed_ips: ["10.100.0.3/32", "10.100.9.0/24"] })).corrections).toEqual([
      { type: "peer_updated", detail: "peer n_b: allowed_ips" },
    ]);
    expect((await mesh.removePeer("n_b")).corrections).toEqual([{ type: "peer_removed", detail: "peer n_b" }]);
    expect(await mesh.removePeer("n_b")).toEqual({ corrections: [], errors: [] });
    keys = (await kernel.readDevice("plexdt0"))!.peers.map((p) => p.publicKey);
    expect(keys).toEqual([rotated.public_key]);
    expect(mesh.peers.map((p) => p.id)).toEqual(["n_a"]);
    expect((await mesh.apply()).corrections).toEqual([]);
  });

  test("bridge subnet of a new peer: routes written before the peer; gone again with it", async () => {
    const br = mkPeer("n_br", "10.100.0.9", { allowed_ips: ["10.100.0.9/32", "172.16.0.0/24"] });
    const from = kernel.calls.length;
    const r = await mesh.upsertPeer(br);
    expect(writesSince(from)).toEqual(["setRoutes plexdt0", "applyPeers plexdt0"]);
    expect(r.corrections).toContainEqual({ type: "route_restored", detail: "172.16.0.0/24 dev plexdt0" });
    expect(kernel.routesOf("plexdt0")).toEqual(["10.100.0.0/16 src 10.100.0.1", "172.16.0.0/24"]);
    await mesh.removePeer("n_br");
    expect(kernel.routesOf("plexdt0")).toEqual(["10.100.0.0/16 src 10.100.0.1"]);
  });

  test("invisible peer (policy deny) is not written; an allowed-IP conflict falls back to the whole apply", async () => {
    settings = { ...settings, policyDefault: "deny" };
    const pol: Policy = { id: "p", rules: [{ src: "n_self", dst: "n_c", port: 0, protocol: "", action: "allow" }] };
    mesh.commit({ policies: [pol] });
    expect((await mesh.apply()).corrections).toEqual([
      { type: "peer_removed", detail: "peer n_a" },
      { type: "peer_removed", detail: "peer n_b" },
    ]);
    const from = kernel.calls.length;
    expect((await mesh.upsertPeer(mkPeer("n_d", "10.100.0.5"))).corrections).toEqual([]);
    expect(writesSince(from)).toEqual([]);
    expect((await mesh.upsertPeer(mkPeer("n_c", "10.100.0.4"))).corrections).toEqual([{ type: "peer_added", detail: "peer n_c" }]);
    // n_x claims n_c's address: the whole-device apply decides (and rejects the state, as before).
    settings = { ...settings, policyDefault: "allow" };
    mesh.commit({ policies: [] });
    await mesh.apply();
    const before = kernel.calls.length;
    const r = await mesh.upsertPeer(mkPeer("n_x", "10.100.0.4"));
    expect(kernel.calls.slice(before)).toContain("applyDevice plexdt0");
    expect(r.errors.map((e) => e.step)).toEqual(["peers"]);
  });

  test("no model yet, changed settings, or a failed fast write → the whole-mesh apply", async () => {
    // Settings changed since the model was built (e.g. keepalive after a reload).
    settings = { ...settings, keepaliveSec: 10 };
    let from = kernel.calls.length;
    await mesh.upsertPeer(mkPeer("n_c", "10.100.0.4"));
    expect(kernel.calls.slice(from)).toContain("applyDevice plexdt0");
    // Fast write fails part-way (non-atomic UAPI set): the whole apply repairs at once.
    kernel.failNext("applyPeers", { code: "EIO", afterPeers: 0 });
    from = kernel.calls.length;
    const r = await mesh.upsertPeer(mkPeer("n_d", "10.100.0.5"));
    expect(kernel.calls.slice(from).filter((c) => c.startsWith("apply"))).toEqual(["applyPeers plexdt0", "applyDevice plexdt0"]);
    expect(r.errors).toEqual([]);
    expect(r.corrections).toContainEqual({ type: "peer_added", detail: "peer n_d" });
    // A fresh controller (restart) has no model: its first event takes the whole apply.
    const fresh = make();
    fresh.load(mesh.peers, []);
    from = kernel.calls.length;
    await fresh.upsertPeer(mkPeer("n_e", "10.100.0.6"));
    expect(kernel.calls.slice(from)).toContain("applyDevice plexdt0");
  });

  test("endpoint change of an applied peer follows the roaming rule (one device read)", async () => {
    const b = mesh.peer("n_b")!;
    kernel.simulateHandshake("plexdt0", b.public_key, Date.now() - 1_000, "203.0.113.5:6000"); // roamed
    let from = kernel.calls.length;
    expect((await mesh.setPeerEndpointFromEvent("n_b", "192.0.2.77:51820")).corrections).toEqual([]);
    expect(kernel.calls.slice(from)).toEqual(["readDevice plexdt0"]);
    expect((await kernel.readDevice("plexdt0"))!.peers.find((p) => p.publicKey === b.public_key)!.endpoint).toBe("203.0.113.5:6000");
    const a = mesh.peer("n_a")!;
    from = kernel.calls.length;
    expect((await mesh.setPeerEndpointFromEvent("n_a", "192.0.2.78:51820")).corrections).toEqual([{ type: "peer_updated", detail: "peer n_a: endpoint" }]);
    expect(kernel.calls.slice(from)).toEqual(["readDevice plexdt0", "applyPeers plexdt0"]);
    expect(mesh.writtenEndpoint(a.public_key)).toBe("192.0.2.78:51820");
    expect(await mesh.setPeerEndpointFromEvent("n_ghost", "192.0.2.1:1")).toEqual({ corrections: [], errors: [] });
  });

  test("a new endpoint is written with keepalive 0 then N in one write (sends to it at once)", async () => {
    const a = mesh.peer("n_a")!;
    const writes: unknown[][] = [];
    const orig = kernel.applyPeers.bind(kernel);
    kernel.applyPeers = async (ifname, sections) => {
      writes.push([...sections]);
      return orig(ifname, sections);
    };
    await mesh.setPeerEndpointFromEvent("n_a", "192.0.2.99:51820");
    expect(writes).toEqual([
      [
        { publicKey: a.public_key, updateOnly: true, endpoint: "192.0.2.99:51820", persistentKeepalive: 0 },
        { publicKey: a.public_key, updateOnly: true, persistentKeepalive: 25 },
      ],
    ]);
    const dev = (await kernel.readDevice("plexdt0"))!.peers.find((p) => p.publicKey === a.public_key)!;
    expect([dev.endpoint, dev.persistentKeepalive]).toEqual(["192.0.2.99:51820", 25]);
  });

  test("handshake tie-break: the greater key turns keepalive on later, for new peers only", async () => {
    const tie = new MeshController({ kernel, dataDir: dir, settings: () => settings, self: () => self, cacheDelayMs: 50, handshakeDeferMs: 40 });
    const keyed = (greater: boolean) => {
      for (;;) {
        const p = mkPeer(greater ? "n_hi" : "n_lo", greater ? "10.100.0.8" : "10.100.0.9");
        if (p.public_key > self.publicKey === greater) return p;
      }
    };
    const lo = keyed(false); // we are greater: we wait
    const hi = keyed(true); // the peer is greater: it waits, we initiate
    const ka = async (key: string) => (await kernel.readDevice("plexdt0"))!.peers.find((p) => p.publicKey === key)?.persistentKeepalive;
    tie.commit({ peers: [...mesh.peers, hi], policies: [] });
    expect((await tie.apply()).errors).toEqual([]); // whole-mesh path
    expect(await ka(hi.public_key)).toBe(25);
    await tie.upsertPeer(lo); // event fast path
    expect(await ka(lo.public_key)).toBe(0);
    await sleep(120);
    expect(await ka(lo.public_key)).toBe(25);
    // An already applied peer is never deferred again (a later apply keeps 25).
    expect((await tie.apply()).errors).toEqual([]);
    expect(await ka(lo.public_key)).toBe(25);
    await tie.close();
  });

  test("firewall: called only when a rule names the changed peer", async () => {
    const fw: MeshFirewall = {
      apply: async (input) => {
        fwInputs.push(input);
        return [];
      },
      remove: async () => {},
    };
    mesh = make(50, fw);
    const pol: Policy = { id: "p", rules: [{ src: "n_self", dst: "n_named", port: 22, protocol: "tcp", action: "allow" }] };
    mesh.commit({ peers: [mkPeer("n_a", "10.100.0.2")], policies: [pol] });
    await mesh.apply();
    fwInputs = [];
    await mesh.upsertPeer(mkPeer("n_other", "10.100.0.7"));
    expect(fwInputs).toHaveLength(0);
    await mesh.upsertPeer(mkPeer("n_named", "10.100.0.8"));
    expect(fwInputs).toHaveLength(1);
    expect(fwInputs[0]!.peers).toContainEqual({ id: "n_named", meshIp: "10.100.0.8" });
  });

});

describe("reconcile after fast-path writes", () => {
  test("drift the fast path cannot see is found and repaired by the whole-mesh apply", async () => {
    const c = mkPeer("n_c", "10.100.0.4");
    await mesh.upsertPeer(c);
    // Behind our back: n_c removed, n_a's allowed IPs changed, a stranger added.
    const stranger = generateKeyPair().publicKey;
    kernel.mutateDevice("plexdt0", (d) => {
      d.peers = d.peers.filter((p) => p.publicKey !== c.public_key);
      d.peers[0]!.allowedIps = ["10.100.0.99/32"];
      d.peers.push({ publicKey: stranger, presharedKey: null, endpoint: null, allowedIps: [], persistentKeepalive: 0, lastHandshakeMs: null, rxBytes: 0, txBytes: 0 });
    });
    // The model still believes n_c is there: a replay of its event writes nothing…
    expect((await mesh.upsertPeer(c)).corrections).toEqual([]);
    // …and the reconcile (whole-mesh apply against a read-back) repairs all of it.
    const r = await mesh.apply();
    expect(r.corrections).toContainEqual({ type: "peer_added", detail: "peer n_c" });
    expect(r.corrections).toContainEqual({ type: "peer_updated", detail: "peer n_a: allowed_ips" });
    expect(r.corrections).toContainEqual({ type: "peer_removed", detail: `peer ${stranger}` });
    expect((await mesh.apply()).corrections).toEqual([]);
    // The rebuilt model serves the next event again.
    const from = kernel.calls.length;
    await mesh.upsertPeer(mkPeer("n_d", "10.100.0.5"));
    expect(kernel.calls.slice(from)).toEqual(["applyPeers plexdt0"]);
  });
});

describe("peers cache behind the fast path", () => {
  test("debounced: coalesces several events into one write; compact JSON", async () => {
    const path = join(dir, "cache/peers.json");
    const before = readFileSync(path, "utf8");
    await mesh.upsertPeer(mkPeer("n_c", "10.100.0.4"));
    await mesh.upsertPeer(mkPeer("n_d", "10.100.0.5"));
    expect(mesh.cachePending).toBe(true);
    expect(readFileSync(path, "utf8")).toBe(before);
    await sleep(150);
    expect(mesh.cachePending).toBe(false);
    const text = readFileSync(path, "utf8");
    expect(text.split("\n").length).toBe(2); // one line + final newline
    expect(readMeshCache(dir).peers.map((p) => p.id)).toEqual(["n_a", "n_b", "n_c", "n_d"]);
  });

  test("close() flushes at stop (no timer needed); a synchronous commit supersedes a pending write", async () => {
    const slow = make(60_000);
    slow.load(mesh.peers, []);
    await slow.apply();
    await slow.upsertPeer(mkPeer("n_c", "10.100.0.4"));
    expect(readMeshCache(dir).peers.map((p) => p.id)).toEqual(["n_a", "n_b"]);
    await slow.close();
    expect(readMeshCache(dir).peers.map((p) => p.id)).toEqual(["n_a", "n_b", "n_c"]);
    // A pending event write, then a reconcile commit of the CP's list: the commit wins.
    await slow.removePeer("n_c");
    const flushing = slow.flush(); // async write of [n_a, n_b] in flight
    slow.commit({ peers: [mkPeer("n_z", "10.100.0.30")] });
    await flushing;
    expect(readMeshCache(dir).peers.map((p) => p.id)).toEqual(["n_z"]);
    expect(existsSync(join(dir, "cache")) && readFileSync(join(dir, "cache/peers.json"), "utf8").endsWith("\n")).toBe(true);
  });

  test("teardown flushes first, so nothing is written after it", async () => {
    const slow = make(60_000);
    slow.load(mesh.peers, []);
    await slow.apply();
    await slow.upsertPeer(mkPeer("n_c", "10.100.0.4"));
    await slow.teardown();
    expect(slow.cachePending).toBe(false);
    expect(readMeshCache(dir).peers.map((p) => p.id)).toEqual(["n_a", "n_b", "n_c"]);
  });
});
