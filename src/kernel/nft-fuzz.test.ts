/**
 * The nf_tables dump parser (native/nft.c via the addon's pure nftParseDump) on valid, mutated,
 * truncated and random input. Seeds are real messages: what the builder emits for NEW* ops has
 * the same attribute layout as the kernel's dump replies, so build → parse is also a round trip.
 * Fixed seed: a failure reproduces.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { seededRandom as rng } from "../util/seeded-random.test-util.ts";
import { loadAddon } from "./addon.ts";
import { NativeError } from "./errors.ts";
import type { FwBatch, NftAddon } from "./firewall-api.ts";
import { lowerBatch, raiseDump } from "./nft.ts";

const batch: FwBatch = {
  family: "inet",
  table: "plexd",
  ops: [
    { op: "addTable" },
    { op: "addChain", chain: { name: "input", hook: "input", priority: -5, policy: "drop" } },
    { op: "addChain", chain: { name: "mesh_in" } },
    { op: "addSet", set: { name: "allow4", type: ["ipv4_addr", "inet_proto", "inet_service"], flags: ["interval"] } },
    { op: "addSet", set: { name: "deny6", type: ["ipv6_addr"], flags: ["interval"] } },
    { op: "addElements", set: "allow4", elements: [{ key: ["10.100.0.2", 6, 22] }, { key: ["10.100.1.0/24", 17, "1000-2000"] }] },
    { op: "addElements", set: "deny6", elements: [{ key: ["fd00::/8"] }, { key: ["fe80::1"] }] },
    {
      op: "addRule",
      rule: {
        chain: "mesh_in",
        match: [
          { match: "cmp", field: "meta iifname", value: "plexd0" },
          { match: "ct", states: ["established", "related"] },
          { match: "cmp", field: "ip daddr", value: "10.100.0.0/16", op: "neq" },
          { match: "set", fields: ["ip saddr", "meta l4proto", "th dport"], set: "allow4", neg: true },
        ],
        stmt: [{ stmt: "counter" }, { stmt: "log", prefix: "plexd-deny ", level: "debug" }, { stmt: "verdict", verdict: "goto", chain: "input" }],
      },
    },
  ],
};

let addon: NftAddon;
let seeds: Uint8Array[];
beforeAll(() => {
  addon = loadAddon() as unknown as NftAddon;
  // Drop BATCH_BEGIN/END; keep the nf_tables messages.
  seeds = addon.nftBuildBatch(lowerBatch(batch), 1).slice(1, -1);
});

describe("nft dump parser", () => {
  test("build → parse → raise gives back the batch's objects", () => {
    const d = raiseDump("inet", "plexd", addon.nftParseDump(seeds));
    expect(d.exists).toBe(true);
    expect(d.chains.map((c) => c.name)).toEqual(["input", "mesh_in"]);
    expect(d.chains[0]).toMatchObject({ hook: "input", priority: -5, policy: "drop" });
    expect(d.sets.map((s) => [s.name, s.type, s.flags])).toEqual([
      ["allow4", ["ipv4_addr", "inet_proto", "inet_service"], ["interval"]],
      ["deny6", ["ipv6_addr"], ["interval"]],
    ]);
    expect(d.sets[0]?.elements).toEqual([{ key: ["10.100.0.2", 6, 22] }, { key: ["10.100.1.0/24", 17, "1000-2000"] }]);
    expect(d.sets[1]?.elements).toEqual([{ key: ["fd00::/8"] }, { key: ["fe80::1"] }]);
    const rule = batch.ops.at(-1);
    if (rule?.op !== "addRule") throw new Error("fixture");
    expect(d.rules).toEqual([{ ...rule.rule, handle: 0, stmt: [{ stmt: "counter", packets: 0, bytes: 0 }, ...rule.rule.stmt.slice(1)] }]);
  });

  test("20,000 mutated, truncated and random inputs: a dump or NativeError, never a crash", () => {
    const next = rng(0x5eed);
    const pick = <T>(a: T[]): T => a[Math.floor(next() * a.length)] as T;
    let parsed = 0;
    let rejected = 0;
    for (let i = 0; i < 20_000; i++) {
      const base = pick(seeds);
      let m = Uint8Array.from(base);
      const mode = i % 5;
      if (mode === 0) m = m.subarray(0, Math.floor(next() * m.length)); // truncate
      else if (mode === 1) for (let k = 0; k < 1 + next() * 8; k++) m[Math.floor(next() * m.length)] = Math.floor(next() * 256);
      else if (mode === 2) {
        // Corrupt a 16-bit length somewhere (nlattr lengths are the usual attack surface).
        const at = 20 + 2 * Math.floor((next() * (m.length - 22)) / 2);
        new DataView(m.buffer).setUint16(at, Math.floor(next() * 0xffff), true);
      } else if (mode === 3) m = Uint8Array.from({ length: Math.floor(next() * 300) }, () => Math.floor(next() * 256));
      else {
        // Random garbage after a valid header.
        const tail = Uint8Array.from({ length: Math.floor(next() * 200) }, () => Math.floor(next() * 256));
        m = new Uint8Array([...base.subarray(0, 20), ...tail]);
        new DataView(m.buffer).setUint32(0, m.length, true);
      }
      try {
        const d = addon.nftParseDump([m]);
        raiseDump("inet", "plexd", d); // the TS side must cope with whatever the C side let through
        parsed++;
      } catch (e) {
        if (!(e instanceof NativeError)) {
          // raiseDump may reject values it cannot represent; anything else is a bug.
          if (!(e instanceof Error && /NftValueError|not an address|wrong address/.test(`${e.name} ${e.message}`))) throw e;
        }
        rejected++;
      }
    }
    expect(parsed + rejected).toBe(20_000);
    expect(parsed).toBeGreaterThan(1000);
    expect(rejected).toBeGreaterThan(1000);
  });
});
