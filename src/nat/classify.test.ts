import { describe, expect, test } from "bun:test";
import { classifyMappings, discoverMappings, type Mapping } from "./classify.ts";
import { FakeClock, FakeTransport, txidOf } from "./fake-transport.test-util.ts";
import { encodeBindingSuccess } from "./stun-codec.ts";

const m = (ip: string, port: number, serverIp = "203.0.113.10"): Mapping => ({ server: `${serverIp}:3478`, serverIp, serverPort: 3478, ip, port });
const local = (addrs: string[], mode: "raw" | "fallback" = "raw") => ({ localAddresses: new Set(addrs), listenPort: 51820, mode });

describe("classifyMappings (§5.3 table)", () => {
  test("first mapping = (local address, listen port) → none", () => {
    expect(classifyMappings([m("198.51.100.40", 51820), m("198.51.100.40", 51820, "203.0.113.20")], local(["198.51.100.40"]))).toEqual({
      natType: "none",
      publicEndpoint: "198.51.100.40:51820",
    });
    // One answer suffices for none.
    expect(classifyMappings([m("198.51.100.40", 51820)], local(["198.51.100.40"]))?.natType).toBe("none");
  });
  test("port-preserving NAT (same port, NOT a local address) is full_cone, never none", () => {
    expect(classifyMappings([m("198.51.100.11", 51820), m("198.51.100.11", 51820, "203.0.113.20")], local(["192.168.1.2"]))?.natType).toBe("full_cone");
  });
  test("local address but another port → not none (a NAT on the host itself)", () => {
    expect(classifyMappings([m("198.51.100.40", 40001), m("198.51.100.40", 40001, "x")], local(["198.51.100.40"]))?.natType).toBe("full_cone");
  });
  test("mappings differ in port or IP → symmetric; public endpoint = first mapping", () => {
    expect(classifyMappings([m("198.51.100.13", 1000), m("198.51.100.13", 2000, "y")], local([]))).toEqual({ natType: "symmetric", publicEndpoint: "198.51.100.13:1000" });
    expect(classifyMappings([m("198.51.100.13", 1000), m("198.51.100.14", 1000, "y")], local([]))?.natType).toBe("symmetric");
  });
  test("only one answer and not none → unknown; none → null", () => {
    expect(classifyMappings([m("198.51.100.11", 51820)], local([]))?.natType).toBe("unknown");
    expect(classifyMappings([], local([]))).toBeNull();
  });
  test("fallback mode: mapped IP with the listen port, unknown", () => {
    expect(classifyMappings([m("198.51.100.11", 40123)], local([], "fallback"))).toEqual({ natType: "unknown", publicEndpoint: "198.51.100.11:51820" });
  });
});

describe("discoverMappings", () => {
  /** A fake Internet: each server IP answers with mapping(serverIp) unless listed as dead. */
  function net(mapping: (serverIp: string) => [string, number] | null) {
    const clock = new FakeClock();
    const t = new FakeTransport(clock, (s) => {
      const r = mapping(s.dstIp);
      return r ? [{ delayMs: 20, d: { srcIp: s.dstIp, srcPort: s.dstPort, payload: encodeBindingSuccess(txidOf(s), r[0], r[1]) } }] : [];
    });
    return { clock, t };
  }
  const resolve = async (h: string) => {
    const table: Record<string, string> = { "a.example": "203.0.113.10", "b.example": "203.0.113.20", "a2.example": "203.0.113.10" };
    if (/^\d+\.\d+\.\d+\.\d+$/.test(h)) return h;
    const ip = table[h];
    if (!ip) throw new Error(`ENOTFOUND ${h}`);
    return ip;
  };

  test("stops after two servers with different IPs; skips a same-IP server and dead ones", async () => {
    const { clock, t } = net((ip) => (ip === "203.0.113.30" ? null : ["198.51.100.11", 51820]));
    const c = await discoverMappings(["a.example:3478", "a2.example", "nx.example", "203.0.113.30", "b.example", "203.0.113.40"], {
      transport: t,
      resolve,
      timeoutMs: 1000,
      localAddresses: new Set(["192.168.1.2"]),
      listenPort: 51820,
      now: clock.now,
    });
    expect(c).toMatchObject({ ok: true, natType: "full_cone", publicEndpoint: "198.51.100.11:51820" });
    expect(c.mappings.map((x) => x.server)).toEqual(["a.example:3478", "b.example"]);
    expect(c.failures.map((f) => f.server)).toEqual(["a2.example", "nx.example", "203.0.113.30"]);
    expect(c.failures[2]?.reason).toContain("timeout");
    expect(t.sent.some((s) => s.dstIp === "203.0.113.40")).toBe(false);
  });

  test("symmetric when the two servers see different ports", async () => {
    let port = 40000;
    const { clock, t } = net(() => ["198.51.100.13", port++]);
    const c = await discoverMappings(["203.0.113.10", "203.0.113.20"], { transport: t, resolve, timeoutMs: 1000, localAddresses: new Set(), listenPort: 51820, now: clock.now });
    expect(c).toMatchObject({ ok: true, natType: "symmetric", publicEndpoint: "198.51.100.13:40000" });
  });

  test("nobody answers → failed with reasons", async () => {
    const { clock, t } = net(() => null);
    const c = await discoverMappings(["203.0.113.10", "203.0.113.20"], { transport: t, resolve, timeoutMs: 500, localAddresses: new Set(), listenPort: 51820, now: clock.now });
    expect(c).toMatchObject({ ok: false, reason: "no STUN server answered" });
    expect(c.failures).toHaveLength(2);
  });

  test("overall deadline cuts the server loop", async () => {
    const { clock, t } = net(() => null);
    const c = await discoverMappings(["203.0.113.10", "203.0.113.20", "203.0.113.30"], {
      transport: t,
      resolve,
      timeoutMs: 5000,
      localAddresses: new Set(),
      listenPort: 51820,
      now: clock.now,
      deadline: clock.t + 7000,
    });
    expect(c.ok).toBe(false);
    expect(c.failures.map((f) => f.reason)).toEqual([expect.stringContaining("timeout"), expect.stringContaining("2000 ms"), "discovery deadline reached"]);
  });

  test("fallback transport needs one answer only", async () => {
    const clock = new FakeClock();
    const t = new FakeTransport(
      clock,
      (s) => [{ delayMs: 5, d: { srcIp: s.dstIp, srcPort: s.dstPort, payload: encodeBindingSuccess(txidOf(s), "198.51.100.11", 40404) } }],
      "fallback",
    );
    const c = await discoverMappings(["203.0.113.10", "203.0.113.20"], { transport: t, resolve, timeoutMs: 500, localAddresses: new Set(), listenPort: 51820, now: clock.now });
    expect(c).toMatchObject({ ok: true, natType: "unknown", publicEndpoint: "198.51.100.11:51820" });
    expect(t.sent).toHaveLength(1);
  });
});
