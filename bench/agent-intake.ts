/**
 * Agent event intake, end to end inside the process: `Journal.intakeBatch` on a real SQLite file
 * (the agent's `openDatabase`: WAL, synchronous=FULL, every migration) followed by the
 * `Dispatcher` running a no-op `peer_added` handler — the supervisor's stream path
 * (`onEvents → intakeBatch → kick`, src/agent/supervisor.ts) minus the mesh apply — against a raw
 * `crypto.verify` loop over the same canonical bytes, in the same run. Target: agent path ≥ 70 %
 * of raw verify.
 *
 * Events arrive in bursts of `--burst` (default 50, ≈ 24 KiB: what one stream read chunk holds
 * during an event storm); each burst is one `intakeBatch` call, i.e. one transaction and one
 * fsync, exactly as the stream loop hands a chunk over. `--burst 1` measures one event per read.
 * Batches of 50 alternate between raw and agent sides so load from other jobs hits both alike.
 * A second journal with `PRAGMA synchronous = NORMAL` set by the bench (not what the agent runs)
 * is measured in the same batches as a diagnostic: it shows how much of the gap is fsync.
 *
 * Dispatch is timed until the handlers of the batch ran, not until their outcomes are committed:
 * as in the agent, queued outcomes ride on the next intake transaction (docs/decisions.md
 * "Journal"), and the commit of the last ones (`idle()` at the end of a round) is timed as
 * dispatch. `--idle-each-batch` waits for `idle()` (outcomes committed) after every batch of 50
 * instead — the round-1 method; it adds one commit per batch that a continuous stream does not
 * pay.
 *
 *   node_modules/.bin/bun bench/agent-intake.ts [--events 1000] [--rounds 3] [--burst 50] [--dir /var/tmp] [--idle-each-batch]
 */
import type { Database } from "bun:sqlite";
import { generateKeyPairSync, sign, verify } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canonicalIssuedAt, canonicalText, compactJsonSlice } from "../src/events/canonical.ts";
import { NonceStore } from "../src/events/nonce-store.ts";
import type { SseMessage } from "../src/events/sse.ts";
import { Dispatcher, Journal, DEFAULT_JOURNAL_OPTIONS } from "../src/journal/index.ts";
import { nullLogger } from "../src/log/index.ts";
import { openDatabase } from "../src/store/db.ts";
import { flag, hasFlag, median } from "./lib.ts";

const N = Number(flag("events", "1000"));
const ROUNDS = Number(flag("rounds", "3"));
const DIR = flag("dir", tmpdir());
const BATCH = 50;
const BURST = Number(flag("burst", String(BATCH)));
const IDLE_EACH_BATCH = hasFlag("idle-each-batch");
if (!(Number.isInteger(BURST) && BURST >= 1 && BURST <= BATCH)) throw new Error(`--burst must be an integer in 1..${BATCH}`);

const { privateKey, publicKey } = generateKeyPairSync("ed25519");
const issuedMs = Date.now(); // events must stay inside the 5 min staleness window: keep runs short

// Realistic peer_added events (the payload shape the CP sends), signed over the canonical form.
const data: string[] = [];
const canon: Buffer[] = [];
const sigs: Buffer[] = [];
for (let i = 0; i < N; i++) {
  const payload = {
    id: `n_${i.toString(16).padStart(16, "0")}`,
    public_key: Buffer.alloc(32, i & 255).toString("base64"),
    mesh_ip: `10.100.${1 + (i >> 8)}.${1 + (i & 127)}`,
    endpoint: `203.0.113.${i & 255}:51820`,
    allowed_ips: [`10.100.${1 + (i >> 8)}.${1 + (i & 127)}/32`],
    psk: Buffer.alloc(32, 7).toString("base64"),
  };
  const issued = new Date(issuedMs).toISOString();
  const nonce = Buffer.from(`nonce-${process.pid}-${i}`).toString("base64");
  const eventId = `evt_${String(i + 1).padStart(10, "0")}`;
  const payloadText = JSON.stringify(payload);
  const c = canonicalText({
    eventType: "peer_added",
    eventId,
    issuedAt: canonicalIssuedAt(issued) as string,
    nonce,
    payload: compactJsonSlice(payloadText, 0, payloadText.length),
  });
  const sig = sign(null, Buffer.from(c, "utf8"), privateKey);
  canon.push(Buffer.from(c, "utf8"));
  sigs.push(sig);
  data.push(JSON.stringify({ event_type: "peer_added", event_id: eventId, issued_at: issued, nonce, payload, signature: sig.toString("base64") }));
}

