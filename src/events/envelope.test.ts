import { describe, expect, test } from "bun:test";
import { canonicalText } from "./canonical.ts";
import { parseEnvelope, parseEnvelopeFull, verifyEnvelope, type VerifierDeps, type VerifyResult } from "./envelope.ts";
import { ed25519KeyFromBase64, type TrustedKeys } from "./keys.ts";
import { NonceStore } from "./nonce-store.ts";
import {
  keyPairFromSeed,
  seededRandom,
  signCanonical,
  V1,
  V1_CANONICAL,
  V1_ISSUED_MS,
  V2,
  V2_CANONICAL,
  V2_ISSUED_MS,
  VECTOR_PUBLIC_KEY,
  VECTOR_SEED,
} from "./testing.ts";

const vectorKeys = keyPairFromSeed(VECTOR_SEED);
const otherKeys = keyPairFromSeed("a0".repeat(32));
const MIN = 60_000;

/**
 * A journal stand-in. Its duplicate lookup matches verified rows only: if rejected rows
 * counted, a tampered copy carrying a genuine signature (rejected bad_signature) would mask
 * the genuine event when it arrives — see the first negative vector below.
 */
function harness(over: Partial<VerifierDeps> & { nowMs?: number; trusted?: TrustedKeys } = {}) {
  const journal = new Set<string>();
  const nonces = over.nonces ?? new NonceStore();
  let now = over.nowMs ?? V1_ISSUED_MS + MIN;
  let lookups = 0;
  const trusted: TrustedKeys = over.trusted ?? { current: ed25519KeyFromBase64(VECTOR_PUBLIC_KEY) };
  const deps: VerifierDeps = {
    keys: () => trusted,
    isDuplicate: (id, sig) => {
      lookups++;
      return journal.has(`${id}\u0000${sig}`);
    },
    nonces,
    now: () => now,
    ...over,
  };
  return {
    deps,
    nonces,
    get lookups() {
      return lookups;
    },
    setNow(ms: number) {
      now = ms;
    },
    /** Verify and journal like the real intake does. */
    intake(data: string | Uint8Array): VerifyResult {
      const r = verifyEnvelope(data, deps);
      if (r.verdict === "verified") journal.add(`${r.envelope.eventId}\u0000${r.envelope.signature}`);
      return r;
    },
  };
}

function canonicalOf(data: string): string {
  const p = parseEnvelope(data);
  if (!p.ok) throw new Error(p.detail);
  return canonicalText({
    eventType: p.envelope.eventType,
    eventId: p.envelope.eventId,
    issuedAt: p.canonicalIssuedAt,
    nonce: p.envelope.nonce,
    payload: p.payloadCompact,
  });
}

function envelopeJson(f: Record<string, unknown>, payloadSource?: string): string {
  const parts = Object.entries(f).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
  if (payloadSource !== undefined) parts.push(`"payload":${payloadSource}`);
  return `{${parts.join(",")}}`;
}

describe("protocol.md §8.3 vectors", () => {
  test("the seed derives the published public key", () => {
    expect(vectorKeys.publicB64).toBe(VECTOR_PUBLIC_KEY);
  });

  test("V1 canonical text and signature", () => {
    expect(canonicalOf(V1)).toBe(V1_CANONICAL);
    const r = harness().intake(V1);
    expect(r.verdict).toBe("verified");
    if (r.verdict !== "verified") return;
    expect(r.key).toBe("current");
    expect(r.envelope).toMatchObject({
      eventType: "peer_removed",
      eventId: "evt_0001",
      issuedAt: "2025-01-15T10:30:00Z",
      issuedAtMs: V1_ISSUED_MS,
      nonce: "bm9uY2UtMDAwMQ==",
      payloadText: '{"peer_id":"n_peer456"}',
    });
  });

  test("V2 canonical text and signature", () => {
    expect(canonicalOf(V2)).toBe(V2_CANONICAL);
    const r = harness({ nowMs: V2_ISSUED_MS - 2 * MIN }).intake(V2);
    expect(r.verdict).toBe("verified");
    expect(r.envelope?.payloadText).toBe('{ "metadata": { "url": "https://x.example/?a=1&b=<2>" }, "data": [ ] }');
    expect(r.envelope?.issuedAtMs).toBe(V2_ISSUED_MS);
  });

  test("V1 as raw UTF-8 bytes", () => {
    expect(harness().intake(new TextEncoder().encode(V1)).verdict).toBe("verified");
  });

  test("the independent signer reproduces the vector signatures", () => {
    expect(signCanonical(vectorKeys.privateKey, V1_CANONICAL)).toBe(JSON.parse(V1).signature);
    expect(signCanonical(vectorKeys.privateKey, V2_CANONICAL)).toBe(JSON.parse(V2).signature);
  });
});

