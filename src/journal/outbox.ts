/**
 * Durable outbox of things the agent owes the control plane (operations.md §3; actions.md §6):
 * rows in `outbox` are written before anything is attempted and delivered by one drain loop
 * with the Durable backoff class (1 s → 5 min, ±25 %), FIFO per kind. The HTTP call itself is
 * the caller's `send`, which maps the response to a {@link SendOutcome}.
 *
 * Column names follow migration 0 (`dedup_key`, `status`); `body` is JSON text.
 */
import type { Database } from "bun:sqlite";
import type { Logger } from "../log/index.ts";
import { backoffDelay } from "../util/backoff.ts";
import { ts } from "./rows.ts";

/** One queued delivery as handed to `send`. */
export interface OutboxItem {
  id: number;
  kind: string;
  dedupKey: string | null;
  method: string;
  path: string;
  body: string | null;
  createdAt: string;
  /** Attempts before this one. */
  attempts: number;
}

/**
 * What a delivery attempt came to (protocol.md §4 mapping is the caller's): `delivered` (2xx,
 * 409 on ack/result), `delivered_unknown` (404 on a local execution's result), `permanent`
 * (400/403/404/413 → DLQ), `pause` (401: stop until re-auth kicks), `retry` (transient; an
 * optional `retryAfterMs` from `Retry-After` replaces the computed delay).
 */
export type SendOutcome =
  | "delivered"
  | "delivered_unknown"
  | "permanent"
  | "pause"
  | "retry"
  | { outcome: "retry" | "permanent"; retryAfterMs?: number; error?: string };

/** Dependencies and settings of {@link Outbox}. */
export interface OutboxDeps {
  db: Database;
  nodeId: () => string;
  send: (item: OutboxItem) => Promise<SendOutcome>;
  log: Logger;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
  /** `outbox.max_age` (7 d): older pending items go dead without another attempt. */
  maxAgeMs?: number;
  baseMs?: number;
  capMs?: number;
  /** Delivered rows are kept this long for `dlq show` (7 d). */
  keepDeliveredMs?: number;
  /** Dead rows are kept this long unless purged (`journal.dlq_retention`, 30 d). */
  dlqRetentionMs?: number;
}

/** A new item. */
export interface OutboxEntry {
  kind: string;
  /** Deduplication key (e.g. `ack:<execution_id>`); undefined → never deduplicated. */
  dedupKey?: string;
  method: string;
  path: string;
  body?: string;
}

interface Row {
  id: number;
  kind: string;
  dedup_key: string | null;
  method: string;
  path: string;
  body: string | null;
  created_at: string;
  attempts: number;
  next_attempt_at: string | null;
}

const IDLE_WAIT_MS = 60_000;

