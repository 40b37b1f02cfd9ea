/**
 * The event journal (operations.md §1): every SSE event is journaled together with the
 * Last-Event-ID advance and its verification verdict in one transaction (docs/decisions.md
 * "Journal"): a crash before the commit leaves nothing, and the CP re-delivers the event after
 * the old Last-Event-ID. {@link Journal.intakeBatch} does that for all events of one stream read
 * chunk in one transaction — one fsync for the chunk (group commit). The journal is also the
 * durable nonce store (unique index over verified nonces) and the source of the dispatcher, the
 * DLQ and replay; it hands the parsed envelopes of fresh rows to the dispatcher in memory.
 */
import type { Database } from "bun:sqlite";
import { statSync } from "node:fs";
import { verifyEnvelope, type Envelope, type PartialEnvelopeFields, type RejectReason, type VerifyResult } from "../events/envelope.ts";
import type { TrustedKeys } from "../events/keys.ts";
import type { NonceInsertResult, NonceStore } from "../events/nonce-store.ts";
import type { SseMessage, SseOversize } from "../events/sse.ts";
import type { Logger } from "../log/index.ts";
import { kvGet, kvSet } from "../store/db.ts";
import { parseRfc3339 } from "../util/duration.ts";
import { JournalError } from "./errors.ts";
import { getRow, ts, type EventRow } from "./rows.ts";
import { NEVER_REPLAY, orderingKey, parsePayload, TERMINAL_STATUSES } from "./types.ts";

/** kv key of the SSE Last-Event-ID (protocol.md §7). */
export const LAST_EVENT_ID_KEY = "sse.last_event_id";
/** Nonce lifetime / staleness window (protocol.md §8.2). */
const NONCE_WINDOW_MS = 5 * 60_000;

/** `journal.*` settings (config.md §2.20), durations in ms. */
export interface JournalOptions {
  maxRetries: number;
  retryBaseMs: number;
  retryMaxMs: number;
  retentionMs: number;
  maxRows: number;
  dlqRetentionMs: number;
  maxDbBytes: number;
}

/** Spec defaults (config.md §2.20). */
export const DEFAULT_JOURNAL_OPTIONS: JournalOptions = {
  maxRetries: 5,
  retryBaseMs: 2_000,
  retryMaxMs: 300_000,
  retentionMs: 168 * 3_600_000,
  maxRows: 100_000,
  dlqRetentionMs: 720 * 3_600_000,
  maxDbBytes: 512 * 1024 * 1024,
};

/** Outcome of {@link Journal.intake}. */
export interface IntakeResult {
  seq: number;
  verdict: "verified" | "duplicate" | "rejected";
  reason?: RejectReason;
  envelope?: Envelope;
}

/**
 * A verified row journaled by this process and not yet taken by the dispatcher: its envelope and
 * parsed payload (no re-parse at dispatch). `undefined` parts when the in-memory cache was full.
 * @internal between {@link Journal} and the dispatcher.
 */
export interface FreshIntake {
  envelope: Envelope;
  payload: { ok: true; value: unknown } | { ok: false; error: string };
}

/**
 * One queued dispatcher outcome write (row status after a handler ran). @internal between the
 * dispatcher and {@link Journal.intakeBatch}, which runs queued writes inside its own
 * transaction so they need no commit (no fsync) of their own.
 */
export interface OutcomeWrite {
  readonly seq: number;
  readonly run: () => void;
}

/** Where {@link Journal.intakeBatch} takes queued outcome writes from. @internal */
export interface OutcomeQueue {
  /** Removes and returns every queued write. */
  takeOutcomes(): OutcomeWrite[];
  /** Puts writes back at the front (the transaction that took them rolled back). */
  restoreOutcomes(writes: OutcomeWrite[]): void;
}

// Parsed envelopes kept for the dispatcher; beyond this (intake far ahead of dispatch) rows are
// still dispatched as fresh, their envelope is just parsed again from `raw`.
const FRESH_CACHE_MAX = 4096;
const NO_OUTCOMES: OutcomeWrite[] = [];

