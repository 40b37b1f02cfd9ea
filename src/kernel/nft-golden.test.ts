/**
 * Golden bytes of the nfnetlink batch the addon builds. Expected bytes are written here from
 * the uapi layout (linux/netlink.h, nfnetlink.h, nf_tables.h) with a tiny independent encoder,
 * never produced by the builder. Semantics (does the kernel read each expression as meant?)
 * are proven separately by the real-kernel round trip in test/integration/kernel-nft.test.ts.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { loadAddon } from "./addon.ts";
import { NativeError } from "./errors.ts";
import type { FwBatch, NftAddon } from "./firewall-api.ts";
import { NftForeignTableError, NftTable, lowerBatch } from "./nft.ts";

// ---- independent encoder ------------------------------------------------------------------
const NLM_F_REQUEST = 0x1;
const NLM_F_CREATE = 0x400;
const NLM_F_APPEND = 0x800;
const NLA_F_NESTED = 0x8000;
const SUBSYS = 10; // NFNL_SUBSYS_NFTABLES
const MSG = { NEWTABLE: 0, NEWCHAIN: 3, NEWRULE: 6, DELRULE: 8, NEWSET: 9, NEWSETELEM: 12 };

const pad4 = (n: number) => (n + 3) & ~3;
function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
function attr(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(pad4(4 + payload.length));
  const dv = new DataView(out.buffer);
  dv.setUint16(0, 4 + payload.length, true);
  dv.setUint16(2, type, true);
  out.set(payload, 4);
  return out;
}
const nest = (type: number, ...kids: Uint8Array[]) => attr(type | NLA_F_NESTED, cat(...kids));
const str = (type: number, s: string) => attr(type, new TextEncoder().encode(`${s}\0`));
function be32(type: number, v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, false);
  return attr(type, b);
}
const u64 = (type: number, v: bigint) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return attr(type, b);
};
const value = (type: number, bytes: number[]) => nest(type, attr(1 /* NFTA_DATA_VALUE */, new Uint8Array(bytes)));
function msg(type: number, flags: number, seq: number, family: number, resId: number, ...attrs: Uint8Array[]): Uint8Array {
  const body = cat(new Uint8Array([family, 0, resId >> 8, resId & 0xff]), ...attrs);
  const out = new Uint8Array(16 + body.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, out.length, true);
  dv.setUint16(4, type, true);
  dv.setUint16(6, flags, true);
  dv.setUint32(8, seq, true);
  dv.setUint32(12, 0, true);
  out.set(body, 16);
  return out;
}
const nft = (m: number) => (SUBSYS << 8) | m;
const expr = (name: string, ...data: Uint8Array[]) => nest(1 /* LIST_ELEM */, str(1, name), nest(2, ...data));
const INET = 1;

// ---- the batch ----------------------------------------------------------------------------
const batch: FwBatch = {
  family: "inet",
  table: "plexd",
  ops: [
    { op: "addTable" },
    { op: "addChain", chain: { name: "input", hook: "input", priority: 0, policy: "drop" } },
    { op: "addSet", set: { name: "allow4", type: ["ipv4_addr", "inet_proto", "inet_service"] } },
    { op: "addElements", set: "allow4", elements: [{ key: ["10.100.0.2", 6, 22] }] },
    {
      op: "addRule",
      rule: {
        chain: "input",
        match: [
          { match: "cmp", field: "meta iifname", value: "plexd0" },
          { match: "set", fields: ["ip saddr", "meta l4proto", "th dport"], set: "allow4" },
        ],
        stmt: [{ stmt: "counter" }, { stmt: "verdict", verdict: "accept" }],
      },
    },
    { op: "flushTable" },
  ],
};

const SEQ = 1000;
const expected: Uint8Array[] = [
  msg(0x10, NLM_F_REQUEST, SEQ, 0, SUBSYS),
  msg(nft(MSG.NEWTABLE), NLM_F_REQUEST | NLM_F_CREATE, SEQ + 1, INET, 0, str(1, "plexd"), be32(2, 0)),
  msg(
    nft(MSG.NEWCHAIN),
    NLM_F_REQUEST | NLM_F_CREATE,
    SEQ + 2,
    INET,
    0,
    str(1, "plexd"),
    str(3, "input"),
    nest(4, be32(1, 1 /* NF_INET_LOCAL_IN */), be32(2, 0)),
    be32(5, 0 /* NF_DROP */),
    str(7, "filter"),
  ),
  msg(
    nft(MSG.NEWSET),
    NLM_F_REQUEST | NLM_F_CREATE,
    SEQ + 3,
    INET,
    0,
    str(1, "plexd"),
    str(2, "allow4"),
    be32(3, 0),
    be32(4, (7 << 12) | (12 << 6) | 13),
    be32(5, 12),
    be32(10, 3 /* op index + 1 */),
    nest(9, nest(2, nest(1, be32(1, 4)), nest(1, be32(1, 1)), nest(1, be32(1, 2)))),
  ),
  msg(
    nft(MSG.NEWSETELEM),
    NLM_F_REQUEST | NLM_F_CREATE,
    SEQ + 4,
    INET,
    0,
    str(1, "plexd"),
    str(2, "allow4"),
    nest(3, nest(1, value(1, [10, 100, 0, 2, 6, 0, 0, 0, 0, 22, 0, 0]))),
  ),
  msg(
    nft(MSG.NEWRULE),
    NLM_F_REQUEST | NLM_F_CREATE | NLM_F_APPEND,
    SEQ + 5,
    INET,
    0,
    str(1, "plexd"),
    str(2, "input"),
    nest(
      4,
      expr("meta", be32(1, 1), be32(2, 6 /* IIFNAME */)),
      expr("cmp", be32(1, 1), be32(2, 0), value(3, [...new TextEncoder().encode("plexd0"), ...new Array(10).fill(0)])),
      expr("meta", be32(1, 1), be32(2, 15 /* NFPROTO */)),
      expr("cmp", be32(1, 1), be32(2, 0), value(3, [2])),
      expr("payload", be32(1, 1), be32(2, 1), be32(3, 12), be32(4, 4)),
      expr("meta", be32(1, 9 /* REG32_01 */), be32(2, 16 /* L4PROTO */)),
      expr("payload", be32(1, 10 /* REG32_02 */), be32(2, 2), be32(3, 2), be32(4, 2)),
      expr("lookup", str(1, "allow4"), be32(2, 1)),
      expr("counter", u64(1, 0n), u64(2, 0n)),
      expr("immediate", be32(1, 0), nest(2, nest(2, be32(1, 1 /* NF_ACCEPT */)))),
    ),
  ),
  msg(nft(MSG.DELRULE), NLM_F_REQUEST, SEQ + 6, INET, 0, str(1, "plexd")),
  msg(0x11, NLM_F_REQUEST, SEQ + 7, 0, SUBSYS),
];

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

