/**
 * The addon's UDP datagram builder (native/stun_raw.c, used by rawUdpSend) against an
 * independent checksum implementation. Pure: needs the built addon, no privileges.
 */
import { describe, expect, test } from "bun:test";
import { loadAddon } from "../kernel/addon.ts";
import { NativeError } from "../kernel/errors.ts";

function ip(s: string): number[] {
  return s.split(".").map(Number);
}

/** RFC 768: one's-complement sum over pseudo-header + UDP header (checksum 0) + payload. */
function reference(src: string, dst: string, sport: number, dport: number, payload: Uint8Array): Uint8Array {
  const len = 8 + payload.length;
  const udp = new Uint8Array(len);
  udp.set([sport >> 8, sport & 255, dport >> 8, dport & 255, len >> 8, len & 255, 0, 0]);
  udp.set(payload, 8);
  const pseudo = [...ip(src), ...ip(dst), 0, 17, len >> 8, len & 255];
  const all = [...pseudo, ...udp, ...(len % 2 ? [0] : [])];
  let sum = 0;
  for (let i = 0; i < all.length; i += 2) sum += (all[i]! << 8) | all[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  let c = ~sum & 0xffff;
  if (c === 0) c = 0xffff;
  udp[6] = c >> 8;
  udp[7] = c & 255;
  return udp;
}

describe("_rawUdpBuild", () => {
  const addon = loadAddon();
  test("header fields and checksum match the reference (even and odd payloads)", () => {
    for (const n of [0, 1, 20, 21, 100, 1472]) {
      const payload = crypto.getRandomValues(new Uint8Array(n));
      const got = addon._rawUdpBuild("192.168.1.2", 51820, "203.0.113.10", 3478, payload);
      expect(Buffer.from(got).toString("hex")).toBe(Buffer.from(reference("192.168.1.2", "203.0.113.10", 51820, 3478, payload)).toString("hex"));
    }
  });
  test("fixed vector", () => {
    // 20-byte binding request, txid 00..0b, 192.168.1.2:51820 → 203.0.113.10:3478.
    const req = Buffer.from("000100002112a442000102030405060708090a0b", "hex");
    const got = addon._rawUdpBuild("192.168.1.2", 51820, "203.0.113.10", 3478, new Uint8Array(req));
    expect(Buffer.from(got.subarray(0, 8)).toString("hex")).toBe(Buffer.from(reference("192.168.1.2", "203.0.113.10", 51820, 3478, new Uint8Array(req)).subarray(0, 8)).toString("hex"));
    expect(Buffer.from(got.subarray(0, 6)).toString("hex")).toBe("ca6c0d96001c");
  });
  test("bad arguments → NativeError EINVAL / EMSGSIZE", () => {
    expect(() => addon._rawUdpBuild("::1", 1, "203.0.113.10", 3478, new Uint8Array(0))).toThrow(NativeError);
    expect(() => addon._rawUdpBuild("192.0.2.1", 0, "203.0.113.10", 3478, new Uint8Array(0))).toThrow(/port/);
    expect(() => addon._rawUdpBuild("192.0.2.1", 1, "203.0.113.10", 3478, new Uint8Array(1473))).toThrow(expect.objectContaining({ code: "EMSGSIZE" }));
  });
  test("async calls reject (not throw) on bad arguments", async () => {
    await expect(addon.routeSource("nope")).rejects.toMatchObject({ code: "EINVAL" });
    await expect(addon.rawUdpOpen(70000)).rejects.toMatchObject({ code: "EINVAL" });
  });
});
