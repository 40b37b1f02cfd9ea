import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { checkAllowedIp, isValidMeshIp, meshIpProblem } from "./peers.ts";
import { HeartbeatResponseSchema, PolicySchema, RegisterResponseSchema, SigningKeysSchema, StateResponseSchema, parsePeers } from "./schemas.ts";

const K = "ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=";

describe("mesh IP", () => {
  test("inside 10.100.0.0/16, not network or broadcast", () => {
    expect(isValidMeshIp("10.100.0.1")).toBe(true);
    expect(isValidMeshIp("10.100.255.254")).toBe(true);
    expect(meshIpProblem("10.100.0.0")).toContain("network");
    expect(meshIpProblem("10.100.255.255")).toContain("broadcast");
    expect(meshIpProblem("10.101.0.1")).toContain("outside");
    expect(isValidMeshIp("10.100.1")).toBe(false);
    expect(isValidMeshIp("10.100.01.1")).toBe(false);
    expect(isValidMeshIp("10.100.1.256")).toBe(false);
    expect(isValidMeshIp("::1")).toBe(false);
  });
});

describe("allowed_ips", () => {
  test.each(["0.0.0.0/0", "::/0", "127.0.0.1/32", "127.0.0.0/8", "0.0.0.0/1", "169.254.1.0/24", "224.0.0.1", "239.0.0.0/8", "::1/128", "fe80::/64", "ff02::1"])(
    "%s rejected",
    (cidr) => {
      expect(checkAllowedIp(cidr).ok).toBe(false);
    },
  );
  test("normal prefixes accepted and normalised", () => {
    expect(checkAllowedIp("10.100.0.5/32")).toEqual({ ok: true, cidr: "10.100.0.5/32" });
    expect(checkAllowedIp("10.100.0.5")).toEqual({ ok: true, cidr: "10.100.0.5/32" });
    expect(checkAllowedIp("192.168.7.9/24")).toEqual({ ok: true, cidr: "192.168.7.0/24" });
    expect(checkAllowedIp("fd00::1/64")).toEqual({ ok: true, cidr: "fd00::/64" });
    expect(checkAllowedIp("garbage").ok).toBe(false);
  });
});

describe("peers (tolerant reader)", () => {
  test("peer_id alias, null arrays, unknown fields, per-item rejection", () => {
    const r = parsePeers([
      { peer_id: "n_a", public_key: K, mesh_ip: "10.100.0.2", allowed_ips: null, extra: 1 },
      { id: "n_b", public_key: K, mesh_ip: "10.100.0.3", allowed_ips: ["10.100.0.3/32"], endpoint: "1.2.3.4:51820", psk: K },
      { id: "n_bad", public_key: K, mesh_ip: "10.100.0.4", allowed_ips: ["0.0.0.0/0"] },
      { id: "n_nokey", mesh_ip: "10.100.0.5" },
      { public_key: K, mesh_ip: "10.100.0.6" },
      "not an object",
    ]);
    expect(r.peers).toEqual([
      { id: "n_a", public_key: K, mesh_ip: "10.100.0.2", endpoint: "", allowed_ips: [], psk: "" },
      { id: "n_b", public_key: K, mesh_ip: "10.100.0.3", endpoint: "1.2.3.4:51820", allowed_ips: ["10.100.0.3/32"], psk: K },
    ]);
    expect(r.rejected.map((x) => [x.index, x.id])).toEqual([
      [2, "n_bad"],
      [3, "n_nokey"],
      [4, undefined],
      [5, undefined],
    ]);
    expect(r.rejected[0]!.reason).toContain("default route");
    expect(parsePeers(null)).toEqual({ peers: [], rejected: [] });
  });

  test("endpoint-only updates may omit public_key and mesh_ip", () => {
    expect(parsePeers([{ id: "n_a", endpoint: "1.2.3.4:1" }], false).peers).toHaveLength(1);
  });
});

describe("responses", () => {
  test("register: every required field checked", () => {
    const ok = { node_id: "n_1", mesh_ip: "10.100.0.1", signing_public_key: K, node_secret_key: "abc=", peers: null };
    expect(v.safeParse(RegisterResponseSchema, ok).success).toBe(true);
    for (const bad of [
      { ...ok, node_id: "" },
      { ...ok, mesh_ip: "10.100.0.0" },
      { ...ok, mesh_ip: "192.168.1.1" },
      { ...ok, signing_public_key: "short" },
      { ...ok, node_secret_key: "" },
      { ...ok, node_secret_key: "a\nb" },
      { node_id: "n_1", mesh_ip: "10.100.0.1", signing_public_key: K },
    ]) {
      expect(v.safeParse(RegisterResponseSchema, bad).success).toBe(false);
    }
  });

  test("heartbeat: missing bools are false", () => {
    expect(v.parse(HeartbeatResponseSchema, {})).toEqual({ reconcile: false, rotate_keys: false });
    expect(v.parse(HeartbeatResponseSchema, { reconcile: true, future: 1 })).toEqual({ reconcile: true, rotate_keys: false });
  });

  test("state: null arrays empty, optional sections absent", () => {
    const s = v.parse(StateResponseSchema, { peers: null, policies: null, data: null, secret_refs: null });
    expect(s.peers).toEqual({ peers: [], rejected: [] });
    expect(s.policies).toEqual([]);
    expect(s.metadata).toEqual({});
    expect(s.signing_keys).toBeUndefined();
    expect(s.bridge_config).toBeUndefined();
  });

  test("policies: src/dst forms, port needs protocol", () => {
    const ok = (rule: object) => v.safeParse(PolicySchema, { id: "p", rules: [{ action: "allow", ...rule }] }).success;
    expect(ok({ src: "n_a", dst: "*" })).toBe(true);
    expect(ok({ src: "10.100.0.0/24", dst: "10.100.0.7", port: 22, protocol: "tcp" })).toBe(true);
    expect(ok({ src: "*", dst: "*", protocol: "icmp" })).toBe(true);
    expect(ok({ src: "192.168.0.1", dst: "*" })).toBe(false);
    expect(ok({ src: "*", dst: "*", port: 22 })).toBe(false);
    expect(ok({ src: "*", dst: "*", port: 70000, protocol: "tcp" })).toBe(false);
    expect(ok({ src: "*", dst: "*", action: "maybe" })).toBe(false);
  });

  test("signing keys: previous empty/null → null, transition checked", () => {
    expect(v.parse(SigningKeysSchema, { current: K, previous: "" })).toEqual({ current: K, previous: null, transition_expires: null });
    expect(v.parse(SigningKeysSchema, { current: K, previous: K, transition_expires: "2025-01-15T10:30:00.5+02:00" }).previous).toBe(K);
    expect(v.safeParse(SigningKeysSchema, { current: K, transition_expires: "yesterday" }).success).toBe(false);
  });
});
