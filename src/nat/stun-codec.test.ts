import { describe, expect, test } from "bun:test";
import {
  ATTR_MAPPED_ADDRESS,
  ATTR_XOR_MAPPED_ADDRESS_LEGACY,
  encodeBindingRequest,
  encodeBindingSuccess,
  isStunMessage,
  newTransactionId,
  parseBindingResponse,
  STUN_MAGIC_COOKIE,
} from "./stun-codec.ts";

const hex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ""), "hex"));
// RFC 5769 §2.2/2.3 transaction id.
const RFC_TXID = hex("b7e7a701 bc34d686 fa87dfae");

describe("binding request", () => {
  test("20 bytes: type 0x0001, length 0, cookie, txid", () => {
    const txid = hex("000102030405060708090a0b");
    expect(Buffer.from(encodeBindingRequest(txid)).toString("hex")).toBe("00010000" + "2112a442" + "000102030405060708090a0b");
  });
  test("random txids are 12 bytes and differ", () => {
    const a = newTransactionId();
    const b = newTransactionId();
    expect(a.length).toBe(12);
    expect(a).not.toEqual(b);
  });
  test("bad txid length rejected", () => {
    expect(() => encodeBindingRequest(new Uint8Array(11))).toThrow(RangeError);
  });
});

describe("binding response", () => {
  test("RFC 5769 §2.2 IPv4 response (SOFTWARE, MESSAGE-INTEGRITY, FINGERPRINT walked past)", () => {
    const msg = hex(`0101003c 2112a442 b7e7a701 bc34d686 fa87dfae
      8022000b 74657374 20766563 746f7220
      00200008 0001a147 e112a643
      00080014 2b91f599 fd9e90c3 8c7489f9 2af9ba53 f06be7d7
      80280004 c07d4c96`);
    expect(parseBindingResponse(msg, RFC_TXID)).toEqual({
      kind: "success",
      address: { family: 4, ip: "192.0.2.1", port: 32853, source: "xor" },
    });
  });

  test("RFC 5769 §2.3 IPv6 XOR-MAPPED-ADDRESS decodes (family parsed for completeness)", () => {
    const msg = hex(`01010018 2112a442 b7e7a701 bc34d686 fa87dfae
      00200014 0002a147 0113a9fa a5d3f179 bc25f4b5 bed2b9d9`);
    expect(parseBindingResponse(msg, RFC_TXID)).toEqual({
      kind: "success",
      address: { family: 6, ip: "2001:db8:1234:5678:11:2233:4455:6677", port: 32853, source: "xor" },
    });
  });

  test("round trip through encodeBindingSuccess, all three attribute kinds", () => {
    const txid = newTransactionId();
    for (const [attribute, source] of [
      [undefined, "xor"],
      [ATTR_XOR_MAPPED_ADDRESS_LEGACY, "xor-legacy"],
      [ATTR_MAPPED_ADDRESS, "mapped"],
    ] as const) {
      const msg = encodeBindingSuccess(txid, "203.0.113.77", 51820, { attribute });
      expect(parseBindingResponse(msg, txid)).toEqual({ kind: "success", address: { family: 4, ip: "203.0.113.77", port: 51820, source } });
    }
  });

  test("XOR-MAPPED-ADDRESS preferred over MAPPED-ADDRESS whatever the order", () => {
    const txid = newTransactionId();
    const msg = encodeBindingSuccess(txid, "198.51.100.9", 4000, { attribute: ATTR_MAPPED_ADDRESS, extra: [] });
    // MAPPED first, then XOR: rebuild with the XOR one as an extra attribute.
    const xorMsg = encodeBindingSuccess(txid, "198.51.100.9", 4000);
    const xorAttr = xorMsg.subarray(24, 32);
    const both = encodeBindingSuccess(txid, "10.0.0.1", 4660, { attribute: ATTR_MAPPED_ADDRESS, extra: [[0x0020, xorAttr]] });
    expect(parseBindingResponse(both, txid)).toMatchObject({ kind: "success", address: { ip: "198.51.100.9", port: 4000, source: "xor" } });
    expect(parseBindingResponse(msg, txid)).toMatchObject({ address: { source: "mapped" } });
  });

  test("odd-length attribute is padded to 4 bytes before the next one", () => {
    const txid = newTransactionId();
    // SOFTWARE "hello" (5 bytes + 3 padding), then the real XOR-MAPPED-ADDRESS.
    const real = encodeBindingSuccess(txid, "192.0.2.44", 5555).subarray(20);
    const body = new Uint8Array([0x80, 0x22, 0, 5, 104, 101, 108, 108, 111, 0, 0, 0, ...real]);
    const m = new Uint8Array([...encodeBindingRequest(txid), ...body]);
    new DataView(m.buffer).setUint16(0, 0x0101);
    new DataView(m.buffer).setUint16(2, body.length);
    expect(parseBindingResponse(m, txid)).toMatchObject({ kind: "success", address: { ip: "192.0.2.44", port: 5555 } });
    // Without the padding the walk lands mid-attribute and finds no address.
    const unpadded = new Uint8Array([0x80, 0x22, 0, 5, 104, 101, 108, 108, 111, ...real]);
    const u = new Uint8Array([...encodeBindingRequest(txid), ...unpadded, 0, 0, 0]);
    new DataView(u.buffer).setUint16(0, 0x0101);
    new DataView(u.buffer).setUint16(2, unpadded.length + 3);
    expect(parseBindingResponse(u, txid).kind).not.toBe("success");
  });

  test("error response 0x0111 with ERROR-CODE", () => {
    const txid = newTransactionId();
    const reason = new TextEncoder().encode("Bad Request");
    const ec = new Uint8Array([0, 0, 4, 0, ...reason]);
    const ok = encodeBindingSuccess(txid, "10.0.0.1", 1, { extra: [[0x0009, ec]] });
    new DataView(ok.buffer).setUint16(0, 0x0111);
    expect(parseBindingResponse(ok, txid)).toEqual({ kind: "error", code: 400, reason: "Bad Request" });
  });

  test("other transaction, other type, wrong cookie, top bits set: ignored", () => {
    const txid = newTransactionId();
    const ok = encodeBindingSuccess(txid, "10.0.0.1", 1);
    expect(parseBindingResponse(ok, newTransactionId())).toMatchObject({ kind: "ignore", reason: "other transaction" });
    const req = encodeBindingRequest(txid);
    expect(parseBindingResponse(req, txid)).toMatchObject({ kind: "ignore" });
    const badCookie = ok.slice();
    badCookie[4] = 0;
    expect(parseBindingResponse(badCookie, txid).kind).toBe("ignore");
    const wg = ok.slice();
    wg[0] = 0x41;
    expect(isStunMessage(wg)).toBe(false);
  });

  test("success without any address attribute: invalid (server failed)", () => {
    const txid = newTransactionId();
    const m = encodeBindingRequest(txid);
    new DataView(m.buffer).setUint16(0, 0x0101);
    expect(parseBindingResponse(m, txid)).toEqual({ kind: "invalid", reason: "no usable mapped address" });
  });

  test("attribute overrunning the message: invalid", () => {
    const txid = newTransactionId();
    const m = encodeBindingSuccess(txid, "10.0.0.1", 1);
    new DataView(m.buffer).setUint16(22, 12);
    expect(parseBindingResponse(m, txid).kind).toBe("invalid");
  });

  test("unknown address family and wrong IPv4 length are skipped", () => {
    const txid = newTransactionId();
    const bad = new Uint8Array([0, 3, 0, 1, 1, 2, 3, 4]);
    const short = new Uint8Array([0, 1, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8]);
    const m = encodeBindingSuccess(txid, "192.0.2.1", 7, { attribute: ATTR_MAPPED_ADDRESS, extra: [[0x0020, bad], [0x8020, short]] });
    expect(parseBindingResponse(m, txid)).toMatchObject({ kind: "success", address: { ip: "192.0.2.1", port: 7, source: "mapped" } });
  });
});

