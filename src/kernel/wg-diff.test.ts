import { describe, expect, test } from "bun:test";
import { generateKeyPair } from "./keys.ts";
import type { DesiredDevice, WgDevice, WgPeer } from "./types.ts";
import { diffDevice, keepRoamedEndpoint } from "./wg-diff.ts";

const dev = generateKeyPair();
const [a, b, c] = [generateKeyPair().publicKey, generateKeyPair().publicKey, generateKeyPair().publicKey];
const psk = generateKeyPair().publicKey; // any 32 bytes

function peer(publicKey: string, over: Partial<WgPeer> = {}): WgPeer {
  return { publicKey, presharedKey: null, endpoint: null, allowedIps: [], persistentKeepalive: 0, lastHandshakeMs: null, rxBytes: 0, txBytes: 0, ...over };
}

function actual(peers: WgPeer[], over: Partial<WgDevice> = {}): WgDevice {
  return { ifname: "wg0", privateKey: dev.privateKey, publicKey: dev.publicKey, listenPort: 51820, fwmark: 0, peers, ...over };
}

function desired(peers: DesiredDevice["peers"], over: Partial<DesiredDevice> = {}): DesiredDevice {
  return { ifname: "wg0", privateKey: dev.privateKey, listenPort: 51820, peers, ...over };
}

