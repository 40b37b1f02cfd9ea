/**
 * Test support for src/journal (not imported by production code): a real temp `plexd.db`, an
 * Ed25519 signer over the canonical form of src/events/canonical.ts, a fake clock, and a
 * capturing logger.
 */
import type { Database } from "bun:sqlite";
import { generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canonicalIssuedAt, canonicalText, compactJsonSlice } from "../events/canonical.ts";
import type { TrustedKeys } from "../events/keys.ts";
import { NonceStore } from "../events/nonce-store.ts";
import type { SseMessage, SseOversize } from "../events/sse.ts";
import { VirtualTime } from "../events/testing.ts";
import type { Fields, Logger } from "../log/index.ts";
import { openDatabase } from "../store/db.ts";
import { Dispatcher, type EventHandler } from "./dispatcher.ts";
import { DEFAULT_JOURNAL_OPTIONS, Journal, type JournalOptions } from "./journal.ts";

/** A log line captured by {@link captureLogger}. */
export interface LogLine {
  level: "debug" | "info" | "warn" | "error";
  msg: string;
  fields: Fields;
}

/** Logger that records every line (all levels). */
export function captureLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const make = (base: Fields): Logger => ({
    debug: (msg, f) => void lines.push({ level: "debug", msg, fields: { ...base, ...f } }),
    info: (msg, f) => void lines.push({ level: "info", msg, fields: { ...base, ...f } }),
    warn: (msg, f) => void lines.push({ level: "warn", msg, fields: { ...base, ...f } }),
    error: (msg, f) => void lines.push({ level: "error", msg, fields: { ...base, ...f } }),
    with: (f) => make({ ...base, ...f }),
    setLevel: () => {},
  });
  return Object.assign(make({}), { lines });
}

/** Temp directories made by {@link tempDb}; remove with {@link cleanupTemp}. */
const temps: string[] = [];
const openDbs: Database[] = [];

/** Opens a fresh `plexd.db` (all migrations) in a new temp directory. */
export function tempDb(): { db: Database; path: string; reopen: () => Database } {
  const dir = mkdtempSync(join(tmpdir(), `plexd-journal-${process.pid}-`));
  temps.push(dir);
  const path = join(dir, "plexd.db");
  const open = (): Database => {
    const db = openDatabase(path);
    openDbs.push(db);
    return db;
  };
  return { db: open(), path, reopen: open };
}

/** Closes every database and removes every temp directory made so far. */
export function cleanupTemp(): void {
  for (const db of openDbs.splice(0)) db.close();
  for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** A signing key pair generated for the test run. */
export function newSigner(): { privateKey: KeyObject; keys: TrustedKeys } {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return { privateKey, keys: { current: publicKey } };
}

let nonceCounter = 0;

/** Fields of a test event. */
export interface EventSpec {
  type: string;
  id: string;
  payload?: unknown;
  issuedMs: number;
  nonce?: string;
}

/** Builds the `data` text of a signed envelope (canonical form of protocol.md §8.1). */
export function signedData(privateKey: KeyObject, e: EventSpec): string {
  const issued = new Date(e.issuedMs).toISOString();
  const nonce = e.nonce ?? `nonce-${process.pid}-${++nonceCounter}`;
  const payloadText = JSON.stringify(e.payload ?? null);
  const canonical = canonicalText({
    eventType: e.type,
    eventId: e.id,
    issuedAt: canonicalIssuedAt(issued) as string,
    nonce,
    payload: compactJsonSlice(payloadText, 0, payloadText.length),
  });
  const signature = sign(null, Buffer.from(canonical, "utf8"), privateKey).toString("base64");
  return JSON.stringify({ event_type: e.type, event_id: e.id, issued_at: issued, nonce, payload: e.payload ?? null, signature });
}

/** An SSE message item around `data`. */
export function msg(data: string, id?: string, event?: string): SseMessage {
  return { type: "event", event, data, dataBytes: Buffer.byteLength(data), id, lastEventId: id ?? "" };
}

/** An oversize marker item. */
export function oversize(id?: string): SseOversize {
  return { type: "oversize", event: undefined, id, lastEventId: id ?? "", bytesSeen: (1 << 20) + 1 };
}

/** Fast test options: 6 attempts, 2 s base, 5 min cap. */
export const TEST_OPTIONS: JournalOptions = { ...DEFAULT_JOURNAL_OPTIONS };

/** Start of virtual time in tests (a fixed instant). */
export const T0 = Date.UTC(2025, 0, 15, 10, 30, 0);

/** Everything a test needs around one database. */
export interface Rig {
  db: Database;
  path: string;
  vt: VirtualTime;
  log: ReturnType<typeof captureLogger>;
  signer: ReturnType<typeof newSigner>;
  nonces: NonceStore;
  journal: Journal;
  /** Signs and intakes an event at the current virtual time. */
  send: (e: Omit<EventSpec, "issuedMs"> & { issuedMs?: number }, sseId?: string) => ReturnType<Journal["intake"]>;
  dispatcher: (handlers: Record<string, EventHandler>, mode?: "node" | "bridge") => Dispatcher;
}

/** Builds a {@link Rig}; `from` reuses the database, clock and signer of an earlier rig (restart). */
export function rig(opts: { options?: Partial<JournalOptions>; from?: Rig; nonces?: NonceStore } = {}): Rig {
  const base = opts.from;
  const t = base === undefined ? tempDb() : { db: base.db, path: base.path };
  const vt = base?.vt ?? new VirtualTime(T0);
  const log = captureLogger();
  const signer = base?.signer ?? newSigner();
  const nonces = opts.nonces ?? new NonceStore();
  const journal = new Journal({
    db: t.db,
    nodeId: () => "n_self",
    keys: () => signer.keys,
    nonces,
    now: vt.now,
    log,
    options: { ...TEST_OPTIONS, ...opts.options },
  });
  let sseCounter = 0;
  const r: Rig = {
    db: t.db,
    path: t.path,
    vt,
    log,
    signer,
    nonces,
    journal,
    send: (e, sseId) =>
      journal.intake(msg(signedData(signer.privateKey, { ...e, issuedMs: e.issuedMs ?? vt.now() }), sseId ?? `sse-${++sseCounter}`)),
    dispatcher: (handlers, mode = "node") =>
      new Dispatcher({
        journal,
        handlers,
        mode: () => mode,
        log,
        sleep: (ms, signal) => vt.sleep(ms, signal ?? new AbortController().signal),
        // Mid-point jitter: delays are exactly base·2ⁿ.
        random: () => 0.5,
      }),
  };
  return r;
}

/** Status of a row. */
export function statusOf(db: Database, seq: number): string | undefined {
  return (db.query("SELECT status FROM events WHERE seq = ?").get(seq) as { status: string } | null)?.status;
}
