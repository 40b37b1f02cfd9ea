/**
 * Fuzz-style robustness: random, truncated and bit-flipped buffers fed to wgParseGet and the
 * attribute parser (fixed seed, so a failure reproduces). The only acceptable outcomes are a
 * parsed value or a NativeError; a crash kills the test process, anything else fails.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { seededRandom as rng } from "../util/seeded-random.test-util.ts";
import { type AddonInternals, loadAddon } from "./addon.ts";
import type { NativeAddon } from "./addon-api.ts";
import { NativeError } from "./errors.ts";
import {
  AF_INET,
  AF_INET6,
  DEV,
  NLM_F_MULTI,
  PEER,
  WG_CMD_GET_DEVICE,
  allowedIp,
  genlMsg,
  key,
  nest,
  nla,
  sockaddrIn,
  strz,
  u16,
  u32,
} from "./netlink-encode.test-util.ts";

let addon: NativeAddon & AddonInternals;
beforeAll(() => {
  addon = loadAddon();
});

/** Runs fn; returns "ok" or "error" and fails the test on any non-NativeError throw. */
function outcome(fn: () => unknown): "ok" | "error" {
  try {
    fn();
    return "ok";
  } catch (e) {
    if (!(e instanceof NativeError)) throw e;
    expect(["EINVAL", "EBADMSG", "ENOMEM"].includes(e.code) || e.errno > 0).toBe(true);
    return "error";
  }
}

const valid = genlMsg(0x1b, NLM_F_MULTI, 1, WG_CMD_GET_DEVICE, [
  nla(DEV.IFINDEX, u32(3)),
  nla(DEV.IFNAME, strz("plexd0")),
  nla(DEV.PRIVATE_KEY, key(1)),
  nla(DEV.LISTEN_PORT, u16(51820)),
  nest(DEV.PEERS, [
    nest(0, [
      nla(PEER.PUBLIC_KEY, key(2)),
      nla(PEER.ENDPOINT, sockaddrIn([10, 0, 0, 1], 1)),
      nest(PEER.ALLOWEDIPS, [allowedIp(AF_INET, Uint8Array.of(10, 0, 0, 0), 8), allowedIp(AF_INET6, new Uint8Array(16), 0)]),
    ]),
    nest(0, [nla(PEER.PUBLIC_KEY, key(3)), nla(PEER.KEEPALIVE, u16(25))]),
  ]),
]);

describe("fuzz (seeded)", () => {
  test("valid seed message parses", () => {
    expect(addon.wgParseGet([valid]).peers).toHaveLength(2);
  });

  test("every truncation of a valid reply: parsed or NativeError", () => {
    const seen = { ok: 0, error: 0 };
    for (let n = 0; n <= valid.length; n++) seen[outcome(() => addon.wgParseGet([valid.subarray(0, n)]))]++;
    expect(seen.error).toBeGreaterThan(0);
    expect(seen.ok).toBeGreaterThan(0); // n = 0 and n = full length at least
  });

  test("3000 mutated replies (byte flips, length-field edits, splices)", () => {
    const r = rng(0x5eed);
    const seen = { ok: 0, error: 0 };
    for (let i = 0; i < 3000; i++) {
      const m = valid.slice();
      const edits = 1 + Math.floor(r() * 4);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(r() * m.length);
        const kind = r();
        if (kind < 0.5) m[at] = Math.floor(r() * 256);
        else if (kind < 0.8) m[at & ~3] = Math.floor(r() * 64); // attribute/nlmsg length low bytes
        else m[at] = (m[at] ?? 0) ^ (1 << Math.floor(r() * 8));
      }
      const cut = r() < 0.3 ? Math.floor(r() * m.length) : m.length;
      seen[outcome(() => addon.wgParseGet([m.subarray(0, cut), m.subarray(cut)]))]++;
    }
    expect(seen.ok + seen.error).toBe(3000);
    expect(seen.error).toBeGreaterThan(100);
  });

  test("3000 random buffers into wgParseGet and the attribute parser", () => {
    const r = rng(42);
    let parsedAttrs = 0;
    for (let i = 0; i < 3000; i++) {
      const len = Math.floor(r() * 300);
      const b = new Uint8Array(len);
      for (let j = 0; j < len; j++) b[j] = Math.floor(r() * 256);
      // Give half of them a plausible netlink header so the parser gets past the first check.
      if (len >= 20 && r() < 0.5) {
        new DataView(b.buffer).setUint32(0, Math.min(len, 16 + Math.floor(r() * len)), true);
        new DataView(b.buffer).setUint16(4, 0x1b, true);
      }
      outcome(() => addon.wgParseGet([b]));
      const max = Math.floor(r() * 12);
      if (outcome(() => addon._nlParseAttrs(b, max)) === "ok") parsedAttrs++;
      // Attribute streams with mostly-sane lengths.
      const s = new Uint8Array(4 * Math.floor(r() * 40));
      const v = new DataView(s.buffer);
      for (let o = 0; o + 4 <= s.length; o += 4) v.setUint16(o, Math.floor(r() * 24), true);
      if (outcome(() => addon._nlParseAttrs(s, 16)) === "ok") parsedAttrs++;
    }
    expect(parsedAttrs).toBeGreaterThan(0);
  });

  test("attribute parser: bounds", () => {
    // One u32 attribute of type 3, then 2 bytes of padding-sized garbage: accepted.
    const one = Uint8Array.of(8, 0, 3, 0, 1, 2, 3, 4, 0, 0);
    expect(addon._nlParseAttrs(one, 5)).toEqual([[3, 4]]);
    // Length beyond the buffer: EINVAL.
    expect(() => addon._nlParseAttrs(Uint8Array.of(9, 0, 3, 0, 1, 2, 3, 4), 5)).toThrow(NativeError);
    // Length below the header size: EINVAL.
    expect(() => addon._nlParseAttrs(Uint8Array.of(3, 0, 1, 0), 5)).toThrow(NativeError);
    // Types above max are skipped, not stored.
    expect(addon._nlParseAttrs(Uint8Array.of(4, 0, 9, 0), 5)).toEqual([]);
  });
});
