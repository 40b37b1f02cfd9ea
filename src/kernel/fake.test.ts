import { describe, expect, test } from "bun:test";
import { NativeError } from "./errors.ts";
import { FakeKernel } from "./fake.ts";
import { generateKeyPair } from "./keys.ts";
import type { DesiredDevice } from "./types.ts";
import { keepRoamedEndpoint } from "./wg-diff.ts";

const dev = generateKeyPair();
const [a, b] = [generateKeyPair().publicKey, generateKeyPair().publicKey];

function want(peers: DesiredDevice["peers"]): DesiredDevice {
  return { ifname: "plexd0", privateKey: dev.privateKey, listenPort: 51820, peers };
}

async function ready(): Promise<FakeKernel> {
  const k = new FakeKernel();
  expect(await k.ensureInterface("plexd0", { mtu: 1420 })).toBe("created");
  return k;
}

describe("FakeKernel WireGuard", () => {
  test("apply, read back, no-change apply writes nothing", async () => {
    const k = await ready();
    const c1 = await k.applyDevice(want([{ publicKey: a, allowedIps: ["10.100.0.2/32"], persistentKeepalive: 25 }]));
    expect(c1).toMatchObject({ privateKey: true, listenPort: true, added: [a] });
    const d = await k.readDevice("plexd0");
    expect(d?.publicKey).toBe(dev.publicKey);
    expect(d?.peers).toEqual([expect.objectContaining({ publicKey: a, allowedIps: ["10.100.0.2/32"], persistentKeepalive: 25 })]);
    const writes = k.writes;
    const c2 = await k.applyDevice(want([{ publicKey: a, allowedIps: ["10.100.0.2"], persistentKeepalive: 25 }]));
    expect(c2.empty).toBe(true);
    expect(k.writes).toBe(writes);
  });

  test("allowed IP moving between peers (removal/update/add order)", async () => {
    const k = await ready();
    await k.applyDevice(want([{ publicKey: a, allowedIps: ["10.100.0.2/32", "10.9.0.0/16"] }]));
    const c = await k.applyDevice(want([{ publicKey: a, allowedIps: ["10.100.0.2/32"] }, { publicKey: b, allowedIps: ["10.9.0.0/16"] }]));
    expect(c).toMatchObject({ added: [b], updated: [{ publicKey: a, fields: ["allowed_ips"] }] });
    const d = await k.readDevice("plexd0");
    expect(d?.peers.map((p) => p.allowedIps)).toEqual([["10.100.0.2/32"], ["10.9.0.0/16"]]);
  });

  test("drift is corrected against the device, not the previous call", async () => {
    const k = await ready();
    const desired = want([{ publicKey: a, allowedIps: ["10.100.0.2/32"], endpoint: "192.0.2.1:51820" }]);
    await k.applyDevice(desired);
    k.mutateDevice("plexd0", (d) => {
      d.peers[0]!.allowedIps = [];
      d.peers.push({ publicKey: b, presharedKey: null, endpoint: null, allowedIps: [], persistentKeepalive: 0, lastHandshakeMs: null, rxBytes: 0, txBytes: 0 });
    });
    const c = await k.applyDevice(desired);
    expect(c).toMatchObject({ removed: [b], updated: [{ publicKey: a, fields: ["allowed_ips"] }] });
  });

  test("roaming rule keeps a fresh roamed endpoint", async () => {
    const k = await ready();
    const desired = want([{ publicKey: a, allowedIps: [], endpoint: "192.0.2.1:51820" }]);
    await k.applyDevice(desired);
    k.simulateHandshake("plexd0", a, 1_000_000, "198.51.100.3:4000");
    const opts = { keepEndpoint: keepRoamedEndpoint(), now: () => 1_060_000 };
    expect((await k.applyDevice(desired, opts)).keptEndpoints).toEqual([a]);
    expect((await k.readDevice("plexd0"))?.peers[0]?.endpoint).toBe("198.51.100.3:4000");
    const later = { keepEndpoint: keepRoamedEndpoint(), now: () => 1_000_000 + 181_000 };
    expect((await k.applyDevice(desired, later)).updated).toEqual([{ publicKey: a, fields: ["endpoint"] }]);
    expect((await k.readDevice("plexd0"))?.peers[0]?.endpoint).toBe("192.0.2.1:51820");
  });

  test("apply on a missing device → NO_DEVICE", async () => {
    const k = new FakeKernel();
    await expect(k.applyDevice(want([]))).rejects.toMatchObject({ name: "KernelError", code: "NO_DEVICE" });
    expect(await k.readDevice("plexd0")).toBeNull();
  });
});