/** The outbox over `plexd.db`. */
export class Outbox {
  readonly #d: Required<Omit<OutboxDeps, "sleep" | "random" | "now">> & {
    now: () => number;
    sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
    random: () => number;
  };
  #loop: Promise<void> | undefined;
  #stopping = false;
  #paused = false;
  #wake: AbortController | undefined;
  #kicked = false;

  constructor(deps: OutboxDeps) {
    this.#d = {
      maxAgeMs: 7 * 24 * 3_600_000,
      baseMs: 1_000,
      capMs: 300_000,
      keepDeliveredMs: 7 * 24 * 3_600_000,
      dlqRetentionMs: 30 * 24 * 3_600_000,
      ...deps,
      now: deps.now ?? Date.now,
      random: deps.random ?? Math.random,
      sleep:
        deps.sleep ??
        ((ms, signal) =>
          new Promise<void>((resolve) => {
            if (signal?.aborted) return resolve();
            const done = (): void => {
              clearTimeout(t);
              resolve();
            };
            const t = setTimeout(done, ms);
            signal?.addEventListener("abort", done, { once: true });
          })),
    };
  }

  /**
   * Queues an item (durable on return). With a pending item of the same kind and dedup key:
   * `capabilities` (or `replace: true`) overwrites it — newest wins — otherwise the existing
   * item is kept. Returns the id of the pending item.
   */
  enqueue(e: OutboxEntry, opts: { replace?: boolean } = {}): number {
    const db = this.#d.db;
    const replace = opts.replace ?? e.kind === "capabilities";
    const id = db
      .transaction((): number => {
        if (e.dedupKey !== undefined) {
          const old = db.query("SELECT id FROM outbox WHERE kind = ? AND dedup_key = ? AND status = 'pending'").get(e.kind, e.dedupKey) as {
            id: number;
          } | null;
          if (old !== null) {
            if (replace) {
              db.query("UPDATE outbox SET method = ?, path = ?, body = ?, attempts = 0, next_attempt_at = NULL WHERE id = ?").run(
                e.method,
                e.path,
                e.body ?? null,
                old.id,
              );
            }
            return old.id;
          }
        }
        const r = db
          .query(
            `INSERT INTO outbox(kind, dedup_key, node_id, method, path, body, created_at, status)
             VALUES (?, ?, ?, ?, ?, ?, ?, 'pending') RETURNING id`,
          )
          .get(e.kind, e.dedupKey ?? null, this.#d.nodeId(), e.method, e.path, e.body ?? null, ts(this.#d.now())) as { id: number };
        return r.id;
      })
      .immediate();
    this.kick();
    return id;
  }

  /** Something changed (new item, SSE (re)connect, offline → online, re-auth): try now; unpauses. */
  kick(): void {
    this.#paused = false;
    this.#kicked = true;
    this.#wake?.abort();
  }

  /** Starts the drain loop. */
  start(): void {
    if (this.#loop !== undefined) return;
    this.#stopping = false;
    this.#loop = this.#run();
  }

  /** Stops after the attempt in flight. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wake?.abort();
    await this.#loop;
    this.#loop = undefined;
  }

  /** True while paused by a 401 until the next kick. */
  get paused(): boolean {
    return this.#paused;
  }

  async #run(): Promise<void> {
    while (!this.#stopping) {
      this.#kicked = false;
      let sent = 0;
      if (!this.#paused) {
        try {
          sent = await this.drainOnce();
        } catch (err) {
          this.#d.log.error("outbox: drain failed", { error: (err as Error).message });
        }
      }
      if (sent > 0 || this.#kicked || this.#stopping) continue;
      const ctrl = new AbortController();
      this.#wake = ctrl;
      await this.#d.sleep(this.#paused ? IDLE_WAIT_MS : this.#nextDueIn(), ctrl.signal);
      this.#wake = undefined;
    }
  }

  #nextDueIn(): number {
    // Items never tried and not sent in the last pass are blocked behind one in backoff (FIFO per
    // kind, result behind ack): that one's time covers them.
    const r = this.#d.db.query("SELECT MIN(next_attempt_at) AS at FROM outbox WHERE status = 'pending'").get() as {
      at: string | null;
    };
    if (r.at === null) return IDLE_WAIT_MS;
    return Math.min(IDLE_WAIT_MS, Math.max(0, Date.parse(r.at) - this.#d.now()));
  }

  /**
   * One pass: for each kind, the oldest pending item (FIFO per kind) if due; a `result` waits
   * while the `ack` of the same execution is pending. Returns the number of attempts made.
   */
  async drainOnce(): Promise<number> {
    const db = this.#d.db;
    const heads = db
      .query(
        `SELECT o.* FROM outbox o WHERE o.status = 'pending'
           AND o.id = (SELECT MIN(id) FROM outbox i WHERE i.kind = o.kind AND i.status = 'pending') ORDER BY o.id`,
      )
      .all() as Row[];
    let attempts = 0;
    for (const h of heads) {
      if (this.#stopping || this.#paused) break;
      const now = this.#d.now();
      if (h.next_attempt_at !== null && Date.parse(h.next_attempt_at) > now) continue;
      if (now - Date.parse(h.created_at) > this.#d.maxAgeMs) {
        this.#dead(h, "older than outbox.max_age");
        continue;
      }
      if (h.kind === "result" && h.dedup_key?.startsWith("result:")) {
        const ack = `ack:${h.dedup_key.slice("result:".length)}`;
        if (db.query("SELECT 1 FROM outbox WHERE kind = 'ack' AND dedup_key = ? AND status = 'pending'").get(ack) !== null) continue;
      }
      attempts++;
      await this.#attempt(h);
    }
    return attempts;
  }

  async #attempt(h: Row): Promise<void> {
    const db = this.#d.db;
    let out: SendOutcome;
    try {
      out = await this.#d.send({
        id: h.id,
        kind: h.kind,
        dedupKey: h.dedup_key,
        method: h.method,
        path: h.path,
        body: h.body,
        createdAt: h.created_at,
        attempts: h.attempts,
      });
    } catch (err) {
      out = { outcome: "retry", error: `${(err as Error).name}: ${(err as Error).message}` };
    }
    const o = typeof out === "string" ? { outcome: out } : out;
    const now = this.#d.now();
    const tries = h.attempts + 1;
    switch (o.outcome) {
      case "delivered":
      case "delivered_unknown":
        db.query("UPDATE outbox SET status = ?, attempts = ?, delivered_at = ? WHERE id = ?").run(o.outcome, tries, ts(now), h.id);
        return;
      case "pause":
        db.query("UPDATE outbox SET attempts = ?, last_error = 'HTTP 401 (paused until re-auth)' WHERE id = ?").run(tries, h.id);
        this.#paused = true;
        return;
      case "permanent":
        db.query("UPDATE outbox SET attempts = ? WHERE id = ?").run(tries, h.id);
        this.#dead(h, ("error" in o ? o.error : undefined) ?? "permanent failure");
        return;
      case "retry": {
        const delay =
          ("retryAfterMs" in o ? o.retryAfterMs : undefined) ??
          backoffDelay(h.attempts, { baseMs: this.#d.baseMs, capMs: this.#d.capMs, random: this.#d.random });
        db.query("UPDATE outbox SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?").run(
          tries,
          ts(now + delay),
          ("error" in o ? o.error : undefined) ?? "transient failure",
          h.id,
        );
      }
    }
  }

  #dead(h: Row, error: string): void {
    this.#d.db.query("UPDATE outbox SET status = 'dead', dead_at = ?, last_error = ? WHERE id = ?").run(ts(this.#d.now()), error, h.id);
    // Nothing is removed silently (operations.md §3).
    this.#d.log.error("outbox: delivery moved to the DLQ", { id: `d${h.id}`, kind: h.kind, dedup_key: h.dedup_key, error });
  }

  /** Deletes delivered rows older than `keepDeliveredMs` and dead rows older than `dlqRetentionMs`. */
  prune(): number {
    const now = this.#d.now();
    const db = this.#d.db;
    return (
      db.query("DELETE FROM outbox WHERE status IN ('delivered','delivered_unknown') AND delivered_at < ?").run(ts(now - this.#d.keepDeliveredMs)).changes +
      db.query("DELETE FROM outbox WHERE status = 'dead' AND dead_at < ?").run(ts(now - this.#d.dlqRetentionMs)).changes
    );
  }
}
