/**
 * Packed element lists and conditional batches: the addon must build byte-identical
 * messages from a packed list and from element objects, reject malformed packed buffers,
 * and put NFNL_BATCH_GENID into BATCH_BEGIN only when asked.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { loadAddon } from "./addon.ts";
import { NativeError } from "./errors.ts";
import type { FwBatch, NftAddon, NftWireOp } from "./firewall-api.ts";
import { lowerBatch } from "./nft.ts";
import { ElemPacker, packBatch, packElements, type NftPackedBatch } from "./nft-packed.ts";

let addon: NftAddon;
let build: (b: NftPackedBatch, seq: number) => Uint8Array[];
beforeAll(() => {
  addon = loadAddon() as unknown as NftAddon;
  build = addon.nftBuildBatch as unknown as typeof build;
});

const hex = (msgs: Uint8Array[]) => msgs.map((m) => Buffer.from(m).toString("hex"));

const batch: FwBatch = {
  family: "inet",
  table: "plexd",
  ops: [
    { op: "addTable" },
    { op: "addSet", set: { name: "svc", type: ["ipv4_addr", "inet_proto", "inet_service"], flags: ["interval"] } },
    { op: "addSet", set: { name: "addr", type: ["ipv4_addr"], flags: ["interval"] } },
    { op: "addSet", set: { name: "ports", type: ["inet_service"] } },
    {
      op: "addElements",
      set: "svc",
      elements: Array.from({ length: 3000 }, (_, i) => ({ key: [`10.100.${i >> 8}.${i & 255}`, 6, i % 2 ? 1000 + i : "1000-2000"] })),
    },
    { op: "addElements", set: "addr", elements: Array.from({ length: 200 }, (_, i) => ({ key: [`10.${i}.0.0/16`] })).concat([{ key: ["255.255.255.0/24"] }]) },
    { op: "addElements", set: "ports", elements: [{ key: [22] }, { key: [443] }] },
    { op: "deleteElements", set: "svc", elements: Array.from({ length: 100 }, (_, i) => ({ key: [`10.100.${i >> 8}.${i & 255}`, 6, "1000-2000"] })) },
  ],
};

describe("packed element lists", () => {
  test("a packed batch builds exactly the messages of the object batch", () => {
    const wire = lowerBatch(batch);
    const packed = packBatch(wire);
    // Long lists are packed, the two-element one stays objects.
    expect(packed.ops.map((o) => ("packed" in o ? "packed" : o.op))).toEqual([
      "addTable",
      "addSet",
      "addSet",
      "addSet",
      "packed",
      "packed",
      "addElements",
      "packed",
    ]);
    expect(hex(build(packed, 9))).toEqual(hex(addon.nftBuildBatch(wire, 9)));
  });

  test("objects and a packed tail in one op are concatenated in that order", () => {
    const wire = lowerBatch(batch);
    const op = wire.ops[4] as Extract<NftWireOp, { op: "addElements" | "deleteElements" }>;
    const split: NftPackedBatch = {
      ...wire,
      ops: wire.ops.map((o, i) => (i === 4 ? { ...op, elements: op.elements.slice(0, 10), packed: packElements(op.elements.slice(10)) } : o)),
    };
    expect(hex(build(split, 3))).toEqual(hex(addon.nftBuildBatch(wire, 3)));
  });

  test("malformed packed buffers are refused with EINVAL naming the op", () => {
    const bad = (packed: Uint8Array) => () =>
      build({ family: "inet", table: "t", ops: [{ op: "addElements", set: "s", packed }] }, 1);
    expect(bad(new Uint8Array([4, 0, 0]))).toThrow(/ops\[0\]\.packed is truncated/);
    expect(bad(new Uint8Array([4, 0, 0, 0, 1, 2, 3]))).toThrow(/truncated/);
    expect(bad(new Uint8Array([0, 0, 0, 0]))).toThrow(NativeError);
    expect(bad(new Uint8Array([65, 0, 0, 0, ...new Uint8Array(65)]))).toThrow(/64 bytes/);
    expect(bad(new Uint8Array([4, 65, 0, 0, ...new Uint8Array(69)]))).toThrow(/64 bytes/);
    expect(() => build({ family: "inet", table: "t", ops: [{ op: "addElements", set: "s", packed: [1] as never }] }, 1)).toThrow(/Uint8Array/);
  });

  test("the packer grows, keeps flags and refuses what the format cannot hold", () => {
    const p = new ElemPacker(1);
    for (let i = 0; i < 100; i++) p.push({ key: new Uint8Array([i, 1, 2, 3]), ...(i % 2 ? { keyEnd: new Uint8Array([9, 9, 9, 9]) } : {}), flags: i % 3 });
    const b = p.finish();
    expect(b.length).toBe(100 * 8 + 50 * 4);
    expect([...b.subarray(0, 8)]).toEqual([4, 0, 0, 0, 0, 1, 2, 3]);
    expect([...b.subarray(8, 20)]).toEqual([4, 4, 1, 0, 1, 1, 2, 3, 9, 9, 9, 9]);
    expect(() => p.record(0, 0, 0)).toThrow();
    expect(() => p.record(65, 0, 0)).toThrow();
    expect(() => p.record(4, 0, 0x10000)).toThrow();
  });
});

describe("conditional batches", () => {
  const NFNL_BATCH_GENID = 1;
  test("genid rides in BATCH_BEGIN as a big-endian u32; without it BEGIN is unchanged", () => {
    const wire = lowerBatch({ family: "inet", table: "plexd", ops: [{ op: "addTable" }] });
    const plain = addon.nftBuildBatch(wire, 5)[0] as Uint8Array;
    const cond = build({ ...wire, genid: 0x01020304 }, 5)[0] as Uint8Array;
    expect(plain.length).toBe(20);
    expect(cond.length).toBe(28);
    expect(Buffer.from(cond.subarray(20)).toString("hex")).toBe(`0800${NFNL_BATCH_GENID.toString(16).padStart(2, "0")}0001020304`);
    expect(new DataView(cond.buffer, cond.byteOffset).getUint32(0, true)).toBe(28);
    expect(Buffer.from(cond.subarray(4, 20))).toEqual(Buffer.from(plain.subarray(4, 20)));
  });

  test("genid must be a positive 32-bit integer", () => {
    const wire = lowerBatch({ family: "inet", table: "plexd", ops: [{ op: "addTable" }] });
    for (const genid of [0, -1, 2 ** 32, 1.5]) expect(() => build({ ...wire, genid }, 1)).toThrow(/genid/);
  });
});
