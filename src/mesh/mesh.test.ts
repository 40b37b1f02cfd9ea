import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Peer, Policy } from "../controlplane/schemas.ts";
import { generateKeyPair } from "../identity/keys.ts";
import { FakeKernel } from "../kernel/fake.ts";
import { readMeshCache } from "./cache.ts";
import { MeshController, type FirewallInput, type MeshFirewall } from "./controller.ts";
import { computeDesired, type MeshSettings } from "./desired.ts";

const me = generateKeyPair();
const self = { nodeId: "n_self", meshIp: "10.100.0.1", privateKey: me.privateKey, publicKey: me.publicKey };
const settings: MeshSettings = { ifname: "plexdt0", listenPort: 51820, mtu: 1420, keepaliveSec: 25, policyDefault: "allow", policyEnabled: true };
const mkPeer = (id: string, ip: string, extra: Partial<Peer> = {}): Peer => ({
  id,
  public_key: generateKeyPair().publicKey,
  mesh_ip: ip,
  endpoint: "",
  allowed_ips: [`${ip}/32`],
  psk: "",
  ...extra,
});

function fakeFirewall(onApply?: () => void, answer: Array<{ type: string; detail: string }> = []) {
  const fw = {
    inputs: [] as FirewallInput[],
    removed: 0,
    fail: undefined as Error | undefined,
    async apply(input: FirewallInput) {
      onApply?.();
      if (fw.fail) throw fw.fail;
      fw.inputs.push(structuredClone(input) as FirewallInput);
      return answer;
    },
    async remove() {
      fw.removed++;
    },
  } satisfies MeshFirewall & Record<string, unknown>;
  return fw;
}

describe("computeDesired", () => {
  test("interface, address, route, peers minus self", () => {
    const a = mkPeer("n_a", "10.100.0.2", { endpoint: "192.0.2.2:51820", psk: generateKeyPair().publicKey });
    const selfAsPeer = { ...mkPeer("n_self", "10.100.0.1"), public_key: me.publicKey };
    const d = computeDesired(settings, self, [a, selfAsPeer], []);
    expect(d.addresses).toEqual(["10.100.0.1/32"]);
    expect(d.routes).toEqual([{ dst: "10.100.0.0/16", src: "10.100.0.1" }]);
    expect(d.mtu).toBe(1420);
    expect(d.device.privateKey).toBe(me.privateKey);
    expect(d.device.listenPort).toBe(51820);
    expect(d.device.peers).toEqual([
      { publicKey: a.public_key, presharedKey: a.psk, endpoint: "192.0.2.2:51820", allowedIps: ["10.100.0.2/32"], persistentKeepalive: 25 },
    ]);
  });
  test("policy deny without policies → no peers; allow rule → that peer", () => {
    const a = mkPeer("n_a", "10.100.0.2");
    const b = mkPeer("n_b", "10.100.0.3");
    const deny = { ...settings, policyDefault: "deny" as const };
    expect(computeDesired(deny, self, [a, b], []).device.peers).toEqual([]);
    const pol: Policy = { id: "p", rules: [{ src: "n_self", dst: "n_b", port: 0, protocol: "", action: "allow" }] };
    expect(computeDesired(deny, self, [a, b], [pol]).device.peers.map((p) => p.publicKey)).toEqual([b.public_key]);
  });
  test("bridge subnets outside the mesh get their own route", () => {
    const br = mkPeer("n_br", "10.100.255.1", { allowed_ips: ["10.100.255.1/32", "172.16.0.0/24"] });
    expect(computeDesired(settings, self, [br], []).routes).toEqual([{ dst: "10.100.0.0/16", src: "10.100.0.1" }, { dst: "172.16.0.0/24" }]);
  });
});