/** One agent-side pipeline over a fresh database. */
interface Side {
  name: string;
  db: Database;
  journal: Journal;
  dispatcher: Dispatcher;
  handled: number;
  /** Resolves when `handled` reaches `target`. */
  target: number;
  reached: (() => void) | undefined;
  intakeMs: number;
  dispatchMs: number;
}

const dirs: string[] = [];

function makeSide(name: string, synchronous: "FULL" | "NORMAL"): Side {
  const dir = mkdtempSync(join(DIR, `plexd-bench-intake-${process.pid}-`));
  dirs.push(dir);
  const db = openDatabase(join(dir, "plexd.db"));
  if (synchronous !== "FULL") db.exec(`PRAGMA synchronous = ${synchronous}`);
  const journal = new Journal({
    db,
    nodeId: () => "n_self",
    keys: () => ({ current: publicKey }),
    nonces: new NonceStore(),
    log: nullLogger,
    options: DEFAULT_JOURNAL_OPTIONS,
  });
  journal.seedNonces();
  const side: Side = {
    name,
    db,
    journal,
    dispatcher: undefined as unknown as Dispatcher,
    handled: 0,
    target: 0,
    reached: undefined,
    intakeMs: 0,
    dispatchMs: 0,
  };
  side.dispatcher = new Dispatcher({
    journal,
    mode: () => "node",
    log: nullLogger,
    handlers: {
      peer_added: async () => {
        if (++side.handled >= side.target && side.reached !== undefined) {
          side.reached();
          side.reached = undefined;
        }
      },
    },
  });
  side.dispatcher.start();
  return side;
}

async function closeSide(s: Side): Promise<void> {
  await s.dispatcher.stop();
  s.db.close();
}

function rawBatch(from: number): number {
  const t0 = performance.now();
  for (let i = from; i < from + BATCH; i++) {
    if (!verify(null, canon[i]!, publicKey, sigs[i]!)) throw new Error("raw verify failed");
  }
  return performance.now() - t0;
}

async function agentBatch(s: Side, from: number): Promise<void> {
  const t0 = performance.now();
  for (let b = from; b < from + BATCH; b += BURST) {
    // One stream read chunk: the SSE items the parser produced from it, handed over together.
    const items: SseMessage[] = [];
    for (let i = b; i < Math.min(b + BURST, from + BATCH); i++) {
      const d = data[i]!;
      const id = `evt_${String(i + 1).padStart(10, "0")}`;
      items.push({ type: "event", event: "peer_added", data: d, dataBytes: Buffer.byteLength(d), id, lastEventId: id });
    }
    const rs = s.journal.intakeBatch(items);
    for (const r of rs) if (r.verdict !== "verified") throw new Error(`${s.name} intake seq ${r.seq}: ${r.verdict} ${r.reason ?? ""}`);
    s.dispatcher.kick();
  }
  const t1 = performance.now();
  s.target = from + BATCH;
  if (IDLE_EACH_BATCH) await s.dispatcher.idle();
  else if (s.handled < s.target) await new Promise<void>((resolve) => (s.reached = resolve));
  const t2 = performance.now();
  s.intakeMs += t1 - t0;
  s.dispatchMs += t2 - t1;
}

interface RoundResult {
  raw: number;
  full: { total: number; intake: number; dispatch: number };
  normal: { total: number; intake: number; dispatch: number };
}