describe("diffDevice", () => {
  test("equal device → empty plan; allowed IPs compared as normalised sets", () => {
    const act = actual([peer(a, { allowedIps: ["10.100.0.2/32", "fd00::/64"], endpoint: "192.0.2.1:51820", persistentKeepalive: 25, presharedKey: psk })]);
    const plan = diffDevice(
      act,
      desired([{ publicKey: a, allowedIps: ["FD00:0::/64", "10.100.0.2", "10.100.0.2/32"], endpoint: "192.0.2.1:51820", persistentKeepalive: 25, presharedKey: psk }]),
    );
    expect(plan.changes.empty).toBe(true);
    expect(plan.set.peers).toEqual([]);
    expect(plan.set.privateKey).toBeUndefined();
  });

  test("null actual → everything is added, private key and port set", () => {
    const plan = diffDevice(null, desired([{ publicKey: a, allowedIps: ["10.100.0.2/32"] }]));
    expect(plan.changes).toMatchObject({ privateKey: true, listenPort: true, added: [a], removed: [], updated: [], empty: false });
    expect(plan.set.peers).toEqual([{ publicKey: a, replaceAllowedIps: true, allowedIps: ["10.100.0.2/32"] }]);
  });

  test("removals, then updates, then additions", () => {
    const act = actual([peer(a, { allowedIps: ["10.100.0.2/32"] }), peer(b, { allowedIps: ["10.100.0.3/32"] })]);
    const plan = diffDevice(
      act,
      desired([
        { publicKey: c, allowedIps: ["10.100.0.2/32"], endpoint: "192.0.2.9:1", persistentKeepalive: 25, presharedKey: psk },
        { publicKey: b, allowedIps: ["10.100.0.3/32", "10.5.0.0/16"] },
      ]),
    );
    expect(plan.set.peers.map((p) => [p.publicKey, p.remove ? "remove" : p.updateOnly ? "update" : "add"])).toEqual([
      [a, "remove"],
      [b, "update"],
      [c, "add"],
    ]);
    expect(plan.set.peers[1]).toEqual({ publicKey: b, updateOnly: true, replaceAllowedIps: true, allowedIps: ["10.100.0.3/32", "10.5.0.0/16"] });
    expect(plan.set.peers[2]).toEqual({
      publicKey: c,
      presharedKey: psk,
      endpoint: "192.0.2.9:1",
      persistentKeepalive: 25,
      replaceAllowedIps: true,
      allowedIps: ["10.100.0.2/32"],
    });
    expect(plan.changes).toMatchObject({ added: [c], removed: [a], updated: [{ publicKey: b, fields: ["allowed_ips"] }] });
  });

  test("each field reported by its drift name; unchanged fields not written", () => {
    const act = actual([peer(a, { allowedIps: ["10.100.0.2/32"], endpoint: "192.0.2.1:1", persistentKeepalive: 0, presharedKey: psk })]);
    const plan = diffDevice(act, desired([{ publicKey: a, allowedIps: ["10.100.0.2/32"], endpoint: "192.0.2.2:1", persistentKeepalive: 25 }]));
    expect(plan.changes.updated).toEqual([{ publicKey: a, fields: ["endpoint", "psk", "keepalive"] }]);
    expect(plan.set.peers).toEqual([{ publicKey: a, updateOnly: true, endpoint: "192.0.2.2:1", presharedKey: null, persistentKeepalive: 25 }]);
  });

  test("absent desired endpoint leaves the device's alone; v6 endpoints compare normalised", () => {
    const act = actual([peer(a, { endpoint: "192.0.2.1:1" }), peer(b, { endpoint: "[fd00::1]:51820" })]);
    const plan = diffDevice(act, desired([{ publicKey: a, allowedIps: [], endpoint: "" }, { publicKey: b, allowedIps: [], endpoint: "[FD00:0:0::1]:51820" }]));
    expect(plan.changes.empty).toBe(true);
  });

  test("listen port / fwmark: absent = leave alone, different = set", () => {
    expect(diffDevice(actual([]), desired([], { listenPort: undefined })).changes.empty).toBe(true);
    const p = diffDevice(actual([]), desired([], { listenPort: 1, fwmark: 7 }));
    expect(p.set).toEqual({ listenPort: 1, fwmark: 7, peers: [] });
    expect(p.changes).toMatchObject({ listenPort: true, fwmark: true, privateKey: false });
  });

  test("private key change", () => {
    const other = generateKeyPair();
    const p = diffDevice(actual([]), desired([], { privateKey: other.privateKey }));
    expect(p.set.privateKey).toBe(other.privateKey);
    expect(p.changes.privateKey).toBe(true);
  });

  describe("roaming keep rule (lifecycle.md §5.4)", () => {
    const now = 1_000_000_000;
    const keep = keepRoamedEndpoint();
    const want = desired([{ publicKey: a, allowedIps: [], endpoint: "192.0.2.2:1" }]);

    test("recent handshake on a different endpoint → kept, reported", () => {
      const act = actual([peer(a, { endpoint: "198.51.100.7:4444", lastHandshakeMs: now - 179_000 })]);
      const p = diffDevice(act, want, { keepEndpoint: keep, now: () => now });
      expect(p.changes.empty).toBe(true);
      expect(p.changes.keptEndpoints).toEqual([a]);
    });

    test("stale handshake → overwritten", () => {
      const act = actual([peer(a, { endpoint: "198.51.100.7:4444", lastHandshakeMs: now - 181_000 })]);
      const p = diffDevice(act, want, { keepEndpoint: keep, now: () => now });
      expect(p.changes.updated).toEqual([{ publicKey: a, fields: ["endpoint"] }]);
    });

    test("never handshook → overwritten; without the rule → overwritten", () => {
      const act = actual([peer(a, { endpoint: "198.51.100.7:4444" })]);
      expect(diffDevice(act, want, { keepEndpoint: keep, now: () => now }).changes.updated).toHaveLength(1);
      const recent = actual([peer(a, { endpoint: "198.51.100.7:4444", lastHandshakeMs: now })]);
      expect(diffDevice(recent, want, { now: () => now }).changes.updated).toHaveLength(1);
    });

    test("other fields still updated while the endpoint is kept", () => {
      const act = actual([peer(a, { endpoint: "198.51.100.7:4444", lastHandshakeMs: now, persistentKeepalive: 5 })]);
      const p = diffDevice(act, want, { keepEndpoint: keep, now: () => now });
      expect(p.changes.updated).toEqual([{ publicKey: a, fields: ["keepalive"] }]);
      expect(p.set.peers[0]?.endpoint).toBeUndefined();
    });

    test("bad window rejected", () => expect(() => keepRoamedEndpoint(-1)).toThrow(/windowMs/));

    test("refined by what plexd last wrote: kernel still holds our write → the new endpoint is set (NAT rebinding)", () => {
      const written = new Map([[a, "198.51.100.7:4444"]]);
      const rule = keepRoamedEndpoint(undefined, (k) => written.get(k));
      const act = actual([peer(a, { endpoint: "198.51.100.7:4444", lastHandshakeMs: now - 2_000 })]);
      const p = diffDevice(act, want, { keepEndpoint: rule, now: () => now });
      expect(p.changes.updated).toEqual([{ publicKey: a, fields: ["endpoint"] }]);
      expect(p.set.peers[0]?.endpoint).toBe("192.0.2.2:1");
      // The literal rule would have held the old endpoint back.
      expect(diffDevice(act, want, { keepEndpoint: keep, now: () => now }).changes.keptEndpoints).toEqual([a]);
    });

    test("refined rule: kernel roamed away from our write → kept; unknown write → literal rule", () => {
      const written = new Map([[a, "203.0.113.1:1"]]);
      const rule = keepRoamedEndpoint(undefined, (k) => written.get(k));
      const act = actual([peer(a, { endpoint: "198.51.100.7:4444", lastHandshakeMs: now - 2_000 })]);
      expect(diffDevice(act, want, { keepEndpoint: rule, now: () => now }).changes.keptEndpoints).toEqual([a]);
      const unknown = keepRoamedEndpoint(undefined, () => undefined);
      expect(diffDevice(act, want, { keepEndpoint: unknown, now: () => now }).changes.keptEndpoints).toEqual([a]);
    });
  });

  describe("desired states that could never verify are rejected", () => {
    test.each([
      ["duplicate peer", () => desired([{ publicKey: a, allowedIps: [] }, { publicKey: a, allowedIps: [] }]), /duplicate peer/],
      ["same allowed IP on two peers", () => desired([{ publicKey: a, allowedIps: ["10.0.0.1"] }, { publicKey: b, allowedIps: ["10.0.0.1/32"] }]), /two peers/],
      ["self as peer", () => desired([{ publicKey: dev.publicKey, allowedIps: [] }]), /device itself/],
      ["bad CIDR", () => desired([{ publicKey: a, allowedIps: ["10.0.0.0/40"] }]), /not a CIDR/],
      ["bad key", () => desired([{ publicKey: "x", allowedIps: [] }]), /public key/],
      ["bad keepalive", () => desired([{ publicKey: a, allowedIps: [], persistentKeepalive: 70000 }]), /persistentKeepalive/],
      ["bad port", () => desired([], { listenPort: 65536 }), /listenPort/],
    ])("%s", (_n, make, msg) => {
      expect(() => diffDevice(actual([]), make())).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT", message: expect.stringMatching(msg) }));
    });
  });

  // Speed is measured by bench/kernel-wg.ts, never asserted here.
  test("5,000 peers, nothing changed: an empty plan", () => {
    const peers = Array.from({ length: 5000 }, (_, i) => ({
      publicKey: Buffer.alloc(32, 0).fill(i & 0xff, 0, 1).fill((i >> 8) & 0xff, 1, 2).toString("base64"),
      allowedIps: [`10.100.${i >> 8}.${i & 0xff}/32`],
      persistentKeepalive: 25,
    }));
    const act = actual(peers.map((p) => peer(p.publicKey, { allowedIps: p.allowedIps, persistentKeepalive: 25 })));
    const plan = diffDevice(act, desired(peers));
    expect(plan.changes.empty).toBe(true);
  });
});