describe("MeshController", () => {
  let dir: string;
  let kernel: FakeKernel;
  let mesh: MeshController;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "plexd-mesh-"));
    kernel = new FakeKernel();
    mesh = new MeshController({ kernel, dataDir: dir, settings: () => settings, self: () => self });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test("first apply builds everything; second apply changes nothing", async () => {
    const a = mkPeer("n_a", "10.100.0.2");
    mesh.commit({ peers: [a], policies: [] });
    const first = await mesh.apply();
    expect(first.errors).toEqual([]);
    expect(first.corrections.map((c) => c.type)).toContain("peer_added");
    const link = await kernel.readInterface("plexdt0");
    expect(link).toMatchObject({ mtu: 1420, up: true, addresses: ["10.100.0.1/32"] });
    expect(kernel.routesOf("plexdt0")).toEqual(["10.100.0.0/16 src 10.100.0.1"]);
    expect((await kernel.readDevice("plexdt0"))!.peers).toHaveLength(1);
    const writes = kernel.writes;
    const second = await mesh.apply();
    expect(second.corrections).toEqual([]);
    expect(kernel.writes).toBe(writes);
  });

  test("cache files are 0600 and restore the state", async () => {
    const a = mkPeer("n_a", "10.100.0.2");
    const pol: Policy = { id: "p", rules: [{ src: "*", dst: "*", port: 0, protocol: "", action: "allow" }] };
    mesh.commit({ peers: [a], policies: [pol] });
    expect(statSync(join(dir, "cache/peers.json")).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "cache")).mode & 0o777).toBe(0o700);
    const c = readMeshCache(dir);
    expect(c.found).toBe(true);
    expect(c.peers).toEqual([a]);
    expect(c.policies).toEqual([pol]);
  });

  test("drift behind our back is corrected and named", async () => {
    const a = mkPeer("n_a", "10.100.0.2", { endpoint: "192.0.2.2:51820" });
    const b = mkPeer("n_b", "10.100.0.3");
    mesh.commit({ peers: [a, b], policies: [] });
    await mesh.apply();
    kernel.mutateDevice("plexdt0", (d) => {
      d.peers = d.peers.filter((p) => p.publicKey !== b.public_key);
      const pa = d.peers.find((p) => p.publicKey === a.public_key)!;
      pa.persistentKeepalive = 0;
    });
    await kernel.setAddresses("plexdt0", []);
    await kernel.setRoutes("plexdt0", []);
    const planned = await mesh.plan();
    expect(planned).toContainEqual({ type: "peer_added", detail: "peer n_b" });
    const r = await mesh.apply();
    expect(r.corrections).toContainEqual({ type: "peer_added", detail: "peer n_b" });
    expect(r.corrections).toContainEqual({ type: "peer_updated", detail: "peer n_a: keepalive" });
    expect(r.corrections).toContainEqual({ type: "interface_restored", detail: "address restored" });
    expect(r.corrections).toContainEqual({ type: "route_restored", detail: "10.100.0.0/16 dev plexdt0" });
  });

  test("deleted interface is recreated", async () => {
    mesh.commit({ peers: [mkPeer("n_a", "10.100.0.2")], policies: [] });
    await mesh.apply();
    await kernel.deleteInterface("plexdt0");
    const r = await mesh.apply();
    expect(r.corrections[0]).toEqual({ type: "interface_restored", detail: "plexdt0 recreated" });
    expect((await kernel.readDevice("plexdt0"))!.peers).toHaveLength(1);
  });

  test("a failing step is reported and the others still run", async () => {
    mesh.commit({ peers: [mkPeer("n_a", "10.100.0.2")], policies: [] });
    kernel.failNext("setRoutes", { code: "EBUSY" });
    const r = await mesh.apply();
    expect(r.errors.map((e) => e.step)).toEqual(["routes"]);
    expect((await kernel.readDevice("plexdt0"))!.peers).toHaveLength(1);
    expect(mesh.healthy).toBe(false);
  });

  test("teardown removes peers, the interface and (through the firewall seam) the table", async () => {
    const fw = fakeFirewall();
    mesh = new MeshController({ kernel, dataDir: dir, settings: () => settings, self: () => self, firewall: fw });
    mesh.commit({ peers: [mkPeer("n_a", "10.100.0.2")], policies: [] });
    await mesh.apply();
    const r = await mesh.teardown();
    expect(r.errors).toEqual([]);
    expect(await kernel.readInterface("plexdt0")).toBeNull();
    expect(fw.removed).toBe(1);
    expect(r.corrections.map((c) => c.type)).toContain("firewall_deleted");
  });

  test("firewall is step 7: after the device, with policies, identity and every peer's mesh IP; only firewall_restored is taken", async () => {
    const order: string[] = [];
    const fw = fakeFirewall(() => order.push(`firewall after ${kernel.calls.at(-1)}`), [
      { type: "policy_added", detail: "policy p" },
      { type: "firewall_restored", detail: "table inet plexd differed from desired ruleset" },
    ]);
    mesh = new MeshController({ kernel, dataDir: dir, settings: () => settings, self: () => self, firewall: fw });
    const pol: Policy = { id: "p", rules: [{ src: "n_a", dst: "*", port: 22, protocol: "tcp", action: "allow" }] };
    mesh.commit({ peers: [mkPeer("n_a", "10.100.0.2"), mkPeer("n_b", "10.100.0.3")], policies: [pol] });
    const r = await mesh.apply();
    expect(order).toEqual(["firewall after applyDevice plexdt0"]);
    expect(fw.inputs[0]).toEqual({ policies: [pol], local: { nodeId: "n_self", meshIp: "10.100.0.1" }, peers: [{ id: "n_a", meshIp: "10.100.0.2" }, { id: "n_b", meshIp: "10.100.0.3" }] });
    expect(r.corrections.filter((c) => c.type.startsWith("policy") || c.type.startsWith("firewall"))).toEqual([
      { type: "firewall_restored", detail: "table inet plexd differed from desired ruleset" },
    ]);
    fw.fail = new Error("nft: EPERM");
    const bad = await mesh.apply();
    expect(bad.errors).toEqual([{ step: "firewall", message: "nft: EPERM" }]);
    expect(mesh.healthy).toBe(false);
  });

  test("NAT endpoint write: update-only, keepalive 0 then N, cached peer updated, and reconcile does not write the old endpoint back", async () => {
    const a = mkPeer("n_a", "10.100.0.2", { endpoint: "192.0.2.2:51820" });
    mesh.commit({ peers: [a], policies: [] });
    await mesh.apply();
    const now = Date.now();
    kernel.simulateHandshake("plexdt0", a.public_key, now - 1_000);
    const before = kernel.calls.length;
    await mesh.setPeerEndpoint({ peerId: "n_a", publicKey: a.public_key, endpoint: "198.51.100.9:40000", keepaliveSec: 25 });
    expect(kernel.calls.slice(before)).toEqual(["updatePeers plexdt0", "updatePeers plexdt0"]);
    const dev = await kernel.readDevice("plexdt0");
    expect(dev!.peers[0]).toMatchObject({ endpoint: "198.51.100.9:40000", persistentKeepalive: 25 });
    // The cache write is debounced (docs/decisions.md "Mesh apply fast path"); flush = stop.
    expect(mesh.cachePending).toBe(true);
    await mesh.flush();
    expect(readMeshCache(dir).peers[0]!.endpoint).toBe("198.51.100.9:40000");
    expect(mesh.writtenEndpoint(a.public_key)).toBe("198.51.100.9:40000");
    expect((await mesh.apply()).corrections).toEqual([]);
    expect(await mesh.natPeers()).toEqual([{ peerId: "n_a", publicKey: a.public_key, endpoint: "198.51.100.9:40000", lastHandshakeMs: now - 1_000 }]);
  });

  test("roaming rule on the apply path is refined by what plexd last wrote", async () => {
    const a = mkPeer("n_a", "10.100.0.2", { endpoint: "192.0.2.2:51820" });
    mesh.commit({ peers: [a], policies: [] });
    await mesh.apply();
    // Handshake seconds ago on the endpoint WE wrote; the CP now says the peer moved (rebinding).
    kernel.simulateHandshake("plexdt0", a.public_key, Date.now() - 2_000);
    mesh.commit({ peers: [{ ...a, endpoint: "192.0.2.99:51820" }] });
    const r = await mesh.apply();
    expect(r.corrections).toEqual([{ type: "peer_updated", detail: "peer n_a: endpoint" }]);
    // WireGuard roamed to a path we never wrote: kept.
    kernel.simulateHandshake("plexdt0", a.public_key, Date.now() - 2_000, "203.0.113.5:6000");
    mesh.commit({ peers: [{ ...a, endpoint: "192.0.2.100:51820" }] });
    expect((await mesh.apply()).corrections).toEqual([]);
    expect((await kernel.readDevice("plexdt0"))!.peers[0]!.endpoint).toBe("203.0.113.5:6000");
  });

  test("peer views show visibility and configuration", async () => {
    const a = mkPeer("n_a", "10.100.0.2");
    mesh.commit({ peers: [a], policies: [] });
    await mesh.apply();
    const v = await mesh.peerViews();
    expect(v).toEqual([expect.objectContaining({ id: "n_a", visible: true, configured: true })]);
    expect(await mesh.peerCount()).toBe(1);
  });
});