describe("FakeKernel failure injection", () => {
  test("next call fails with a real NativeError, then works", async () => {
    const k = await ready();
    k.failNext("applyDevice", { code: "EPERM", errno: 1 });
    const err = await k.applyDevice(want([])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NativeError);
    expect(err).toMatchObject({ name: "NativeError", code: "EPERM", errno: 1, op: "applyDevice", object: "plexd0" });
    await expect(k.applyDevice(want([]))).resolves.toMatchObject({ privateKey: true });
  });

  test("times: consecutive failures", async () => {
    const k = await ready();
    k.failNext("readDevice", { code: "EBUSY", times: 2 });
    await expect(k.readDevice("plexd0")).rejects.toMatchObject({ code: "EBUSY" });
    await expect(k.readDevice("plexd0")).rejects.toMatchObject({ code: "EBUSY" });
    await expect(k.readDevice("plexd0")).resolves.not.toBeNull();
  });

  test("partial apply (non-atomic set) is repaired by the next apply", async () => {
    const k = await ready();
    const desired = want([
      { publicKey: a, allowedIps: ["10.100.0.2/32"] },
      { publicKey: b, allowedIps: ["10.100.0.3/32"] },
    ]);
    k.failNext("applyDevice", { code: "EINVAL", afterPeers: 1 });
    await expect(k.applyDevice(desired)).rejects.toMatchObject({ code: "EINVAL" });
    expect((await k.readDevice("plexd0"))?.peers.map((p) => p.publicKey)).toEqual([a]);
    expect(await k.applyDevice(desired)).toMatchObject({ added: [b], removed: [], updated: [] });
  });
});

describe("FakeKernel links, routes, targeted peer writes", () => {
  test("ensureInterface adopts; foreign kind is an error", async () => {
    const k = await ready();
    expect(await k.ensureInterface("plexd0", { mtu: 1380 })).toBe("adopted");
    expect(await k.readInterface("plexd0")).toMatchObject({ kind: "wireguard", mtu: 1380, up: true });
    k.addLink("eth9", "veth");
    await expect(k.ensureInterface("eth9", { mtu: 1420 })).rejects.toMatchObject({ code: "WRONG_LINK_KIND" });
  });

  test("addresses and routes are declarative", async () => {
    const k = await ready();
    expect(await k.setAddresses("plexd0", ["10.100.0.1/32"])).toEqual({ added: ["10.100.0.1/32"], removed: [] });
    expect(await k.setAddresses("plexd0", ["10.100.0.9"])).toEqual({ added: ["10.100.0.9/32"], removed: ["10.100.0.1/32"] });
    expect((await k.readInterface("plexd0"))?.addresses).toEqual(["10.100.0.9/32"]);
    await k.setRoutes("plexd0", [{ dst: "10.100.0.0/16", src: "10.100.0.9" }, { dst: "10.5.1.0/24" }]);
    expect(await k.setRoutes("plexd0", [{ dst: "10.100.0.0/16", src: "10.100.0.9" }])).toEqual({ added: [], removed: ["10.5.1.0/24"] });
    expect(k.routesOf("plexd0")).toEqual(["10.100.0.0/16 src 10.100.0.9"]);
    await expect(k.setAddresses("nope0", [])).rejects.toMatchObject({ code: "NO_DEVICE" });
  });

  test("updatePeers is update-only and applies sections in order; delete removes link and device", async () => {
    const k = await ready();
    await k.applyDevice(want([{ publicKey: a, allowedIps: ["10.100.0.2/32"], persistentKeepalive: 25 }]));
    await k.updatePeers("plexd0", [
      { publicKey: a, endpoint: "192.0.2.7:51820", persistentKeepalive: 0 },
      { publicKey: a, persistentKeepalive: 25 },
      { publicKey: b, endpoint: "192.0.2.8:51820" },
    ]);
    const d = await k.readDevice("plexd0");
    expect(d?.peers.map((p) => [p.publicKey, p.endpoint, p.persistentKeepalive])).toEqual([[a, "192.0.2.7:51820", 25]]);
    k.failNext("updatePeers", { code: "ENODEV" });
    await expect(k.updatePeers("plexd0", [])).rejects.toBeInstanceOf(NativeError);
    await k.deleteInterface("plexd0");
    expect(await k.readInterface("plexd0")).toBeNull();
    expect(await k.readDevice("plexd0")).toBeNull();
    expect(k.calls).toContain("deleteInterface plexd0");
    await k.close();
    await expect(k.readDevice("plexd0")).rejects.toThrow(/closed/);
  });
});