/**
 * Nonce inserts of one intake transaction, applied to the real store only after the commit: a
 * rolled-back transaction must not leave a nonce behind, or the re-delivered event would be
 * rejected `replay` and lost. Same decisions as {@link NonceStore.insert} (the pending inserts
 * count against the capacity).
 */
class StagedNonces {
  readonly #store: NonceStore;
  readonly #staged = new Map<string, { issuedAtMs: number; nowMs: number }>();

  constructor(store: NonceStore) {
    this.#store = store;
  }

  insert(nonce: string, issuedAtMs: number, nowMs: number): NonceInsertResult {
    this.#store.cleanup(nowMs);
    if (this.#store.has(nonce, nowMs) || this.#staged.has(nonce)) return "replay";
    if (this.#store.size + this.#staged.size >= this.#store.capacity) return "full";
    this.#staged.set(nonce, { issuedAtMs, nowMs });
    return "inserted";
  }

  /** After the commit: the staged nonces go into the store (capacity was checked above). */
  apply(): void {
    for (const [nonce, s] of this.#staged) this.#store.insert(nonce, s.issuedAtMs, s.nowMs);
    this.#staged.clear();
  }
}

/** In-memory counters (reset at start), for metrics and health. */
export interface JournalStats {
  /** `sse_rejected_total{reason}`. */
  sse_rejected_total: Partial<Record<RejectReason, number>>;
  sse_duplicate_total: number;
  sse_verified_total: number;
}

/** Constructor dependencies of {@link Journal}. */
export interface JournalDeps {
  db: Database;
  /** Node identity at receipt (stored per row). */
  nodeId: () => string;
  /** Trusted signing keys now; undefined (none yet) rejects everything `bad_signature`. */
  keys: () => TrustedKeys | undefined;
  nonces: NonceStore;
  now?: () => number;
  log: Logger;
  options: JournalOptions;
}

function checkOptions(o: JournalOptions): void {
  const bad = (k: string, why: string): never => {
    throw new JournalError("invalid_option", `journal option ${k} ${why}, got ${String((o as unknown as Record<string, unknown>)[k])}`);
  };
  if (!Number.isInteger(o.maxRetries) || o.maxRetries < 0) bad("maxRetries", "must be an integer ≥ 0");
  if (!(o.retryBaseMs > 0)) bad("retryBaseMs", "must be > 0");
  if (!(o.retryMaxMs >= o.retryBaseMs)) bad("retryMaxMs", "must be ≥ retryBaseMs");
  if (!(o.retentionMs > 0)) bad("retentionMs", "must be > 0");
  if (!Number.isInteger(o.maxRows) || o.maxRows < 1) bad("maxRows", "must be an integer ≥ 1");
  if (!(o.dlqRetentionMs > 0)) bad("dlqRetentionMs", "must be > 0");
  if (!(o.maxDbBytes > 0)) bad("maxDbBytes", "must be > 0");
}

function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  return (typeof e?.code === "string" && e.code.startsWith("SQLITE_CONSTRAINT")) || /UNIQUE constraint failed/.test(String(e?.message));
}

/** The journal over `plexd.db`. Synchronous: bun:sqlite never yields, so no await splits a step. */
export class Journal {
  readonly db: Database;
  readonly options: JournalOptions;
  readonly log: Logger;
  readonly now: () => number;
  readonly #nodeId: () => string;
  readonly #keys: () => TrustedKeys | undefined;
  readonly #nonces: NonceStore;
  #seeded = false;
  // Verified rows of this process not yet dispatched (seq → parsed envelope or undefined when
  // not cached). Only these take the dispatcher's fast path (see Dispatcher).
  readonly #fresh = new Map<number, FreshIntake | undefined>();
  #freshCached = 0;
  #outcomes: OutcomeQueue | undefined;
  readonly #stats: JournalStats = { sse_rejected_total: {}, sse_duplicate_total: 0, sse_verified_total: 0 };

  constructor(deps: JournalDeps) {
    checkOptions(deps.options);
    this.db = deps.db;
    this.options = deps.options;
    this.log = deps.log;
    this.now = deps.now ?? Date.now;
    this.#nodeId = deps.nodeId;
    this.#keys = deps.keys;
    this.#nonces = deps.nonces;
  }

  /**
   * Journals one event: row + `sse.last_event_id` advance + verification verdict in one
   * transaction (see {@link intakeBatch}). Oversize items are journaled rejected `oversize` (with
   * empty `raw`: the parser discarded the data).
   */
  intake(item: SseMessage | SseOversize): IntakeResult {
    return this.intakeBatch([item])[0] as IntakeResult;
  }

  /**
   * Journals the events of one stream read chunk, in order, in ONE transaction (one fsync):
   * each row is inserted with its verdict (protocol.md §8.2 — verified rows `pending`, rejected
   * and duplicate rows terminal) and `sse.last_event_id` ends at the last `id:` of the chunk.
   * Verification runs inside the transaction, before the commit; a crash or an error before the
   * commit leaves no row, no Last-Event-ID advance and no nonce, so the CP re-delivers the
   * events (docs/decisions.md "Journal"). Later events of the batch see earlier ones
   * (duplicates, nonces). Logs and counters follow the commit.
   */
  intakeBatch(items: readonly (SseMessage | SseOversize)[]): IntakeResult[] {
    if (items.length === 0) return [];
    const now = this.now();
    const at = ts(now);
    const nodeId = this.#nodeId();
    const staged = new StagedNonces(this.#nonces);
    const deps = {
      keys: this.#keys,
      // Only an accepted earlier copy makes a re-delivery harmless (protocol.md §7).
      isDuplicate: (eventId: string, signature: string) =>
        this.db.query("SELECT 1 FROM events WHERE event_id = ? AND signature = ? AND verify = 'verified' LIMIT 1").get(eventId, signature) !==
        null,
      // verifyEnvelope only calls insert(); see StagedNonces.
      nonces: staged as unknown as NonceStore,
      now: () => now,
    };
    const out: { res: IntakeResult; verdict: VerifyResult; fresh?: FreshIntake; item: SseMessage | SseOversize }[] = [];
    // Outcomes the dispatcher queued ride on this commit (docs/decisions.md "Journal").
    const carried = this.#outcomes?.takeOutcomes() ?? NO_OUTCOMES;
    const tx = this.db.transaction((): void => {
      for (const w of carried) w.run();
      const ins = this.db.query(
        `INSERT INTO events(sse_id, event_id, event_type, issued_at, nonce, signature, received_at, raw, verify, reject_reason,
           status, ordering_key, processed_at, node_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      let lastId: string | undefined | null = null; // null: no item carried an id
      for (const item of items) {
        if (item.id !== undefined) lastId = item.id;
        let v: VerifyResult =
          item.type === "oversize"
            ? { verdict: "rejected", reason: "oversize", detail: "event data larger than the limit (discarded while reading)" }
            : verifyEnvelope(item.data, deps);
        const raw = item.type === "event" ? Buffer.from(item.data, "utf8") : new Uint8Array(0);
        const sseId = item.id ?? null;
        let seq: number | undefined;
        let fresh: FreshIntake | undefined;
        if (v.verdict === "verified") {
          const env = v.envelope;
          const payload = parsePayload(env.payloadText);
          const key = payload.ok ? (orderingKey(env.eventType, payload.value) ?? null) : null;
          try {
            seq = Number(
              ins.run(sseId, env.eventId, env.eventType, env.issuedAt, env.nonce, env.signature, at, raw, "verified", null, "pending", key, null, nodeId)
                .lastInsertRowid,
            );
            fresh = { envelope: env, payload };
          } catch (err) {
            if (!isUniqueViolation(err)) throw err;
            // The nonce belongs to an earlier verified event the in-memory store already forgot:
            // the journal is the durable store, so this is a replay (fail closed).
            v = { verdict: "rejected", reason: "replay", envelope: env, detail: "nonce already journaled" };
          }
        }
        if (seq === undefined) {
          const verdict = v.verdict === "duplicate" ? "duplicate" : "rejected";
          const reason = v.verdict === "rejected" ? v.reason : null;
          const f: PartialEnvelopeFields = v.envelope ?? (v.verdict === "rejected" ? (v.fields ?? {}) : {});
          seq = Number(
            ins.run(
              sseId,
              f.eventId ?? null,
              f.eventType ?? null,
              f.issuedAt ?? null,
              f.nonce ?? null,
              f.signature ?? null,
              at,
              raw,
              verdict,
              reason,
              verdict,
              null,
              at,
              nodeId,
            ).lastInsertRowid,
          );
        }
        const res: IntakeResult =
          v.verdict === "verified"
            ? { seq, verdict: "verified", envelope: v.envelope }
            : v.verdict === "duplicate"
              ? { seq, verdict: "duplicate", envelope: v.envelope }
              : v.envelope === undefined
                ? { seq, verdict: "rejected", reason: v.reason }
                : { seq, verdict: "rejected", reason: v.reason, envelope: v.envelope };
        out.push(fresh === undefined ? { res, verdict: v, item } : { res, verdict: v, item, fresh });
      }
      // Events without `id:` do not move it; an empty `id:` resets it (W3C), so nothing is sent.
      if (lastId !== null) kvSet(this.db, LAST_EVENT_ID_KEY, lastId === "" ? undefined : lastId);
    });
    try {
      tx.immediate();
    } catch (err) {
      if (carried.length > 0) this.#outcomes?.restoreOutcomes(carried);
      throw err;
    }
    staged.apply();
    for (const o of out) this.#afterCommit(o.res, o.verdict, o.item, o.fresh);
    return out.map((o) => o.res);
  }

  /** Lets the dispatcher's queued outcome writes ride on intake transactions. @internal */
  attachOutcomes(queue: OutcomeQueue): void {
    this.#outcomes = queue;
  }

  /** Undoes {@link attachOutcomes} (only for the queue attached). @internal */
  detachOutcomes(queue: OutcomeQueue): void {
    if (this.#outcomes === queue) this.#outcomes = undefined;
  }

  /** Counters, logs and the dispatcher hand-over of one committed intake row. */
  #afterCommit(res: IntakeResult, v: VerifyResult, item: SseMessage | SseOversize, fresh: FreshIntake | undefined): void {
    const seq = res.seq;
    if (fresh !== undefined) {
      this.#stats.sse_verified_total++;
      // Types with side effects or trust changes always take the careful path (attempt
      // committed before the handler runs), so they are not handed over as fresh.
      if (!NEVER_REPLAY.has(fresh.envelope.eventType)) {
        const cache = this.#freshCached < FRESH_CACHE_MAX;
        this.#fresh.set(seq, cache ? fresh : undefined);
        if (cache) this.#freshCached++;
      }
    } else if (v.verdict === "duplicate") {
      this.#stats.sse_duplicate_total++;
      this.log.debug("journal: duplicate event (re-delivery)", { seq, event_id: v.envelope.eventId, event_type: v.envelope.eventType });
    } else {
      const reason = res.reason as RejectReason;
      const f: PartialEnvelopeFields = v.envelope ?? (v.verdict === "rejected" ? (v.fields ?? {}) : {});
      this.#stats.sse_rejected_total[reason] = (this.#stats.sse_rejected_total[reason] ?? 0) + 1;
      this.log.warn("security: event rejected", {
        event_id: f.eventId,
        event_type: f.eventType,
        reason,
        detail: v.verdict === "rejected" ? v.detail : undefined,
        seq,
        sse_id: item.id,
      });
    }
    const signed = res.envelope?.eventType;
    if (item.event !== undefined && signed !== undefined && item.event !== signed) {
      // Routing uses the signed type; the SSE `event:` field is informational (protocol.md §7).
      this.log.warn("journal: SSE event field differs from the signed event_type", { seq, sse_event: item.event, event_type: signed });
    }
  }

  /**
   * Takes the hand-over of a row journaled (verified) by this process and never dispatched:
   * `{ fresh: true, parsed }` once, then `{ fresh: false }`. `parsed` is undefined when the
   * envelope was not cached. @internal for the dispatcher.
   */
  takeFresh(seq: number): { fresh: false } | { fresh: true; parsed: FreshIntake | undefined } {
    if (!this.#fresh.has(seq)) return { fresh: false };
    const parsed = this.#fresh.get(seq);
    this.#fresh.delete(seq);
    if (parsed !== undefined) this.#freshCached--;
    return { fresh: true, parsed };
  }

  /**
   * Durable append + Last-Event-ID advance without a verdict (status `received`, verify
   * `unverified`). Not used by {@link intake} any more; kept for callers that must persist
   * before anything else and for crash tests. {@link recoverUnverified} (dispatcher start) and
   * {@link verifyRow} finish such rows, also rows left by an older agent version.
   */
  append(item: SseMessage | SseOversize): number {
    const raw = item.type === "event" ? Buffer.from(item.data, "utf8") : new Uint8Array(0);
    const reason = item.type === "oversize" ? "oversize" : null;
    const now = this.now();
    const tx = this.db.transaction((): number => {
      const r = this.db
        .query(
          `INSERT INTO events(sse_id, received_at, raw, verify, reject_reason, status, node_id)
           VALUES (?, ?, ?, 'unverified', ?, 'received', ?) RETURNING seq`,
        )
        .get(item.id ?? null, ts(now), raw, reason, this.#nodeId()) as { seq: number };
      // Events without `id:` do not move it; an empty `id:` resets it (W3C), so nothing is sent.
      if (item.id !== undefined) kvSet(this.db, LAST_EVENT_ID_KEY, item.id === "" ? undefined : item.id);
      return r.seq;
    });
    return tx.immediate();
  }

  /**
   * Verifies an `unverified` row (see {@link append}) and records the verdict. Verification
   * uses the row's `received_at` as the clock, so a row recovered after a crash is judged as it
   * would have been on receipt (staleness, key transition, nonce expiry).
   */
  verifyRow(seq: number): IntakeResult {
    const row = getRow(this.db, seq);
    if (row === undefined || row.verify !== "unverified") {
      throw new JournalError("unknown_id", `journal row ${seq} is not awaiting verification`);
    }
    const at = Date.parse(row.received_at);
    let res: VerifyResult;
    if (row.reject_reason === "oversize") {
      res = { verdict: "rejected", reason: "oversize", detail: "event data larger than the limit (discarded while reading)" };
    } else {
      res = verifyEnvelope(row.raw, {
        keys: this.#keys,
        // Only an accepted earlier copy makes a re-delivery harmless (protocol.md §7).
        isDuplicate: (eventId, signature) =>
          this.db
            .query("SELECT 1 FROM events WHERE event_id = ? AND signature = ? AND verify = 'verified' AND seq <> ? LIMIT 1")
            .get(eventId, signature, seq) !== null,
        nonces: this.#nonces,
        now: () => at,
      });
    }
    if (res.verdict === "verified") {
      const env = res.envelope;
      const payload = parsePayload(env.payloadText);
      const key = payload.ok ? (orderingKey(env.eventType, payload.value) ?? null) : null;
      try {
        this.db
          .query(
            `UPDATE events SET verify = 'verified', status = 'pending', event_id = ?, event_type = ?, issued_at = ?,
               nonce = ?, signature = ?, ordering_key = ? WHERE seq = ?`,
          )
          .run(env.eventId, env.eventType, env.issuedAt, env.nonce, env.signature, key, seq);
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
        // The nonce belongs to an earlier verified event the in-memory store already forgot:
        // the journal is the durable store, so this is a replay (fail closed).
        res = { verdict: "rejected", reason: "replay", envelope: env, detail: "nonce already journaled" };
      }
    }
    if (res.verdict === "verified") {
      this.#stats.sse_verified_total++;
      return { seq, verdict: "verified", envelope: res.envelope };
    }
    const env = res.envelope;
    const f: PartialEnvelopeFields = env ?? (res.verdict === "rejected" ? (res.fields ?? {}) : {});
    if (res.verdict === "duplicate") {
      this.#write(seq, "duplicate", null, f);
      this.#stats.sse_duplicate_total++;
      this.log.debug("journal: duplicate event (re-delivery)", { seq, event_id: f.eventId, event_type: f.eventType });
      return { seq, verdict: "duplicate", envelope: res.envelope };
    }
    this.#write(seq, "rejected", res.reason, f);
    this.#stats.sse_rejected_total[res.reason] = (this.#stats.sse_rejected_total[res.reason] ?? 0) + 1;
    this.log.warn("security: event rejected", {
      event_id: f.eventId,
      event_type: f.eventType,
      reason: res.reason,
      detail: res.detail,
      seq,
      sse_id: row.sse_id ?? undefined,
    });
    return env === undefined ? { seq, verdict: "rejected", reason: res.reason } : { seq, verdict: "rejected", reason: res.reason, envelope: env };
  }

  #write(seq: number, verdict: "duplicate" | "rejected", reason: RejectReason | null, f: PartialEnvelopeFields): void {
    this.db
      .query(
        `UPDATE events SET verify = ?, status = ?, reject_reason = ?, event_id = ?, event_type = ?, issued_at = ?,
           nonce = ?, signature = ?, processed_at = received_at WHERE seq = ?`,
      )
      .run(verdict, verdict, reason, f.eventId ?? null, f.eventType ?? null, f.issuedAt ?? null, f.nonce ?? null, f.signature ?? null, seq);
  }

  /**
   * Verifies rows left `unverified` by a crash between append and verification, in seq order
   * (seeding the nonce store first if that has not happened). Returns how many were finished.
   * {@link Dispatcher.start} calls it.
   */
  recoverUnverified(): number {
    if (!this.#seeded) this.seedNonces();
    const rows = this.db.query("SELECT seq FROM events WHERE verify = 'unverified' ORDER BY seq").all() as { seq: number }[];
    for (const r of rows) this.verifyRow(r.seq);
    if (rows.length > 0) this.log.info("journal: verified rows left by an interrupted intake", { count: rows.length });
    return rows.length;
  }

  /** The persisted SSE Last-Event-ID, undefined when none. */
  lastEventId(): string | undefined {
    const v = kvGet(this.db, LAST_EVENT_ID_KEY);
    return v === "" ? undefined : v;
  }

  /** Forgets the Last-Event-ID (node_id changed, protocol.md §7). */
  clearLastEventId(): void {
    kvSet(this.db, LAST_EVENT_ID_KEY, undefined);
  }

  /**
   * Loads nonces of verified events whose `issued_at` is within the last 5 min into the nonce
   * store (protocol.md §8.2). Rows received more than 10 min ago cannot qualify (issued_at was
   * at most 5 min ahead at receipt), which bounds the scan. Returns the number loaded.
   */
  seedNonces(): number {
    const now = this.now();
    const rows = this.db
      .query("SELECT nonce, issued_at FROM events WHERE verify = 'verified' AND nonce IS NOT NULL AND received_at >= ?")
      .all(ts(now - 2 * NONCE_WINDOW_MS)) as { nonce: string; issued_at: string | null }[];
    const seeds: { nonce: string; issuedAtMs: number }[] = [];
    for (const r of rows) {
      // issued_at is stored as received (any offset): parse it, do not compare text.
      const t = r.issued_at === null ? undefined : parseRfc3339(r.issued_at);
      if (t !== undefined) seeds.push({ nonce: r.nonce, issuedAtMs: t.epochMs });
    }
    this.#seeded = true;
    return this.#nonces.seed(seeds, now);
  }

  /**
   * Retention (operations.md §1.4): terminal rows older than `retention` and beyond `max_rows`
   * (oldest first), `dead` rows older than `dlq_retention`; when the file exceeds
   * `max_db_size`, terminal rows down to 50 % of `max_rows` and VACUUM. The newest `done` row of
   * an ordering key is kept while an older row of that key may still be retried, so supersession
   * keeps working. Returns the number of rows deleted.
   */
  prune(): number {
    const o = this.options;
    const now = this.now();
    const terminal = TERMINAL_STATUSES.map((s) => `'${s}'`).join(",");
    // Guard: a `done` row that supersedes an older retryable row must outlive that row.
    const keep = `NOT (e.status = 'done' AND e.ordering_key IS NOT NULL AND EXISTS (
        SELECT 1 FROM events o WHERE o.ordering_key = e.ordering_key AND o.seq < e.seq
          AND o.status IN ('pending','processing','retry_wait','dead','received')))`;
    let deleted = 0;
    const tx = this.db.transaction(() => {
      deleted += this.db
        .query(`DELETE FROM events AS e WHERE e.status IN (${terminal}) AND e.received_at < ? AND ${keep}`)
        .run(ts(now - o.retentionMs)).changes;
      deleted += this.db.query("DELETE FROM events WHERE status = 'dead' AND dead_at < ?").run(ts(now - o.dlqRetentionMs)).changes;
      deleted += this.#trimTerminal(o.maxRows, terminal, keep);
    });
    tx.immediate();
    if (this.#dbBytes() > o.maxDbBytes) {
      const n = this.db.transaction(() => this.#trimTerminal(Math.floor(o.maxRows / 2), terminal, keep)).immediate();
      deleted += n;
      this.db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
      this.db.exec("VACUUM");
      this.log.warn("journal: database over max_db_size, pruned and vacuumed", { deleted: n, max_db_bytes: o.maxDbBytes });
    }
    if (deleted > 0) this.log.info("journal: pruned", { deleted });
    return deleted;
  }

  #trimTerminal(limit: number, terminal: string, keep: string): number {
    const count = (this.db.query(`SELECT COUNT(*) AS n FROM events WHERE status IN (${terminal})`).get() as { n: number }).n;
    if (count <= limit) return 0;
    return this.db
      .query(
        `DELETE FROM events WHERE seq IN (
           SELECT e.seq FROM events AS e WHERE e.status IN (${terminal}) AND ${keep} ORDER BY e.seq LIMIT ?)`,
      )
      .run(count - limit).changes;
  }

  #dbBytes(): number {
    const { page_count } = this.db.query("PRAGMA page_count").get() as { page_count: number };
    const { page_size } = this.db.query("PRAGMA page_size").get() as { page_size: number };
    let wal = 0;
    const file = this.db.filename;
    if (file && file !== ":memory:") {
      try {
        wal = statSync(`${file}-wal`).size;
      } catch {
        wal = 0;
      }
    }
    return page_count * page_size + wal;
  }

  /** In-memory counters since start. */
  stats(): JournalStats {
    return {
      sse_rejected_total: { ...this.#stats.sse_rejected_total },
      sse_duplicate_total: this.#stats.sse_duplicate_total,
      sse_verified_total: this.#stats.sse_verified_total,
    };
  }

  /** Row counts by status (health: `dlq` indicator counts `dead`). */
  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.db.query("SELECT status, COUNT(*) AS n FROM events GROUP BY status").all() as { status: string; n: number }[]) {
      out[r.status] = r.n;
    }
    return out;
  }

  /** Current node identity (stored on rows this process writes). */
  nodeId(): string {
    return this.#nodeId();
  }

  /** Reads a row (status views, tests). */
  row(seq: number): EventRow | undefined {
    return getRow(this.db, seq);
  }
}