describe("required negative vectors", () => {
  test("V1 with one payload byte changed → bad_signature", () => {
    const h = harness();
    const r = h.intake(V1.replace("n_peer456", "n_peer457"));
    expect(r).toMatchObject({ verdict: "rejected", reason: "bad_signature" });
    // A rejected signature never consumes the nonce: the genuine event still verifies.
    expect(h.intake(V1).verdict).toBe("verified");
  });

  test("V1 delivered twice → duplicate (journal lookup), no nonce check", () => {
    const h = harness();
    expect(h.intake(V1).verdict).toBe("verified");
    const again = h.intake(V1);
    expect(again.verdict).toBe("duplicate");
    expect(again.envelope?.eventId).toBe("evt_0001");
  });

  test("V1's nonce with another event_id → replay", () => {
    const h = harness();
    expect(h.intake(V1).verdict).toBe("verified");
    const canonical = V1_CANONICAL.replace('"evt_0001"', '"evt_0001b"');
    const sig = signCanonical(vectorKeys.privateKey, canonical);
    const data = envelopeJson(
      { event_type: "peer_removed", event_id: "evt_0001b", issued_at: "2025-01-15T10:30:00Z", nonce: "bm9uY2UtMDAwMQ==", signature: sig },
      '{"peer_id":"n_peer456"}',
    );
    expect(h.intake(data)).toMatchObject({ verdict: "rejected", reason: "replay" });
  });

  test("V1 again when the journal does not know it → replay via the nonce store", () => {
    const nonces = new NonceStore();
    const d = harness({ nonces }).deps;
    expect(verifyEnvelope(V1, d).verdict).toBe("verified");
    expect(verifyEnvelope(V1, d)).toMatchObject({ verdict: "rejected", reason: "replay" });
  });

  test("V1 at issued_at + 5 min + 1 s → stale; + 5 min exactly → fresh", () => {
    expect(harness({ nowMs: V1_ISSUED_MS + 5 * MIN + 1000 }).intake(V1)).toMatchObject({
      verdict: "rejected",
      reason: "stale",
    });
    expect(harness({ nowMs: V1_ISSUED_MS + 5 * MIN }).intake(V1).verdict).toBe("verified");
  });

  test("V1 at issued_at − 5 min − 1 s → future; − 5 min exactly → fresh", () => {
    expect(harness({ nowMs: V1_ISSUED_MS - 5 * MIN - 1000 }).intake(V1)).toMatchObject({
      verdict: "rejected",
      reason: "future",
    });
    expect(harness({ nowMs: V1_ISSUED_MS - 5 * MIN }).intake(V1).verdict).toBe("verified");
  });

  test("V1 signed by the previous key: accepted before transition_expires, rejected at/after", () => {
    const now = V1_ISSUED_MS + MIN;
    const rotated = (expires: number): TrustedKeys => ({
      current: otherKeys.publicKey,
      previous: ed25519KeyFromBase64(VECTOR_PUBLIC_KEY),
      transitionExpiresMs: expires,
    });
    const before = harness({ nowMs: now, trusted: rotated(now + 1) }).intake(V1);
    expect(before).toMatchObject({ verdict: "verified", key: "previous" });
    expect(harness({ nowMs: now, trusted: rotated(now) }).intake(V1)).toMatchObject({
      verdict: "rejected",
      reason: "bad_signature",
    });
    expect(harness({ nowMs: now, trusted: rotated(now - 1) }).intake(V1)).toMatchObject({
      verdict: "rejected",
      reason: "bad_signature",
    });
    // Previous key without an expiry is never used.
    expect(
      harness({ trusted: { current: otherKeys.publicKey, previous: ed25519KeyFromBase64(VECTOR_PUBLIC_KEY) } }).intake(V1)
        .verdict,
    ).toBe("rejected");
  });

  test("no trusted key yet → bad_signature", () => {
    expect(harness({ keys: () => undefined }).intake(V1)).toMatchObject({ verdict: "rejected", reason: "bad_signature" });
  });
});

