/**
 * Signed-envelope parsing and verification (protocol.md §8, §8.2), in the normative order:
 * malformed → duplicate → stale/future → signature → nonce → verified.
 *
 * Everything here is synchronous and pure apart from the injected lookups: the journal
 * (bun:sqlite) answers `isDuplicate` synchronously, and a verification never waits on I/O.
 */
import { verify as cryptoVerify, type KeyObject } from "node:crypto";
import * as v from "valibot";
import { parseRfc3339, type Rfc3339 } from "../util/duration.ts";
import { canonicalBytes, compactJsonSlice, formatCanonicalIssuedAt } from "./canonical.ts";
import { scanEnvelopeFast, scanTopLevelObject, type JsonObjectScan } from "./json-tokenizer.ts";
import type { TrustedKeys } from "./keys.ts";
import type { NonceStore } from "./nonce-store.ts";

/** Journal `reject_reason` values (operations.md §1.1). */
export type RejectReason =
  | "malformed"
  | "stale"
  | "future"
  | "bad_signature"
  | "replay"
  | "nonce_store_full"
  | "oversize";

/** A structurally valid envelope (step 1 passed). Field values are decoded strings. */
export interface Envelope {
  readonly eventType: string;
  readonly eventId: string;
  /** `issued_at` exactly as received (the journal stores it so). */
  readonly issuedAt: string;
  /** The instant of `issued_at`, ms since the epoch. */
  readonly issuedAtMs: number;
  readonly nonce: string;
  /** Base64 text as received (duplicate detection compares this string). */
  readonly signature: string;
  /** Exact source text of `payload` (not compacted); `"null"` when absent. Parse it in handlers. */
  readonly payloadText: string;
}

/** What step-1 parsing could recover from a malformed envelope, for the journal and the log. */
export interface PartialEnvelopeFields {
  readonly eventType?: string;
  readonly eventId?: string;
  readonly issuedAt?: string;
  readonly nonce?: string;
  readonly signature?: string;
}

/** Outcome of {@link verifyEnvelope}. */
export type VerifyResult =
  | { readonly verdict: "verified"; readonly envelope: Envelope; readonly key: "current" | "previous" }
  | { readonly verdict: "duplicate"; readonly envelope: Envelope }
  | {
      readonly verdict: "rejected";
      readonly reason: RejectReason;
      /** Present from step 2 on (everything but `malformed` and `oversize`). */
      readonly envelope?: Envelope;
      /** For `malformed`: the string fields that could be read. */
      readonly fields?: PartialEnvelopeFields;
      /** Human-readable detail for the log (never contains key material). */
      readonly detail: string;
    };

/** Outcome of {@link parseEnvelope} (step 1 only). */
export type ParseResult =
  | { readonly ok: true; readonly envelope: Envelope; readonly canonicalIssuedAt: string; readonly payloadCompact: string }
  | { readonly ok: false; readonly detail: string; readonly fields: PartialEnvelopeFields };

/** Injected collaborators of {@link verifyEnvelope}. */
export interface VerifierDeps {
  /** Trusted keys at this moment (read per event so a rotation applies at once); undefined → none yet. */
  readonly keys: () => TrustedKeys | undefined;
  /** Journal lookup: is `(event_id, signature)` already recorded? */
  readonly isDuplicate: (eventId: string, signature: string) => boolean;
  readonly nonces: NonceStore;
  /** Wall clock, ms since the epoch. */
  readonly now: () => number;
  /** Staleness window each way, ms (default 5 min). */
  readonly maxSkewMs?: number;
  /** Largest accepted `data`, UTF-8 bytes (default 1 MiB, protocol.md §7). */
  readonly maxEventBytes?: number;
}

/** Default staleness window (protocol.md §8.2 step 3). */
export const MAX_SKEW_MS = 5 * 60_000;
/** Default event size limit (protocol.md §7). */
export const MAX_EVENT_BYTES = 1 << 20;

// 64 bytes = 86 base64 digits + "=="; the last digit carries 4 padding bits that must be 0
// (canonical encoding, so one signature has exactly one spelling for duplicate detection).
const SIGNATURE_RE = /^[A-Za-z0-9+/]{85}[AQgw]==$/;