let addon: NftAddon;
beforeAll(() => {
  addon = loadAddon() as unknown as NftAddon;
});

describe("nft batch golden bytes", () => {
  test("every message equals the independently encoded one", () => {
    const got = new NftTable(addon, "inet", "plexd").build(batch, SEQ);
    expect(got.length).toBe(expected.length);
    got.forEach((m, i) => expect(hex(m)).toBe(hex(expected[i] as Uint8Array)));
  });

  test("framing: BEGIN/END carry res_id NFTABLES (big endian), seqs are consecutive, no ACK flags", () => {
    const got = addon.nftBuildBatch(lowerBatch(batch), 0xfffffffe); // seq wraps
    const first = got[0] as Uint8Array;
    const last = got[got.length - 1] as Uint8Array;
    const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
    expect(dv(first).getUint16(4, true)).toBe(0x10);
    expect(dv(last).getUint16(4, true)).toBe(0x11);
    for (const b of [first, last]) {
      expect(b[16]).toBe(0); // AF_UNSPEC
      expect(dv(b).getUint16(18, false)).toBe(SUBSYS);
    }
    got.forEach((m, i) => {
      expect(dv(m).getUint32(8, true)).toBe((0xfffffffe + i) >>> 0);
      expect(dv(m).getUint16(6, true) & 0x4 /* NLM_F_ACK */).toBe(0);
      expect(dv(m).getUint32(0, true)).toBe(m.length);
    });
  });

  test("large element lists are split so no ELEMENTS nest overflows 16 bits", () => {
    const elements = Array.from({ length: 5000 }, (_, i) => ({ key: [`10.${(i >> 8) & 255}.${i & 255}.1`, 6, 1000 + (i % 100)] }));
    const b: FwBatch = {
      family: "inet",
      table: "plexd",
      ops: [{ op: "addSet", set: { name: "big", type: ["ipv4_addr", "inet_proto", "inet_service"] } }, { op: "addElements", set: "big", elements }],
    };
    const msgs = new NftTable(addon, "inet", "plexd").build(b, 1);
    const elemMsgs = msgs.filter((m) => m[4] === 12 && m[5] === SUBSYS);
    expect(elemMsgs.length).toBeGreaterThan(1);
    let total = 0;
    for (const m of elemMsgs) {
      expect(m.length).toBeLessThan(65535);
      total += (m.length - 16 - 4 - 12 - 12 - 4) / 24; // header, nfgen, table, set, nest hdr; 24 bytes per element
    }
    expect(Math.round(total)).toBe(5000);
  });

  test("the wrapper refuses a batch for another table before anything is built", () => {
    const t = new NftTable(addon, "inet", "plexd");
    expect(() => t.build({ ...batch, table: "foreign" }, 1)).toThrow(NftForeignTableError);
    expect(() => t.build({ ...batch, family: "ip" }, 1)).toThrow(NftForeignTableError);
    expect(t.apply({ ...batch, table: "filter" })).rejects.toBeInstanceOf(NftForeignTableError);
  });

  test("the binding rejects malformed wire batches with NativeError EINVAL", () => {
    expect(() => addon.nftBuildBatch({ family: "inet", table: "", ops: [] }, 1)).toThrow(NativeError);
    expect(() => addon.nftBuildBatch({ family: "arp" as "inet", table: "t", ops: [] }, 1)).toThrow(/family/);
    expect(() =>
      addon.nftBuildBatch({ family: "inet", table: "t", ops: [{ op: "addRule", chain: "c", exprs: [{ type: "nat" } as never] }] }, 1),
    ).toThrow(/ops\[0\]\.exprs\[0\]/);
    expect(() => addon.nftBuildBatch({ family: "inet", table: "t", ops: [{ op: "deleteRule", chain: "c", handle: 0 }] }, 1)).toThrow(
      NativeError,
    );
  });
});