describe("order of checks (§8.2)", () => {
  test("duplicate is decided before staleness, staleness before the signature", () => {
    const h = harness();
    expect(h.intake(V1).verdict).toBe("verified");
    h.setNow(V1_ISSUED_MS + 60 * MIN);
    expect(h.intake(V1).verdict).toBe("duplicate");
    // A tampered copy of a journaled event is a duplicate too: never dispatched.
    const forged = V1.replace("n_peer456", "n_peer999");
    expect(h.intake(forged).verdict).toBe("duplicate");
    const fresh = harness({ nowMs: V1_ISSUED_MS + 60 * MIN });
    expect(fresh.intake(forged)).toMatchObject({ verdict: "rejected", reason: "stale" });
  });

  test("malformed input never reaches the journal lookup or the nonce store", () => {
    const h = harness();
    expect(h.intake(V1.replace('"nonce"', '"nonc"')).verdict).toBe("rejected");
    expect(h.lookups).toBe(0);
    expect(h.nonces.size).toBe(0);
  });

  test("nonce store full → nonce_store_full (fail closed), only after a valid signature", () => {
    const h = harness({ nonces: new NonceStore({ capacity: 1 }) });
    expect(h.intake(V1).verdict).toBe("verified");
    const r = h.intake(V2);
    expect(r).toMatchObject({ verdict: "rejected", reason: "nonce_store_full" });
    // Once V1's nonce expires there is room again.
    h.setNow(V1_ISSUED_MS + 5 * MIN + 1);
    expect(verifyEnvelope(V2, h.deps).verdict).toBe("verified");
  });
});

describe("malformed", () => {
  const sig = JSON.parse(V1).signature as string;
  const base = { event_type: "peer_removed", event_id: "evt_0001", issued_at: "2025-01-15T10:30:00Z", nonce: "bm9uY2UtMDAwMQ==", signature: sig };
  const without = (k: string) => Object.fromEntries(Object.entries(base).filter(([x]) => x !== k));
  const cases: [string, string][] = [
    ["duplicate top-level key (signed)", V1.replace('{"event_type"', '{"event_id":"evt_9","event_type"')],
    ["duplicate top-level key (unsigned)", V1.replace("{", '{"x":1,"x":2,')],
    ["duplicate key spelled with an escape", V1.replace("{", '{"nonc\\u0065":"a",')],
    ["lone surrogate escape in event_id", envelopeJson({ ...base, event_id: "evt" }).replace('"evt"', '"evt\\ud800"')],
    ["lone surrogate escape in payload", envelopeJson(base, '{"a":"\\udc00"}')],
    ["missing event_type", envelopeJson(without("event_type"))],
    ["missing event_id", envelopeJson(without("event_id"))],
    ["missing issued_at", envelopeJson(without("issued_at"))],
    ["missing nonce", envelopeJson(without("nonce"))],
    ["missing signature", envelopeJson(without("signature"))],
    ["empty event_type", envelopeJson({ ...base, event_type: "" })],
    ["empty event_id", envelopeJson({ ...base, event_id: "" })],
    ["empty nonce", envelopeJson({ ...base, nonce: "" })],
    ["event_type not a string", envelopeJson({ ...base, event_type: 7 })],
    ["signature null", envelopeJson({ ...base, signature: null })],
    ["issued_at without offset", envelopeJson({ ...base, issued_at: "2025-01-15T10:30:00" })],
    ["issued_at lower-case z", envelopeJson({ ...base, issued_at: "2025-01-15T10:30:00z" })],
    ["issued_at empty fraction", envelopeJson({ ...base, issued_at: "2025-01-15T10:30:00.Z" })],
    ["issued_at Feb 30", envelopeJson({ ...base, issued_at: "2025-02-30T10:30:00Z" })],
    ["signature bad alphabet (url-safe)", envelopeJson({ ...base, signature: sig.replace("+", "-") })],
    ["signature without padding", envelopeJson({ ...base, signature: sig.replace("==", "") })],
    ["signature 63 bytes", envelopeJson({ ...base, signature: Buffer.alloc(63, 1).toString("base64") })],
    ["signature 65 bytes", envelopeJson({ ...base, signature: Buffer.alloc(65, 1).toString("base64") })],
    ["signature non-canonical padding bits", envelopeJson({ ...base, signature: `${sig.slice(0, 85)}B==` })],
    ["signature with whitespace", envelopeJson({ ...base, signature: ` ${sig}` })],
    ["nonce of 257 bytes", envelopeJson({ ...base, nonce: `${"é".repeat(128)}a` })],
    ["not an object", "[1,2]"],
    ["not JSON", "event: x"],
    ["empty", ""],
    ["trailing garbage", `${V1}x`],
  ];
  for (const [name, data] of cases) {
    test(name, () => {
      const r = harness().intake(data);
      expect(r).toMatchObject({ verdict: "rejected", reason: "malformed" });
      expect(r.envelope).toBeUndefined();
      if (r.verdict === "rejected") expect(r.detail.length).toBeGreaterThan(0);
    });
  }

  test("recoverable fields are reported for the journal", () => {
    const r = harness().intake(envelopeJson({ ...base, signature: "AAAA" }));
    expect(r).toMatchObject({ reason: "malformed", fields: { eventId: "evt_0001", eventType: "peer_removed", signature: "AAAA" } });
  });

  test("invalid UTF-8 bytes → malformed", () => {
    const bytes = new TextEncoder().encode(V1);
    bytes[bytes.indexOf(0x6e /* n of n_peer */)] = 0xff;
    expect(harness().intake(bytes)).toMatchObject({ verdict: "rejected", reason: "malformed" });
  });

  test("oversize data → oversize (string and bytes, multi-byte counted as bytes)", () => {
    const h = harness({ maxEventBytes: 1000 });
    expect(h.intake(`${V1}${" ".repeat(800)}`)).toMatchObject({ reason: "oversize" });
    expect(h.intake(new Uint8Array(1001))).toMatchObject({ reason: "oversize" });
    expect(h.intake(V1.replace("n_peer456", "é".repeat(400)))).toMatchObject({ reason: "oversize" }); // 759 chars, >1000 bytes
  });

  test("unknown and differently-cased members are ignored, not signed", () => {
    expect(harness().intake(V1.replace("{", '{"x":[1,{"y":2}],"Event_ID":"zzz","EVENT_TYPE":1,')).verdict).toBe("verified");
  });
});

