/**
 * The event journal (operations.md §1): every SSE event is appended (with the Last-Event-ID
 * advance, in one transaction) before it is verified, then its verdict is recorded. The journal
 * is also the durable nonce store (unique index over verified nonces) and the source of the
 * dispatcher, the DLQ and replay.
 */
import type { Database } from "bun:sqlite";
import { statSync } from "node:fs";
import { verifyEnvelope, type Envelope, type PartialEnvelopeFields, type RejectReason, type VerifyResult } from "../events/envelope.ts";
import type { TrustedKeys } from "../events/keys.ts";
import type { NonceStore } from "../events/nonce-store.ts";
import type { SseMessage, SseOversize } from "../events/sse.ts";
import type { Logger } from "../log/index.ts";
import { kvGet, kvSet } from "../store/db.ts";
import { parseRfc3339 } from "../util/duration.ts";
import { JournalError } from "./errors.ts";
import { getRow, ts, type EventRow } from "./rows.ts";
import { orderingKey, parsePayload, TERMINAL_STATUSES } from "./types.ts";

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
   * Appends the raw event and advances `sse.last_event_id` in one transaction, then verifies
   * it (protocol.md §8.2) and records the verdict. Oversize items are journaled rejected
   * `oversize` (with empty `raw`: the parser discarded the data).
   */
  intake(item: SseMessage | SseOversize): IntakeResult {
    const seq = this.append(item);
    const res = this.verifyRow(seq);
    const signed = res.envelope?.eventType;
    if (item.event !== undefined && signed !== undefined && item.event !== signed) {
      // Routing uses the signed type; the SSE `event:` field is informational (protocol.md §7).
      this.log.warn("journal: SSE event field differs from the signed event_type", { seq, sse_event: item.event, event_type: signed });
    }
    return res;
  }

  /**
   * Step 1 of {@link intake}: durable append + Last-Event-ID advance. Exposed for crash tests and
   * for callers that must persist before doing anything else; {@link recoverUnverified} finishes
   * rows left behind.
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
   * Step 2 of {@link intake}: verifies an `unverified` row and records the verdict. Verification
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
