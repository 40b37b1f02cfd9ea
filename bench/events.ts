/**
 * Signed-event intake throughput: the full path (parse + canonical + Ed25519 verify + nonce)
 * against a raw `crypto.verify` loop over the same pre-built canonical bytes, in the same run.
 * Target: intake ≥ 70 % of raw verify.  Run: `bun bench/events.ts [events] [rounds]`.
 */
import { verify } from "node:crypto";
import { canonicalText } from "../src/events/canonical.ts";
import { parseEnvelope, verifyEnvelope, type VerifierDeps } from "../src/events/envelope.ts";
import { NonceStore } from "../src/events/nonce-store.ts";
import { keyPairFromSeed, signCanonical, VECTOR_SEED } from "../src/events/testing.ts";

const N = Number(process.argv[2] ?? 2000);
const ROUNDS = Number(process.argv[3] ?? 5);
const ISSUED = "2025-01-15T10:30:00.250Z";
const NOW = Date.parse(ISSUED) + 1000;

const keys = keyPairFromSeed(VECTOR_SEED);

// Realistic events: a peer_added-sized payload with whitespace and an HTML-escaped character.
const events: string[] = [];
const canon: Uint8Array[] = [];
const sigs: Uint8Array[] = [];
for (let i = 0; i < N; i++) {
  const payload = `{ "id": "n_${i}", "public_key": "${Buffer.alloc(32, i).toString("base64")}", "mesh_ip": "10.100.${i >> 8}.${i & 255}", "endpoint": "203.0.113.${i & 255}:51820", "allowed_ips": [ "10.100.${i >> 8}.${i & 255}/32" ], "psk": "", "metadata": { "note": "a&b" } }`;
  const compact = payload.replace(/ (?=(?:[^"]*"[^"]*")*[^"]*$)/g, "").replace("a&b", "a\\u0026b");
  const text = `{"event_type":"peer_added","event_id":"evt_${i}","issued_at":"${ISSUED.replace(".250", ".25")}","nonce":"nonce-${i}","payload":${compact}}`;
  const signature = signCanonical(keys.privateKey, text);
  const data = `{"event_type":"peer_added","event_id":"evt_${i}","issued_at":"${ISSUED}","nonce":"nonce-${i}","payload":${payload},"signature":"${signature}"}`;
  // Sanity: our canonical text is the one signed.
  const p = parseEnvelope(data);
  if (!p.ok) throw new Error(p.detail);
  const mine = canonicalText({ eventType: p.envelope.eventType, eventId: p.envelope.eventId, issuedAt: p.canonicalIssuedAt, nonce: p.envelope.nonce, payload: p.payloadCompact });
  if (mine !== text) throw new Error(`canonical mismatch:\n${mine}\n${text}`);
  events.push(data);
  canon.push(Buffer.from(text));
  sigs.push(Buffer.from(signature, "base64"));
}

const BATCH = 50;

function rawBatch(from: number): number {
  const t0 = performance.now();
  for (let i = from; i < from + BATCH; i++) {
    if (!verify(null, canon[i]!, keys.publicKey, sigs[i]!)) throw new Error("raw verify failed");
  }
  return performance.now() - t0;
}

function intakeBatch(from: number, deps: VerifierDeps): number {
  const t0 = performance.now();
  for (let i = from; i < from + BATCH; i++) {
    const r = verifyEnvelope(events[i]!, deps);
    if (r.verdict !== "verified") throw new Error(`intake ${i}: ${r.verdict}`);
  }
  return performance.now() - t0;
}

/**
 * One round over all events. Raw and intake alternate in batches of 50 so that load from other
 * processes on a shared machine hits both sides alike (whole-loop timing swings ±30 % here).
 */
function round(): { raw: number; intake: number } {
  const journal = new Set<string>();
  const deps: VerifierDeps = {
    keys: () => ({ current: keys.publicKey }),
    isDuplicate: (id, sig) => journal.has(`${id}\u0000${sig}`),
    nonces: new NonceStore(),
    now: () => NOW,
  };
  let rawMs = 0;
  let intakeMs = 0;
  for (let from = 0; from + BATCH <= N; from += BATCH) {
    if ((from / BATCH) % 2 === 0) {
      rawMs += rawBatch(from);
      intakeMs += intakeBatch(from, deps);
    } else {
      intakeMs += intakeBatch(from, deps);
      rawMs += rawBatch(from);
    }
  }
  const done = Math.floor(N / BATCH) * BATCH;
  return { raw: done / (rawMs / 1000), intake: done / (intakeMs / 1000) };
}

round(); // warm-up (JIT)
const raw: number[] = [];
const intake: number[] = [];
const ratios: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const x = round();
  raw.push(x.raw);
  intake.push(x.intake);
  ratios.push(x.intake / x.raw);
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ratio = median(ratios);
const avgBytes = Math.round(events.reduce((a, e) => a + e.length, 0) / N);
const fmt = (xs: number[]): string => xs.map((x) => x.toFixed(0)).join(" ");
console.log(`events: ${N} × ${ROUNDS} rounds, ~${avgBytes} B each, batches of ${BATCH} interleaved`);
console.log(`raw crypto.verify : ${median(raw).toFixed(0)} /s median (rounds ${fmt(raw)})`);
console.log(`intake (full path): ${median(intake).toFixed(0)} /s median (rounds ${fmt(intake)})`);
console.log(`ratio: ${(ratio * 100).toFixed(1)} % median (rounds ${ratios.map((x) => (x * 100).toFixed(1)).join(" ")}) — target ≥ 70 % ${ratio >= 0.7 ? "OK" : "BELOW TARGET"}`);