describe("awkward payloads against an independent signer", () => {
  // [payload as sent, canonical P written by hand]
  const payloads: [string, string][] = [
    ['{ "html": "<a href=\'x\'>&amp;</a>" }', '{"html":"\\u003ca href=\'x\'\\u003e\\u0026amp;\\u003c/a\\u003e"}'],
    ['{"ls": "a\u2028b\u2029c"}', '{"ls":"a\\u2028b\\u2029c"}'],
    ['{"name" : "Zoë 😀 日本"}', '{"name":"Zoë 😀 日本"}'],
    ['{"a": 1.0, "b": 1e3, "c": -0, "d": 1E+2, "e": 0.000}', '{"a":1.0,"b":1e3,"c":-0,"d":1E+2,"e":0.000}'],
    [
      '{"z": {"b": 2, "a": 1, "10": 0, "2": 0},\n "a": [ {"y":1,"x":2} ] }',
      '{"z":{"b":2,"a":1,"10":0,"2":0},"a":[{"y":1,"x":2}]}',
    ],
    ['{"e": "\\u003c\\/\\"\\\\ \\ud83d\\ude00 \\u00E9"}', '{"e":"\\u003c\\/\\"\\\\ \\ud83d\\ude00 \\u00E9"}'],
    ['{"k":1, "k":2}', '{"k":1,"k":2}'],
    ['"str<"', '"str\\u003c"'],
    ["42", "42"],
    ["[ ]", "[]"],
    ["\t{ }\r\n", "{}"],
    ["null", "null"],
    ['{"<>&": true}', '{"\\u003c\\u003e\\u0026":true}'],
  ];
  payloads.forEach(([source, p], i) => {
    test(`payload ${JSON.stringify(source)}`, () => {
      const canonical = `{"event_type":"t","event_id":"e${i}","issued_at":"2025-01-15T10:30:00Z","nonce":"n${i}","payload":${p}}`;
      const signature = signCanonical(vectorKeys.privateKey, canonical);
      const data = envelopeJson({ signature, event_id: `e${i}`, nonce: `n${i}`, issued_at: "2025-01-15T10:30:00Z", event_type: "t" }, source);
      expect(canonicalOf(data)).toBe(canonical);
      expect(harness().intake(data).verdict).toBe("verified");
    });
  });

  test("absent payload is signed as null", () => {
    const canonical = '{"event_type":"t","event_id":"e","issued_at":"2025-01-15T10:30:00Z","nonce":"n","payload":null}';
    const signature = signCanonical(vectorKeys.privateKey, canonical);
    const f = { event_type: "t", event_id: "e", issued_at: "2025-01-15T10:30:00Z", nonce: "n", signature };
    const r = harness().intake(envelopeJson(f));
    expect(r.verdict).toBe("verified");
    expect(r.envelope?.payloadText).toBe("null");
    expect(harness().intake(envelopeJson(f, "null")).verdict).toBe("verified");
  });

  test("string fields with Go HTML-escaped characters", () => {
    const et = 'a<b>&"\\\u2028\n\u0001é';
    const canonical =
      '{"event_type":"a\\u003cb\\u003e\\u0026\\"\\\\\\u2028\\n\\u0001é","event_id":"id/1","issued_at":"2025-01-15T10:30:00Z","nonce":"n\\u00261","payload":{}}';
    const signature = signCanonical(vectorKeys.privateKey, canonical);
    // event_id sent with an escaped solidus: the decoded value is what is signed.
    const data = `{"event_type":${JSON.stringify(et)},"event_id":"id\\/1","issued_at":"2025-01-15T10:30:00Z","nonce":"n\\u00261","payload":{},"signature":"${signature}"}`;
    expect(canonicalOf(data)).toBe(canonical);
    expect(harness().intake(data).verdict).toBe("verified");
  });

  // [issued_at as sent, S3 written by hand, instant]
  const times: [string, string][] = [
    ["2025-01-15T10:30:00Z", "2025-01-15T10:30:00Z"],
    ["2025-01-15T10:30:00.1Z", "2025-01-15T10:30:00.1Z"],
    ["2025-01-15T10:30:00.12Z", "2025-01-15T10:30:00.12Z"],
    ["2025-01-15T10:30:00.123Z", "2025-01-15T10:30:00.123Z"],
    ["2025-01-15T10:30:00.1234Z", "2025-01-15T10:30:00.1234Z"],
    ["2025-01-15T10:30:00.12345Z", "2025-01-15T10:30:00.12345Z"],
    ["2025-01-15T10:30:00.123456Z", "2025-01-15T10:30:00.123456Z"],
    ["2025-01-15T10:30:00.1234567Z", "2025-01-15T10:30:00.1234567Z"],
    ["2025-01-15T10:30:00.12345678Z", "2025-01-15T10:30:00.12345678Z"],
    ["2025-01-15T10:30:00.123456789Z", "2025-01-15T10:30:00.123456789Z"],
    ["2025-01-15T10:30:00.12345678912Z", "2025-01-15T10:30:00.123456789Z"],
    ["2025-01-15T10:30:00.100000000Z", "2025-01-15T10:30:00.1Z"],
    ["2025-01-15T10:30:00.000Z", "2025-01-15T10:30:00Z"],
    ["2025-01-15T10:30:00+00:00", "2025-01-15T10:30:00Z"],
    ["2025-01-15T10:30:00.50-00:00", "2025-01-15T10:30:00.5Z"],
    ["2025-01-15T12:30:00.250+02:00", "2025-01-15T12:30:00.25+02:00"],
    ["2025-01-15T05:00:00-05:30", "2025-01-15T05:00:00-05:30"],
  ];
  times.forEach(([sent, s3], i) => {
    test(`issued_at ${sent}`, () => {
      const canonical = `{"event_type":"t","event_id":"t${i}","issued_at":"${s3}","nonce":"tn${i}","payload":{"i":${i}}}`;
      const signature = signCanonical(vectorKeys.privateKey, canonical);
      const data = envelopeJson({ event_type: "t", event_id: `t${i}`, issued_at: sent, nonce: `tn${i}`, signature }, `{ "i": ${i} }`);
      expect(canonicalOf(data)).toBe(canonical);
      const r = harness().intake(data);
      expect(r.verdict).toBe("verified");
      expect(r.envelope?.issuedAt).toBe(sent);
    });
  });

  test("nonce of exactly 256 bytes is accepted", () => {
    const nonce = `${"é".repeat(127)}ab`;
    const canonical = `{"event_type":"t","event_id":"e","issued_at":"2025-01-15T10:30:00Z","nonce":"${nonce}","payload":null}`;
    const signature = signCanonical(vectorKeys.privateKey, canonical);
    expect(harness().intake(envelopeJson({ event_type: "t", event_id: "e", issued_at: "2025-01-15T10:30:00Z", nonce, signature })).verdict).toBe(
      "verified",
    );
  });
});