/** Boundary schema of the signed top-level fields (decoded string values). */
export const EnvelopeFieldsSchema = v.object({
  event_type: v.pipe(v.string("event_type must be a string"), v.nonEmpty("event_type is empty")),
  event_id: v.pipe(v.string("event_id must be a string"), v.nonEmpty("event_id is empty")),
  issued_at: v.pipe(
    v.string("issued_at must be a string"),
    v.rawTransform<string, Rfc3339>(({ dataset, addIssue, NEVER }) => {
      const t = parseRfc3339(dataset.value);
      if (t !== undefined) return t;
      addIssue({ message: "issued_at is not an RFC 3339 date-time" });
      return NEVER;
    }),
  ),
  nonce: v.pipe(
    v.string("nonce must be a string"),
    v.nonEmpty("nonce is empty"),
    v.maxBytes(256, "nonce is longer than 256 bytes"),
  ),
  signature: v.pipe(
    v.string("signature must be a string"),
    v.regex(SIGNATURE_RE, "signature is not 64 bytes of canonical base64 std"),
  ),
});

const SIGNED_KEYS = ["event_type", "event_id", "issued_at", "nonce", "signature"] as const;

const utf8Fatal = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function stringField(scan: JsonObjectScan, key: string): string | undefined {
  const m = scan.byKey.get(key);
  return m?.kind === "string" ? m.value : undefined;
}

function partialFields(scan: JsonObjectScan | undefined): PartialEnvelopeFields {
  if (scan === undefined) return {};
  const out: { -readonly [K in keyof PartialEnvelopeFields]: string } = {};
  const put = (k: keyof PartialEnvelopeFields, name: string): void => {
    const s = stringField(scan, name);
    if (s !== undefined) out[k] = s;
  };
  put("eventType", "event_type");
  put("eventId", "event_id");
  put("issuedAt", "issued_at");
  put("nonce", "nonce");
  put("signature", "signature");
  return out;
}

/**
 * Step 1: parse and validate the structure of one event's `data` text. Never throws.
 *
 * Hot path (docs/decisions.md "Journal"): one pass of {@link scanEnvelopeFast} and hand-written
 * checks that are at least as strict as {@link EnvelopeFieldsSchema}. Anything they do not
 * accept goes through {@link parseEnvelopeFull} (full scanner + the valibot schema), which then
 * decides and explains, so the schema stays the authority for every rejection.
 */
export function parseEnvelope(text: string): ParseResult {
  const f = scanEnvelopeFast(text);
  if (f === undefined) return parseEnvelopeFull(text);
  const [eventType, eventId, issuedAt, nonce, signature] = f.strings;
  if (
    eventType === undefined ||
    eventType === "" ||
    eventId === undefined ||
    eventId === "" ||
    issuedAt === undefined ||
    nonce === undefined ||
    nonce === "" ||
    utf8Length(nonce, 256) > 256 ||
    signature === undefined ||
    !SIGNATURE_RE.test(signature)
  ) {
    return parseEnvelopeFull(text);
  }
  const t = parseRfc3339(issuedAt);
  if (t === undefined) return parseEnvelopeFull(text);
  let payloadText = "null";
  let payloadCompact = "null";
  if (f.payloadStart >= 0) {
    payloadText = text.slice(f.payloadStart, f.payloadEnd);
    payloadCompact = f.payloadCompact ? payloadText : compactJsonSlice(text, f.payloadStart, f.payloadEnd);
  }
  return {
    ok: true,
    envelope: { eventType, eventId, issuedAt, issuedAtMs: t.epochMs, nonce, signature, payloadText },
    canonicalIssuedAt: formatCanonicalIssuedAt(t.wall, t.fraction, t.offsetMinutes, t.offset),
    payloadCompact,
  };
}

/**
 * Step 1 through the full scanner and the valibot schema: the reference the fast path of
 * {@link parseEnvelope} must agree with (tests compare both), and the source of every
 * rejection message. @internal exported for tests and benchmarks.
 */
export function parseEnvelopeFull(text: string): ParseResult {
  const scan = scanTopLevelObject(text);
  if (!scan.ok) return { ok: false, detail: scan.message, fields: {} };
  const input: Record<string, unknown> = {};
  for (const k of SIGNED_KEYS) {
    const m = scan.byKey.get(k);
    // Non-string JSON values become a marker that fails v.string() with a clear message.
    if (m !== undefined) input[k] = m.kind === "string" ? m.value : { json: m.kind };
  }
  const r = v.safeParse(EnvelopeFieldsSchema, input);
  if (!r.success) {
    return { ok: false, detail: r.issues.map((i) => i.message).join("; "), fields: partialFields(scan) };
  }
  const o = r.output;
  const p = scan.byKey.get("payload");
  const payloadText = p === undefined ? "null" : text.slice(p.start, p.end);
  const payloadCompact = p === undefined ? "null" : compactJsonSlice(text, p.start, p.end);
  const t = o.issued_at;
  return {
    ok: true,
    envelope: {
      eventType: o.event_type,
      eventId: o.event_id,
      issuedAt: stringField(scan, "issued_at") as string,
      issuedAtMs: t.epochMs,
      nonce: o.nonce,
      signature: o.signature,
      payloadText,
    },
    canonicalIssuedAt: formatCanonicalIssuedAt(t.wall, t.fraction, t.offsetMinutes, t.offset),
    payloadCompact,
  };
}