async function round(): Promise<RoundResult> {
  const full = makeSide("sync=FULL", "FULL");
  const normal = makeSide("sync=NORMAL", "NORMAL");
  let rawMs = 0;
  try {
    for (let from = 0, k = 0; from + BATCH <= N; from += BATCH, k++) {
      // Rotate the order so no side always runs first (cache, GC, neighbours' load).
      const order = [0, 1, 2].map((j) => (j + k) % 3);
      for (const o of order) {
        if (o === 0) rawMs += rawBatch(from);
        else await agentBatch(o === 1 ? full : normal, from);
      }
    }
    // Commit the outcomes still queued (timed as dispatch).
    for (const s of [full, normal]) {
      const t0 = performance.now();
      await s.dispatcher.idle();
      s.dispatchMs += performance.now() - t0;
    }
    const done = Math.floor(N / BATCH) * BATCH;
    for (const s of [full, normal]) {
      const left = s.db.query("SELECT COUNT(*) AS n FROM events WHERE status <> 'done'").get() as { n: number };
      if (left.n !== 0) throw new Error(`${s.name}: ${left.n} rows not done after idle()`);
    }
    for (const s of [full, normal]) if (s.handled !== done) throw new Error(`${s.name}: handler ran ${s.handled} times, want ${done}`);
    const rate = (msTotal: number) => done / (msTotal / 1000);
    const r = (s: Side) => ({ total: rate(s.intakeMs + s.dispatchMs), intake: rate(s.intakeMs), dispatch: rate(s.dispatchMs) });
    return { raw: rate(rawMs), full: r(full), normal: r(normal) };
  } finally {
    await closeSide(full);
    await closeSide(normal);
  }
}

try {
  // Warm-up (JIT, page cache) on a short prefix.
  {
    const s = makeSide("warm", "FULL");
    for (let from = 0; from + BATCH <= Math.min(N, 200); from += BATCH) {
      rawBatch(from);
      await agentBatch(s, from);
    }
    await closeSide(s);
  }
  const rs: RoundResult[] = [];
  for (let r = 0; r < ROUNDS; r++) rs.push(await round());

  const col = (f: (r: RoundResult) => number) => rs.map(f);
  const line = (label: string, f: (r: RoundResult) => number) =>
    console.log(`${label.padEnd(44)} ${median(col(f)).toFixed(0).padStart(7)} /s   (rounds ${col(f).map((x) => x.toFixed(0)).join(" ")})`);
  const pct = (f: (r: RoundResult) => number) => col((r) => (f(r) / r.raw) * 100);
  const ratioLine = (label: string, f: (r: RoundResult) => number, target: boolean) => {
    const p = pct(f);
    const m = median(p);
    console.log(`${label.padEnd(44)} ${m.toFixed(1).padStart(7)} %    (rounds ${p.map((x) => x.toFixed(1)).join(" ")})${target ? ` — target ≥ 70 % ${m >= 70 ? "OK" : "BELOW TARGET"}` : ""}`);
  };
  const avgBytes = Math.round(data.reduce((a, e) => a + e.length, 0) / N);
  console.log(
    `agent-intake: ${N} peer_added events × ${ROUNDS} rounds, ~${avgBytes} B each, bursts of ${BURST} per intakeBatch, batches of ${BATCH} interleaved${IDLE_EACH_BATCH ? ", idle() after each batch" : ""}, db in ${DIR}`,
  );
  line("raw crypto.verify (baseline)", (r) => r.raw);
  line("agent path: intake + dispatch (sync=FULL)", (r) => r.full.total);
  line("  of which intake only (append+verify)", (r) => r.full.intake);
  line("  of which dispatch only (no-op handler)", (r) => r.full.dispatch);
  line("diagnostic: intake + dispatch, sync=NORMAL", (r) => r.normal.total);
  line("  of which intake only", (r) => r.normal.intake);
  line("  of which dispatch only", (r) => r.normal.dispatch);
  ratioLine("ratio agent path (FULL) / raw", (r) => r.full.total, true);
  ratioLine("ratio intake only (FULL) / raw", (r) => r.full.intake, false);
  ratioLine("ratio agent path (NORMAL, diagnostic) / raw", (r) => r.normal.total, false);
  const perEvent = (rate: number) => `${((1 / rate) * 1e6).toFixed(0)} µs`;
  const m = (f: (r: RoundResult) => number) => median(col(f));
  console.log(
    `per event (median): raw verify ${perEvent(m((r) => r.raw))}, FULL intake ${perEvent(m((r) => r.full.intake))} + dispatch ${perEvent(m((r) => r.full.dispatch))}, NORMAL intake ${perEvent(m((r) => r.normal.intake))} + dispatch ${perEvent(m((r) => r.normal.dispatch))}`,
  );
} finally {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