describe("fast path and full parser agree", () => {
  const sig = JSON.parse(V1).signature as string;
  const base = `"event_type":"t","event_id":"e","issued_at":"2025-01-15T10:30:00.500+02:00","nonce":"n","signature":"${sig}"`;
  const inputs = [
    V1,
    V2,
    `{${base}}`,
    `{${base},"payload":null}`,
    ` {\n${base} , "payload" : { "a" : [ 1 , 2.5e3 , true , false , null , "x<y" ] } }\t`,
    `{${base},"payload":{"s":"a\u2028b","t":"\\u00e9 \\n \\/"}}`,
    `{${base},"payload":"\\ud83d\\ude00"}`,
    `{${base},"payload":{"k":1,"k":2},"extra":{"deep":[[[[]]]]}}`,
    `{"x":1,${base},"payload":[]}`,
    `{${base},"payload":{"é😀":"日本"}}`,
    `{"event_type":"a\\u003cb",${base.slice(base.indexOf('"event_id"'))}}`,
    `{${base},"payload":${"[".repeat(40)}${"]".repeat(40)}}`,
  ];
  inputs.forEach((data, i) => {
    test(`input ${i}`, () => {
      const full = parseEnvelopeFull(data);
      expect(full.ok).toBe(true);
      expect(parseEnvelope(data)).toEqual(full);
    });
  });
});