/** crypto.verify that reports a throwing key or input as "does not verify". */
function ed25519Verify(message: Uint8Array, key: KeyObject, sig: Uint8Array): boolean {
  try {
    return cryptoVerify(null, message, key, sig);
  } catch {
    return false;
  }
}

function utf8Length(s: string, limit: number): number {
  // Cheap bounds first: UTF-8 needs between 1 and 3 bytes per UTF-16 code unit.
  if (s.length > limit || s.length * 3 <= limit) return s.length;
  return Buffer.byteLength(s, "utf8");
}

/**
 * Runs the full §8.2 pipeline over one event's `data` (text from the SSE parser, or raw bytes,
 * which must be valid UTF-8). Never throws for any input; the nonce is recorded only on
 * `verified`.
 */
export function verifyEnvelope(data: string | Uint8Array, deps: VerifierDeps): VerifyResult {
  const maxBytes = deps.maxEventBytes ?? MAX_EVENT_BYTES;
  let text: string;
  if (typeof data === "string") {
    if (utf8Length(data, maxBytes) > maxBytes) {
      return { verdict: "rejected", reason: "oversize", detail: `event larger than ${maxBytes} bytes` };
    }
    text = data;
  } else {
    if (data.length > maxBytes) {
      return { verdict: "rejected", reason: "oversize", detail: `event larger than ${maxBytes} bytes` };
    }
    try {
      text = utf8Fatal.decode(data);
    } catch {
      return { verdict: "rejected", reason: "malformed", fields: {}, detail: "data is not valid UTF-8" };
    }
  }

  // 1. Structure.
  const parsed = parseEnvelope(text);
  if (!parsed.ok) return { verdict: "rejected", reason: "malformed", fields: parsed.fields, detail: parsed.detail };
  const env = parsed.envelope;

  // 2. Re-delivery of a journaled event: not a security event.
  if (deps.isDuplicate(env.eventId, env.signature)) return { verdict: "duplicate", envelope: env };

  // 3. Staleness, both directions, bounds inclusive (exactly 5 min old is still fresh).
  const now = deps.now();
  const skew = deps.maxSkewMs ?? MAX_SKEW_MS;
  if (now - env.issuedAtMs > skew) {
    return { verdict: "rejected", reason: "stale", envelope: env, detail: `issued_at ${env.issuedAt} older than ${skew} ms` };
  }
  if (env.issuedAtMs - now > skew) {
    return { verdict: "rejected", reason: "future", envelope: env, detail: `issued_at ${env.issuedAt} ahead by more than ${skew} ms` };
  }

  // 4. Signature: current key, then the previous one during its transition.
  const keys = deps.keys();
  if (keys === undefined) {
    return { verdict: "rejected", reason: "bad_signature", envelope: env, detail: "no trusted signing key" };
  }
  const message = canonicalBytes({
    eventType: env.eventType,
    eventId: env.eventId,
    issuedAt: parsed.canonicalIssuedAt,
    nonce: env.nonce,
    payload: parsed.payloadCompact,
  });
  const sig = Buffer.from(env.signature, "base64");
  let key: "current" | "previous" | undefined;
  if (ed25519Verify(message, keys.current, sig)) key = "current";
  else if (
    keys.previous !== undefined &&
    keys.transitionExpiresMs !== undefined &&
    now < keys.transitionExpiresMs &&
    ed25519Verify(message, keys.previous, sig)
  ) {
    key = "previous";
  }
  if (key === undefined) {
    return { verdict: "rejected", reason: "bad_signature", envelope: env, detail: "signature does not verify" };
  }

  // 5. Nonce, only for authentic events (an attacker must not be able to fill the store).
  const ins = deps.nonces.insert(env.nonce, env.issuedAtMs, now);
  if (ins === "replay") {
    return { verdict: "rejected", reason: "replay", envelope: env, detail: "nonce already used" };
  }
  if (ins === "full") {
    return { verdict: "rejected", reason: "nonce_store_full", envelope: env, detail: "nonce store full" };
  }
  return { verdict: "verified", envelope: env, key };
}
