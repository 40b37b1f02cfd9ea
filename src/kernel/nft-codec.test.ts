/**
 * Pure lowering/raising: values, elements, rules. No addon, no kernel.
 */
import { describe, expect, test } from "bun:test";
import type { FwRule, FwSet, NftExpr } from "./firewall-api.ts";
import { NFT_SET_CONCAT, NFT_SET_ELEM_INTERVAL_END, NFT_SET_INTERVAL } from "./nft-consts.ts";
import { lowerRule, lowerSet } from "./nft-lower.ts";
import { keyTypesOf, normaliseRule, raiseRule } from "./nft-raise.ts";
import { NftValueError, decodeElements, encodeElement, formatRange, normaliseElement, parseRange } from "./nft-values.ts";

const hex = (b: Uint8Array | undefined) => (b ? Buffer.from(b).toString("hex") : undefined);

describe("values", () => {
  test("ranges: single, CIDR (host bits cleared), explicit, ports", () => {
    expect(parseRange("v4", "10.1.2.3/24")).toEqual([0x0a010200n, 0x0a0102ffn]);
    expect(formatRange("v4", 0x0a010200n, 0x0a0102ffn)).toBe("10.1.2.0/24");
    expect(formatRange("v4", 0x0a010201n, 0x0a010205n)).toBe("10.1.2.1-10.1.2.5");
    expect(formatRange("v6", ...parseRange("v6", "FD00:0::1"))).toBe("fd00::1");
    expect(formatRange("v6", ...parseRange("v6", "fd00::/8"))).toBe("fd00::/8");
    expect(formatRange("u16", ...parseRange("u16", "1000-2000"))).toBe("1000-2000");
    expect(formatRange("u16", ...parseRange("u16", "22"))).toBe(22);
    for (const [k, v] of [["v4", "10.0.0.1/33"], ["v4", "fd00::1"], ["v6", "10.0.0.1"], ["u16", 70000], ["u8", "5-1"], ["u16", -1]] as const)
      expect(() => parseRange(k, v)).toThrow(NftValueError);
  });

  test("single-field interval: start + INTERVAL_END at hi+1, none at the top of the range", () => {
    const set: FwSet = { name: "s", type: ["ipv4_addr"], flags: ["interval"] };
    const w = encodeElement(set, { key: ["10.0.0.0/8"] });
    expect(w.map((e) => [hex(e.key), e.flags ?? 0])).toEqual([["0a000000", 0], ["0b000000", NFT_SET_ELEM_INTERVAL_END]]);
    expect(encodeElement(set, { key: ["0.0.0.0/0"] })).toHaveLength(1);
    const dumped = [...w, ...encodeElement(set, { key: ["192.168.0.0/16"] }), ...encodeElement(set, { key: ["255.0.0.0/8"] })]
      .reverse()
      .map((e) => ({ key: e.key, flags: e.flags ?? 0 }));
    expect(decodeElements(["ipv4_addr"], NFT_SET_INTERVAL, dumped)).toEqual([
      { key: ["10.0.0.0/8"] },
      { key: ["192.168.0.0/16"] },
      { key: ["255.0.0.0/8"] },
    ]);
  });

  test("concatenations pad each field to 4 bytes; intervals carry KEY_END", () => {
    const set: FwSet = { name: "a", type: ["ipv4_addr", "inet_proto", "inet_service"], flags: ["interval"] };
    const [e] = encodeElement(set, { key: ["10.100.1.0/24", 17, "1000-2000"] });
    expect(hex(e?.key)).toBe("0a640100" + "11000000" + "03e80000");
    expect(hex(e?.keyEnd)).toBe("0a6401ff" + "11000000" + "07d00000");
    expect(() => encodeElement({ ...set, flags: [] }, { key: ["10.100.1.0/24", 17, 22] })).toThrow(NftValueError);
    expect(() => encodeElement(set, { key: ["10.100.1.1", 6] })).toThrow(/2 fields/);
    expect(normaliseElement(set, { key: ["10.100.1.7/24", "6", "22"] })).toEqual({ key: ["10.100.1.0/24", 6, 22] });
  });

  test("set key types pack 6 bits per field and unpack again", () => {
    const s = lowerSet({ name: "a", type: ["ipv4_addr", "inet_proto", "inet_service"], flags: ["interval"] });
    expect(s).toMatchObject({ keyType: (7 << 12) | (12 << 6) | 13, keyLen: 12, fieldLens: [4, 1, 2] });
    expect(s.flags).toBe(NFT_SET_INTERVAL | NFT_SET_CONCAT);
    expect(keyTypesOf(s.keyType)).toEqual(["ipv4_addr", "inet_proto", "inet_service"]);
    expect(lowerSet({ name: "p", type: ["inet_service"] })).toMatchObject({ keyLen: 2, flags: 0 });
    expect(keyTypesOf(41)).toBeUndefined();
  });
});