describe("fuzz", () => {
  test("random mutations and truncations never throw; a verified mutant signs the same canonical text", () => {
    const r = seededRandom(8032);
    const alphabet = ' \n\t{}[]:,"\\0123456789abcdefnrtu-+.eE<>&\u2028é😀\ud800\u0000';
    const seen = new Map<string, number>();
    let n = 0;
    for (let i = 0; i < 6000; i++) {
      const [src, canonical, now] = r() < 0.5 ? [V1, V1_CANONICAL, V1_ISSUED_MS] : [V2, V2_CANONICAL, V2_ISSUED_MS];
      let data = src;
      const ops = 1 + Math.floor(r() * 3);
      for (let k = 0; k < ops; k++) {
        const pos = Math.floor(r() * data.length);
        const op = r();
        if (op < 0.3) data = data.slice(0, pos);
        else if (op < 0.6) data = data.slice(0, pos) + data.slice(pos + 1);
        else data = data.slice(0, pos) + alphabet[Math.floor(r() * alphabet.length)] + data.slice(pos + (op < 0.8 ? 1 : 0));
      }
      const res = verifyEnvelope(data, harness({ nowMs: now }).deps);
      // The one-pass fast path and the full scanner + valibot schema agree on every input.
      const fast = parseEnvelope(data);
      const full = parseEnvelopeFull(data);
      if (fast.ok || full.ok) expect(fast).toEqual(full);
      else expect(fast.ok).toBe(false);
      n++;
      seen.set(`${res.verdict}:${res.verdict === "rejected" ? res.reason : ""}`, (seen.get(`${res.verdict}:${res.verdict === "rejected" ? res.reason : ""}`) ?? 0) + 1);
      if (res.verdict === "verified") expect(canonicalOf(data)).toBe(canonical);
      // Random bytes as well.
      const bytes = new Uint8Array(Math.floor(r() * 64));
      for (let b = 0; b < bytes.length; b++) bytes[b] = Math.floor(r() * 256);
      expect(verifyEnvelope(bytes, harness().deps).verdict).toBe("rejected");
    }
    expect(n).toBe(6000);
    expect(seen.get("rejected:malformed")).toBeGreaterThan(1000);
    expect(seen.get("rejected:bad_signature")).toBeGreaterThan(10);
  });
});