describe("fuzz: parse never throws", () => {
  // Deterministic xorshift so a failure is reproducible from the printed seed.
  function rng(seed: number): () => number {
    let s = seed >>> 0 || 1;
    return () => {
      s ^= s << 13;
      s >>>= 0;
      s ^= s >>> 17;
      s ^= s << 5;
      s >>>= 0;
      return s / 2 ** 32;
    };
  }

  test("random buffers, truncations and byte flips of valid responses", () => {
    const seed = Date.now() & 0xffffffff;
    const r = rng(seed);
    const txid = newTransactionId();
    const valid = [
      encodeBindingSuccess(txid, "203.0.113.5", 3478),
      encodeBindingSuccess(txid, "203.0.113.5", 3478, { attribute: ATTR_MAPPED_ADDRESS, extra: [[0x8022, new Uint8Array(7)]] }),
      new Uint8Array([...hex("01010018 2112a442"), ...txid, ...hex("00200014 0002a147 0113a9fa a5d3f179 bc25f4b5 bed2b9d9")]),
      new Uint8Array([...hex("01110010 2112a442"), ...txid, ...hex("0009000b 00000401 42616420 52657100")]),
    ];
    const kinds = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      let buf: Uint8Array;
      const mode = i % 4;
      const base = valid[i % valid.length]!;
      if (mode === 0) {
        buf = new Uint8Array(Math.floor(r() * 80));
        for (let j = 0; j < buf.length; j++) buf[j] = Math.floor(r() * 256);
        // Often give it a plausible header so the attribute walk is reached.
        if (r() < 0.5 && buf.length >= 20) {
          new DataView(buf.buffer).setUint32(4, STUN_MAGIC_COOKIE);
          buf.set(txid, 8);
          buf[0] = 0x01;
          buf[1] = r() < 0.5 ? 0x01 : 0x11;
        }
      } else if (mode === 1) {
        buf = base.subarray(0, Math.floor(r() * base.length));
      } else {
        buf = base.slice();
        const flips = 1 + Math.floor(r() * 4);
        for (let k = 0; k < flips; k++) buf[Math.floor(r() * buf.length)] = Math.floor(r() * 256);
      }
      let res;
      try {
        res = parseBindingResponse(buf, txid);
      } catch (e) {
        throw new Error(`seed ${seed} iteration ${i}: threw ${(e as Error).message} on ${Buffer.from(buf).toString("hex")}`);
      }
      kinds.add(res.kind);
      if (res.kind === "success") {
        expect(res.address.port).toBeGreaterThanOrEqual(0);
        expect(res.address.port).toBeLessThanOrEqual(65535);
      }
    }
    // The corpus reached every branch (a fuzz that only ever sees "ignore" proves nothing).
    expect([...kinds].sort()).toEqual(["error", "ignore", "invalid", "success"]);
  });
});