const rules: FwRule[] = [
  { chain: "input", match: [{ match: "cmp", field: "meta iifname", value: "plexd0" }], stmt: [{ stmt: "verdict", verdict: "jump", chain: "mesh_in" }] },
  { chain: "c", match: [{ match: "ct", states: ["established", "related"] }], stmt: [{ stmt: "verdict", verdict: "accept" }] },
  {
    chain: "c",
    match: [
      { match: "cmp", field: "ip saddr", value: "10.100.0.0/16" },
      { match: "cmp", field: "ip6 daddr", value: "fd00::1", op: "neq" },
      { match: "cmp", field: "meta l4proto", value: 17 },
      { match: "cmp", field: "th dport", value: 51820 },
    ],
    stmt: [{ stmt: "counter" }, { stmt: "log", prefix: "x ", level: "debug" }, { stmt: "verdict", verdict: "drop" }],
  },
  {
    chain: "c",
    match: [{ match: "set", fields: ["ip6 saddr", "meta l4proto", "th dport"], set: "allow6", neg: true }],
    stmt: [{ stmt: "verdict", verdict: "return" }],
  },
];

describe("rules", () => {
  test("lower → raise is the identity on plexd's vocabulary (inet adds and hides nfproto)", () => {
    for (const r of rules) {
      const x = lowerRule(r, "inet");
      expect(raiseRule({ chain: r.chain, handle: 1, exprs: x }, "inet")).toEqual({ ...normaliseRule(r, "inet"), handle: 1, stmt: normaliseRule(r, "inet").stmt.map((s) => (s.stmt === "counter" ? { ...s, packets: 0, bytes: 0 } : s)) });
    }
  });

  test("an ip field in inet gets exactly one meta nfproto guard, none in an ip table", () => {
    const r = rules[2] as FwRule;
    const nfp = (x: NftExpr[]) => x.filter((e) => e.type === "meta" && e.key === 15).length;
    expect(nfp(lowerRule(r, "inet"))).toBe(2); // ipv4 and ipv6 fields
    expect(nfp(lowerRule({ ...r, match: [{ match: "cmp", field: "meta nfproto", value: 2 }, ...r.match.slice(0, 1)] }, "inet"))).toBe(1);
    expect(nfp(lowerRule({ ...r, match: r.match.slice(0, 1) }, "ip"))).toBe(0);
  });

  test("concatenated lookup loads consecutive 32-bit registers", () => {
    const x = lowerRule(rules[3] as FwRule, "inet").filter((e) => e.type === "payload" || e.type === "meta");
    expect(x.map((e) => ("dreg" in e ? e.dreg : -1))).toEqual([1, 1, 12, 13]); // nfproto, ip6 saddr (4 words), l4proto, dport
  });

  test("foreign expressions come back opaque, never as an empty rule", () => {
    const r = raiseRule({ chain: "c", handle: 9, exprs: [{ type: "unknown", name: "nat" }] }, "inet");
    expect(r.opaque).toHaveLength(1);
    expect(r.match).toEqual([]);
  });

  test("values the kernel cannot take are refused while lowering", () => {
    expect(() => lowerRule({ chain: "c", match: [{ match: "cmp", field: "meta iifname", value: "x".repeat(16) }], stmt: [] }, "inet")).toThrow(NftValueError);
    expect(() => lowerRule({ chain: "c", match: [{ match: "cmp", field: "th dport", value: "1-2" }], stmt: [] }, "inet")).toThrow(NftValueError);
    expect(() => lowerRule({ chain: "c", match: [{ match: "cmp", field: "ip saddr", value: "10.0.0.1-10.0.0.3" }], stmt: [] }, "inet")).toThrow(/CIDR/);
  });
});
