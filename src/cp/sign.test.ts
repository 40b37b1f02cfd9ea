import { describe, expect, test } from "bun:test";
import { canonicalIssuedAt, canonicalString, compactPayload, goJsonString } from "./canonical.ts";
import { envelopeText, keyFromSeed, signEnvelope } from "./sign.ts";

const seed = Buffer.from("0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20", "hex");

describe("signer vs protocol.md §8.3", () => {
  const { privateKey, publicKey } = keyFromSeed(seed);
  test("public key from seed", () => {
    expect(publicKey).toBe("ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=");
  });
  test("V1 signature and data text", () => {
    const f = {
      eventType: "peer_removed",
      eventId: "evt_0001",
      issuedAt: "2025-01-15T10:30:00Z",
      nonce: "bm9uY2UtMDAwMQ==",
      payloadText: compactPayload('{"peer_id":"n_peer456"}'),
    };
    const sig = signEnvelope(privateKey, f);
    expect(sig).toBe("I1QpaouIcfNfS2NWgTxmY5gI5RUA3gSJOGAqhaR7aND9IhmIFlZCH6Q7uWhH639Qai+hbPffR/EixlDBqQUpAA==");
    expect(envelopeText(f, sig)).toBe(
      '{"event_type":"peer_removed","event_id":"evt_0001","issued_at":"2025-01-15T10:30:00Z","nonce":"bm9uY2UtMDAwMQ==","payload":{"peer_id":"n_peer456"},"signature":"I1QpaouIcfNfS2NWgTxmY5gI5RUA3gSJOGAqhaR7aND9IhmIFlZCH6Q7uWhH639Qai+hbPffR/EixlDBqQUpAA=="}',
    );
  });
  test("V2 canonical form and signature", () => {
    const f = {
      eventType: "node_state_updated",
      eventId: "evt_0002",
      issuedAt: "2025-01-15T12:30:00.500+02:00",
      nonce: "n-0002",
      payloadText: compactPayload(' { "metadata": { "url": "https://x.example/?a=1&b=<2>" }, "data": [ ] } '),
    };
    expect(canonicalString(f)).toBe(
      '{"event_type":"node_state_updated","event_id":"evt_0002","issued_at":"2025-01-15T12:30:00.5+02:00","nonce":"n-0002","payload":{"metadata":{"url":"https://x.example/?a=1\\u0026b=\\u003c2\\u003e"},"data":[]}}',
    );
    expect(signEnvelope(privateKey, f)).toBe(
      "l5LBeHTIJpk+8AaRArT4TFLi++V8xo9EHy/dgIzRFKtfb2BTPIoDFbuC0n69VUvYIpbLgrXwVEw+afqYVMXbBw==",
    );
  });
});

describe("canonical helpers", () => {
  test("issued_at forms", () => {
    expect(canonicalIssuedAt("2025-01-15T10:30:00.000Z")).toBe("2025-01-15T10:30:00Z");
    expect(canonicalIssuedAt("2025-01-15T10:30:00+00:00")).toBe("2025-01-15T10:30:00Z");
    expect(canonicalIssuedAt("2025-01-15T10:30:00-00:00")).toBe("2025-01-15T10:30:00Z");
    expect(canonicalIssuedAt("2025-01-15T10:30:00.1234567891Z")).toBe("2025-01-15T10:30:00.123456789Z");
    expect(canonicalIssuedAt("2025-01-15T10:30:00.Z")).toBeUndefined();
    expect(canonicalIssuedAt("2025-01-15 10:30:00Z")).toBeUndefined();
  });
  test("go string escaping", () => {
    expect(goJsonString("a<b>&\u2028\u2029\u0001\b\f\n\r\t\"\\é/")).toBe(
      '"a\\u003cb\\u003e\\u0026\\u2028\\u2029\\u0001\\b\\f\\n\\r\\t\\"\\\\é/"',
    );
    expect(() => goJsonString("\ud800")).toThrow();
  });
  test("compaction keeps numbers, escapes and order", () => {
    expect(compactPayload('{ "b" : 1.0, "a" : [1e3, "x \\u003c <", true ] }')).toBe(
      '{"b":1.0,"a":[1e3,"x \\u003c \\u003c",true]}',
    );
  });
});
