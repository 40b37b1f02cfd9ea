import { describe, expect, test } from "bun:test";
import { decideEndpoint, isIpv4Endpoint, keepaliveFor, planPeerEndpoints, type PeerView } from "./endpoints.ts";

const NOW = 10_000_000;

describe("decideEndpoint (§5.4)", () => {
  test("same endpoint → unchanged; none configured → set", () => {
    expect(decideEndpoint({ desired: "a:1", current: "a:1", lastHandshakeMs: NOW, nowMs: NOW })).toBe("unchanged");
    expect(decideEndpoint({ desired: "a:1", current: null, lastHandshakeMs: null, nowMs: NOW })).toBe("set");
  });
  test("plain rule (lastApplied unknown): differs + handshake ≤ 180 s → keep; older or never → set", () => {
    expect(decideEndpoint({ desired: "a:1", current: "b:2", lastHandshakeMs: NOW - 180_000, nowMs: NOW })).toBe("keep_roamed");
    expect(decideEndpoint({ desired: "a:1", current: "b:2", lastHandshakeMs: NOW - 180_001, nowMs: NOW })).toBe("set");
    expect(decideEndpoint({ desired: "a:1", current: "b:2", lastHandshakeMs: null, nowMs: NOW })).toBe("set");
  });
  test("kernel still holds what plexd wrote (no roaming): the CP's newer mapping wins despite a recent handshake", () => {
    expect(decideEndpoint({ desired: "new:1", current: "old:1", lastApplied: "old:1", lastHandshakeMs: NOW - 5_000, nowMs: NOW })).toBe("set");
  });
  test("kernel moved away from what plexd wrote (roamed) + recent handshake → keep", () => {
    expect(decideEndpoint({ desired: "new:1", current: "lan:1", lastApplied: "old:1", lastHandshakeMs: NOW - 5_000, nowMs: NOW })).toBe("keep_roamed");
  });
});

describe("planPeerEndpoints", () => {
  const peers: PeerView[] = [
    { peerId: "n1", publicKey: "K1", endpoint: null, lastHandshakeMs: null },
    { peerId: "n2", publicKey: "K2", endpoint: "192.168.5.5:51820", lastHandshakeMs: NOW - 1000 },
    { peerId: "n3", publicKey: "K3", endpoint: "198.51.100.3:51820", lastHandshakeMs: NOW },
  ];
  test("sets, keeps, skips unchanged, ignores unknown ids and bad endpoints", () => {
    const plan = planPeerEndpoints(
      [
        { peer_id: "n1", endpoint: "198.51.100.1:51820" },
        { peer_id: "n2", endpoint: "198.51.100.2:51820" },
        { peer_id: "n3", endpoint: "198.51.100.3:51820" },
        { peer_id: "ghost", endpoint: "198.51.100.9:51820" },
        { peer_id: "n1", endpoint: "" },
      ],
      peers,
      new Map(),
      NOW,
    );
    expect(plan).toEqual({
      updates: [{ peerId: "n1", publicKey: "K1", endpoint: "198.51.100.1:51820" }],
      kept: ["n2"],
      unchanged: ["n3"],
      unknown: ["ghost"],
      invalid: ["n1"],
    });
  });
  test("lastApplied map feeds the rule", () => {
    const plan = planPeerEndpoints([{ peer_id: "n2", endpoint: "198.51.100.2:51820" }], peers, new Map([["n2", "192.168.5.5:51820"]]), NOW);
    expect(plan.updates.map((u) => u.peerId)).toEqual(["n2"]);
  });
  test("isIpv4Endpoint", () => {
    expect(isIpv4Endpoint("198.51.100.1:51820")).toBe(true);
    for (const bad of ["", "198.51.100.1", "198.51.100.256:1", "198.51.100.1:0", "198.51.100.1:65536", "[::1]:1", "host:1"]) expect(isIpv4Endpoint(bad)).toBe(false);
  });
});

describe("keepaliveFor", () => {
  test("a NAT in the path always gets keepalive; no NAT keeps the configured value", () => {
    expect(keepaliveFor("full_cone", 25)).toBe(25);
    expect(keepaliveFor("symmetric", 0)).toBe(25);
    expect(keepaliveFor("unknown", 10)).toBe(10);
    expect(keepaliveFor(null, 0)).toBe(25);
    expect(keepaliveFor("none", 0)).toBe(0);
    expect(keepaliveFor("none", 25)).toBe(25);
  });
});
