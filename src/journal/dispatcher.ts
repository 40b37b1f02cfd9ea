/**
 * The one dispatcher of journal rows (operations.md §1.2, §1.3, §2): takes `pending` rows and
 * due `retry_wait` rows strictly in `seq` order, routes them by the envelope's signed
 * `event_type`, classifies handler failures and moves rows through the status lifecycle.
 *
 * Two paths (docs/decisions.md "Journal"):
 * - **fresh** — a row this process journaled verified and never dispatched (handed over by
 *   {@link Journal.takeFresh}, envelope already parsed): no `processing` commit, no supersession
 *   query (a first attempt in strict seq order cannot have a later row of its key `done`), and
 *   the outcome (with `attempts` = 1) is queued: it rides on the next intake transaction
 *   ({@link Journal.intakeBatch} runs queued writes inside its own commit), or is committed by
 *   the dispatcher itself at the latest {@link MAX_UNCOMMITTED_MS} after it was queued, when
 *   {@link MAX_UNCOMMITTED_ROWS} are queued, before any careful-path row, before `idle()`
 *   resolves and at `stop()`. A crash before that commit leaves the rows `pending`: they are
 *   re-dispatched at start (handlers are idempotent).
 * - **careful** — everything else (retries, DLQ retries, replay copies, rows found at start,
 *   side-effect types): supersession check, `processing` + attempt committed before the handler
 *   (crash-loop protection), outcome committed right after.
 * A row that crashes the agent on its fresh attempt is found `pending` at the next start and
 * from then on runs on the careful path, so a deterministic crasher is `dead` after at most
 * max_retries + 2 runs (the fresh run is not counted).
 */
import type { Envelope } from "../events/envelope.ts";
import type { Logger } from "../log/index.ts";
import { backoffDelay } from "../util/backoff.ts";
import { HandlerError } from "./errors.ts";
import type { FreshIntake, Journal, OutcomeQueue, OutcomeWrite } from "./journal.ts";
import { getRow, isSuperseded, recordError, rowEnvelope, ts, type EventRow } from "./rows.ts";
import { BRIDGE_EVENT_TYPES, parsePayload } from "./types.ts";

/** What a handler is told about the row it applies. */
export interface HandlerContext {
  seq: number;
  /** The row is a `plexd replay` copy (`replay_of` set). */
  replay: boolean;
  /** Plan only: change nothing, return the changes that would be made. */
  dryRun: boolean;
  /** 1-based attempt number in the current retry cycle (0 in dry runs). */
  attempt: number;
  /** The previous attempt was interrupted by an agent restart (actions.md §6 item 4). */
  recovered: boolean;
}

/**
 * Applies one event. With `ctx.dryRun` it must not change anything and returns the changes it
 * would make (e.g. `["peer n_2: add"]`). Throw {@link HandlerError} to classify a failure; any
 * other exception is permanent after one retry (operations.md §2).
 */
export type EventHandler = (envelope: Envelope, payload: unknown, ctx: HandlerContext) => Promise<string[] | void>;

/** Constructor dependencies of {@link Dispatcher}. */
export interface DispatcherDeps {
  journal: Journal;
  handlers: Record<string, EventHandler>;
  mode: () => "node" | "bridge";
  log: Logger;
  now?: () => number;
  /** Waits `ms` or until `signal` aborts (virtual time in tests). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Uniform [0,1) for backoff jitter (seeded in tests). */
  random?: () => number;
}

/** Outcome of planning one row for a dry-run replay. */
export interface PlanResult {
  result: "planned" | "superseded" | "ignored" | "error";
  changes: string[];
  reason?: string;
}

// Longest idle wait: rows appended without a kick are still picked up within this time.
const MAX_IDLE_WAIT_MS = 60_000;
// Rows taken per query.
const BATCH_ROWS = 64;
// Queued outcomes of fresh rows are committed by the dispatcher at the latest once the oldest
// is this old (no intake came to carry them), so status views and the crash re-dispatch window
// stay short…
const MAX_UNCOMMITTED_MS = 100;
// …or once this many are queued (bounds the rows the pending query must skip).
const MAX_UNCOMMITTED_ROWS = 512;

/** Columns the batch query reads (not `raw`: fresh rows come parsed from the intake). */
interface BatchRow {
  seq: number;
  status: string;
  attempts: number;
  replay_of: number | null;
  event_type: string | null;
}

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, Math.max(0, ms));
    signal?.addEventListener("abort", done, { once: true });
  });
}

function describe(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/** Runs handlers over journal rows; see the module comment. */
export class Dispatcher implements OutcomeQueue {
  readonly journal: Journal;
  readonly #handlers: Record<string, EventHandler>;
  readonly #mode: () => "node" | "bridge";
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly #random: () => number;
  #loop: Promise<void> | undefined;
  #stopping = false;
  #kicked = false;
  #wake: AbortController | undefined;
  #idleWaiters: (() => void)[] = [];
  #recovered = new Set<number>();
  readonly #changes = new Map<number, string[]>();
  // Outcome writes not yet committed: run by the next intake transaction or by #flush.
  #writes: OutcomeWrite[] = [];
  #oldestWriteAt = 0;

  constructor(deps: DispatcherDeps) {
    this.journal = deps.journal;
    this.#handlers = deps.handlers;
    this.#mode = deps.mode;
    this.#log = deps.log;
    this.#now = deps.now ?? deps.journal.now;
    this.#sleep = deps.sleep ?? defaultSleep;
    this.#random = deps.random ?? Math.random;
  }

  get #db() {
    return this.journal.db;
  }

  /**
   * Finishes rows an interrupted intake left unverified, returns rows found `processing` to
   * `pending` (their attempt was cut short by a restart), then processes rows until stopped.
   */
  start(): void {
    if (this.#loop !== undefined) return;
    this.#stopping = false;
    this.journal.recoverUnverified();
    const now = this.#now();
    const interrupted = this.#db.query("SELECT seq, attempts FROM events WHERE status = 'processing' ORDER BY seq").all() as {
      seq: number;
      attempts: number;
    }[];
    this.#db.transaction(() => {
      for (const r of interrupted) {
        this.#db.query("UPDATE events SET status = 'pending' WHERE seq = ?").run(r.seq);
        recordError(this.#db, r.seq, r.attempts, now, "interrupted: agent stopped during processing");
      }
    })();
    for (const r of interrupted) this.#recovered.add(r.seq);
    if (interrupted.length > 0) this.#log.info("journal: re-dispatching rows interrupted by a restart", { count: interrupted.length });
    this.journal.attachOutcomes(this);
    this.#loop = this.#run();
  }

  /** New rows are available (or time moved): look again now. */
  kick(): void {
    this.#kicked = true;
    this.#wake?.abort();
  }

  /** Stops taking rows and waits for the running handler to finish. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wake?.abort();
    const loop = this.#loop;
    if (loop !== undefined) await loop;
    this.#loop = undefined;
    this.#flushSafely();
    this.journal.detachOutcomes(this);
    for (const w of this.#idleWaiters.splice(0)) w();
  }

  /** @internal {@link OutcomeQueue} for {@link Journal.intakeBatch}. */
  takeOutcomes(): OutcomeWrite[] {
    const w = this.#writes;
    if (w.length === 0) return w;
    this.#writes = [];
    return w;
  }

  /** @internal {@link OutcomeQueue}: the intake transaction that took `writes` rolled back. */
  restoreOutcomes(writes: OutcomeWrite[]): void {
    if (writes.length === 0) return;
    if (this.#writes.length === 0) this.#oldestWriteAt = this.#now();
    this.#writes = [...writes, ...this.#writes];
  }

  /** Resolves once no row is `pending`/`processing` or due for a retry (tests, replay). */
  idle(): Promise<void> {
    if (this.#loop === undefined) return Promise.resolve();
    return new Promise((resolve) => {
      this.#idleWaiters.push(resolve);
      this.kick();
    });
  }

  /** Changes reported by the handler of a replay copy (consumed once). */
  takeChanges(seq: number): string[] | undefined {
    const c = this.#changes.get(seq);
    this.#changes.delete(seq);
    return c;
  }

  async #run(): Promise<void> {
    while (!this.#stopping) {
      this.#kicked = false;
      if (this.#writes.length > 0 && this.#queuedTooLong() && !this.#flushSafely()) {
        await this.#wait(1_000);
        continue;
      }
      const now = this.#now();
      const rows = this.#nextRows(now);
      if (rows.length > 0) {
        try {
          await this.#batch(rows);
        } catch (err) {
          // Only the database can throw here; do not spin on it. Uncommitted outcomes are
          // dropped: their rows are still pending/retry_wait in the journal and run again.
          this.#writes = [];
          this.#log.error("journal: dispatcher step failed", { seq: rows[0]!.seq, error: describe(err) });
          await this.#wait(1_000);
        }
        continue;
      }
      if (!this.#kicked && this.#idleWaiters.length > 0) {
        // Idle means committed: callers (tests, replay) read the rows next.
        if (!this.#flushSafely()) {
          await this.#wait(1_000);
          continue;
        }
        for (const w of this.#idleWaiters.splice(0)) w();
      }
      const next = this.#db
        .query("SELECT MIN(next_attempt_at) AS at FROM events WHERE status = 'retry_wait' AND verify = 'verified'")
        .get() as { at: string | null };
      let dueIn = next.at === null ? MAX_IDLE_WAIT_MS : Math.min(MAX_IDLE_WAIT_MS, Math.max(0, Date.parse(next.at) - now));
      // Queued outcomes no intake carried: commit them when they reach MAX_UNCOMMITTED_MS.
      if (this.#writes.length > 0) dueIn = Math.min(dueIn, Math.max(0, this.#oldestWriteAt + MAX_UNCOMMITTED_MS - this.#now()));
      if (this.#kicked || this.#stopping) continue;
      await this.#wait(dueIn);
    }
  }

  /**
   * The next rows in `seq` order: `pending` and due `retry_wait` (two index range scans over
   * `events(status, seq)` merged, instead of an OR the planner would sort).
   */
  #nextRows(now: number): BatchRow[] {
    const cols = "seq, status, attempts, replay_of, event_type";
    // Rows whose outcome is queued but not committed still read `pending`: skip them.
    const queued = this.#writes.length;
    let pending = this.#db
      .query(`SELECT ${cols} FROM events WHERE status = 'pending' AND verify = 'verified' ORDER BY seq LIMIT ?`)
      .all(BATCH_ROWS + queued) as BatchRow[];
    if (queued > 0) {
      const skip = new Set<number>();
      for (const w of this.#writes) skip.add(w.seq);
      pending = pending.filter((r) => !skip.has(r.seq)).slice(0, BATCH_ROWS);
    }
    const due = this.#db
      .query(
        `SELECT ${cols} FROM events WHERE status = 'retry_wait' AND verify = 'verified' AND next_attempt_at <= ? ORDER BY seq LIMIT ${BATCH_ROWS}`,
      )
      .all(ts(now)) as BatchRow[];
    if (due.length === 0) return pending;
    return [...pending, ...due].sort((a, b) => a.seq - b.seq).slice(0, BATCH_ROWS);
  }

  /** Processes rows in order; fresh outcomes stay queued (see module comment). */
  async #batch(rows: BatchRow[]): Promise<void> {
    for (const r of rows) {
      if (this.#stopping) break;
      const fresh = r.status === "pending" && r.attempts === 0 && r.replay_of === null ? this.journal.takeFresh(r.seq) : { fresh: false as const };
      if (fresh.fresh) {
        await this.#processFresh(r, fresh.parsed);
        const n = this.#writes.length;
        if (n >= MAX_UNCOMMITTED_ROWS || (n > 0 && this.#queuedTooLong())) this.#flush();
        continue;
      }
      // Supersession looks at later rows' status: earlier outcomes must be visible first.
      this.#flush();
      const row = getRow(this.#db, r.seq);
      if (row === undefined || (row.status !== "pending" && row.status !== "retry_wait")) continue;
      await this.#process(row);
      this.#flush();
    }
  }

  /** The oldest queued outcome reached MAX_UNCOMMITTED_MS (or the clock went backwards). */
  #queuedTooLong(): boolean {
    const age = this.#now() - this.#oldestWriteAt;
    return age >= MAX_UNCOMMITTED_MS || age < 0;
  }

  /** Queues an outcome write of row `seq` for the next intake transaction or {@link #flush}. */
  #defer(seq: number, run: () => void): void {
    if (this.#writes.length === 0) this.#oldestWriteAt = this.#now();
    this.#writes.push({ seq, run });
  }

  /** Commits queued outcome writes in one transaction (one fsync). */
  #flush(): void {
    if (this.#writes.length === 0) return;
    const writes = this.#writes;
    this.#writes = [];
    this.#db.transaction(() => {
      for (const w of writes) w.run();
    }).immediate();
  }

  /**
   * {@link #flush} outside a batch. On a database error the queued outcomes are dropped (their
   * rows are still `pending` in the journal and run again on the careful path); false then.
   */
  #flushSafely(): boolean {
    try {
      this.#flush();
      return true;
    } catch (err) {
      this.#log.error("journal: committing dispatcher outcomes failed", { error: describe(err) });
      return false;
    }
  }

  async #wait(ms: number): Promise<void> {
    const ctrl = new AbortController();
    this.#wake = ctrl;
    try {
      await this.#sleep(ms, ctrl.signal);
    } finally {
      if (this.#wake === ctrl) this.#wake = undefined;
    }
  }

  #finish(seq: number, status: "done" | "ignored" | "superseded", now: number, attempts?: number): void {
    const at = ts(now);
    if (attempts === undefined) {
      this.#defer(seq, () => this.#db.query("UPDATE events SET status = ?, processed_at = ?, next_attempt_at = NULL WHERE seq = ?").run(status, at, seq));
    } else {
      this.#defer(seq, () =>
        this.#db
          .query("UPDATE events SET status = ?, attempts = ?, processed_at = ?, next_attempt_at = NULL WHERE seq = ?")
          .run(status, attempts, at, seq),
      );
    }
  }

  #dead(row: Pick<EventRow, "seq" | "event_id" | "event_type">, attempt: number, error: string, now: number, countAttempt = false): void {
    const at = ts(now);
    this.#defer(row.seq, () => {
      if (countAttempt) {
        this.#db
          .query("UPDATE events SET status = 'dead', attempts = ?, dead_at = ?, last_error = ?, next_attempt_at = NULL WHERE seq = ?")
          .run(attempt, at, error, row.seq);
      } else {
        this.#db
          .query("UPDATE events SET status = 'dead', dead_at = ?, last_error = ?, next_attempt_at = NULL WHERE seq = ?")
          .run(at, error, row.seq);
      }
    });
    this.#log.error("journal: event moved to the DLQ", {
      seq: row.seq,
      event_id: row.event_id,
      event_type: row.event_type,
      attempts: attempt,
      error,
    });
  }

  /** Why a row is not handed to a handler, if it is not. */
  #route(env: Envelope): "ignored_mode" | "ignored_unknown" | EventHandler {
    if (BRIDGE_EVENT_TYPES.has(env.eventType) && this.#mode() !== "bridge") return "ignored_mode";
    const h = Object.hasOwn(this.#handlers, env.eventType) ? this.#handlers[env.eventType] : undefined;
    return h ?? "ignored_unknown";
  }

  /**
   * Fresh path: first attempt of a row journaled by this process. No supersession query (a later
   * row of the same key cannot be `done` before this one's first attempt in strict seq order), no
   * `processing` commit; the attempt is counted in the outcome write.
   */
  async #processFresh(r: BatchRow, parsed: FreshIntake | undefined): Promise<void> {
    const seq = r.seq;
    const now = this.#now();
    let env: Envelope | undefined;
    let payload: FreshIntake["payload"];
    if (parsed !== undefined) {
      env = parsed.envelope;
      payload = parsed.payload;
    } else {
      const raw = this.#db.query("SELECT raw FROM events WHERE seq = ?").get(seq) as Pick<EventRow, "raw"> | null;
      env = raw === null ? undefined : rowEnvelope(raw);
      payload = env === undefined ? { ok: false, error: "unparsable" } : parsePayload(env.payloadText);
    }
    const ids = { seq, event_id: env?.eventId ?? null, event_type: r.event_type };
    if (env === undefined) return this.#dead(ids, 0, "permanent: journaled envelope no longer parses", now);
    const route = this.#route(env);
    if (typeof route === "string") return this.#ignored(seq, env, route, now);
    if (!payload.ok) return this.#dead(ids, 0, `permanent: payload is not JSON: ${payload.error}`, now);
    try {
      await route(env, payload.value, { seq, replay: false, dryRun: false, attempt: 1, recovered: false });
      this.#finish(seq, "done", this.#now(), 1);
    } catch (err) {
      this.#failed({ ...ids, last_error: null }, 1, err, true);
    }
  }

  #ignored(seq: number, env: Envelope, route: "ignored_mode" | "ignored_unknown", now: number): void {
    this.#finish(seq, "ignored", now);
    this.#log.debug("journal: event ignored", {
      seq,
      event_type: env.eventType,
      why: route === "ignored_mode" ? "bridge event in node mode" : "no handler for this type",
    });
  }

  /** Careful path: supersession, `processing` + attempt committed before the handler. */
  async #process(row: EventRow): Promise<void> {
    const db = this.#db;
    const now = this.#now();
    const seq = row.seq;
    const recovered = this.#recovered.delete(seq);
    const maxAttempts = this.journal.options.maxRetries + 1;
    if (isSuperseded(db, row)) {
      this.#finish(seq, "superseded", now);
      this.#log.info("journal: event superseded by a later one, not applied", { seq, event_type: row.event_type, ordering_key: row.ordering_key });
      return;
    }
    const env = rowEnvelope(row);
    if (env === undefined) return this.#dead(row, row.attempts, "permanent: journaled envelope no longer parses", now);
    const route = this.#route(env);
    if (typeof route === "string") return this.#ignored(seq, env, route, now);
    const payload = parsePayload(env.payloadText);
    if (!payload.ok) return this.#dead(row, row.attempts, `permanent: payload is not JSON: ${payload.error}`, now);
    if (row.attempts >= maxAttempts) {
      // Only reachable when restarts interrupted every attempt: stop a crash loop here.
      return this.#dead(row, row.attempts, `permanent: ${row.attempts} attempts interrupted by restarts`, now);
    }
    const attempt = row.attempts + 1;
    // Committed before the handler runs: a crash inside it is counted at the next start.
    db.query("UPDATE events SET status = 'processing', attempts = ?, next_attempt_at = NULL WHERE seq = ?").run(attempt, seq);
    try {
      const changes = await route(env, payload.value, { seq, replay: row.replay_of !== null, dryRun: false, attempt, recovered });
      this.#finish(seq, "done", this.#now());
      if (row.replay_of !== null) this.#changes.set(seq, Array.isArray(changes) ? changes : []);
    } catch (err) {
      this.#failed(row, attempt, err);
    }
  }

  /** Records a handler failure: error history, then `retry_wait` with backoff or `dead`. */
  #failed(
    row: Pick<EventRow, "seq" | "event_id" | "event_type" | "last_error">,
    attempt: number,
    err: unknown,
    countAttempt = false,
  ): void {
    const now = this.#now();
    const maxAttempts = this.journal.options.maxRetries + 1;
    const kind = err instanceof HandlerError ? err.code : "uncaught";
    const error = `${kind} ${describe(err)}`;
    this.#defer(row.seq, () => recordError(this.#db, row.seq, attempt, now, error));
    // An uncaught exception gets exactly one more try; if the retry also throws one, it is a bug.
    const uncaughtAgain = kind === "uncaught" && attempt > 1 && (row.last_error?.startsWith("uncaught ") ?? false);
    if (kind === "permanent" || uncaughtAgain || attempt >= maxAttempts) {
      this.#dead(row, attempt, error, now, countAttempt);
      return;
    }
    const delay = backoffDelay(attempt - 1, {
      baseMs: this.journal.options.retryBaseMs,
      capMs: this.journal.options.retryMaxMs,
      random: this.#random,
    });
    const at = ts(now + delay);
    this.#defer(row.seq, () => {
      if (countAttempt) {
        this.#db
          .query("UPDATE events SET status = 'retry_wait', attempts = ?, next_attempt_at = ?, last_error = ? WHERE seq = ?")
          .run(attempt, at, error, row.seq);
      } else {
        this.#db.query("UPDATE events SET status = 'retry_wait', next_attempt_at = ?, last_error = ? WHERE seq = ?").run(at, error, row.seq);
      }
    });
    this.#log.warn("journal: event handler failed, will retry", {
      seq: row.seq,
      event_type: row.event_type,
      attempt,
      retry_in_ms: Math.round(delay),
      error,
    });
  }

  /**
   * Plans one row for a dry-run replay: the same routing and supersession decisions as a real
   * replay copy would meet, then the handler with `dryRun: true`. Writes nothing.
   */
  async plan(row: EventRow): Promise<PlanResult> {
    // A replay copy's position is the original's seq (rows.ts isSuperseded).
    if (isSuperseded(this.#db, { seq: row.seq, ordering_key: row.ordering_key, replay_of: row.seq })) {
      return { result: "superseded", changes: [], reason: "a later event with the same ordering key was applied" };
    }
    const env = rowEnvelope(row);
    if (env === undefined) return { result: "error", changes: [], reason: "journaled envelope does not parse" };
    const route = this.#route(env);
    if (route === "ignored_mode") return { result: "ignored", changes: [], reason: "bridge event in node mode" };
    if (route === "ignored_unknown") return { result: "ignored", changes: [], reason: "no handler for this type" };
    const payload = parsePayload(env.payloadText);
    if (!payload.ok) return { result: "error", changes: [], reason: `payload is not JSON: ${payload.error}` };
    try {
      const changes = await route(env, payload.value, { seq: row.seq, replay: true, dryRun: true, attempt: 0, recovered: false });
      const list = Array.isArray(changes) ? changes : [];
      return { result: "planned", changes: list.length > 0 ? list : ["no change"] };
    } catch (err) {
      return { result: "error", changes: [], reason: describe(err) };
    }
  }

  /** Reads a row (for replay, status views). */
  row(seq: number): EventRow | undefined {
    return getRow(this.#db, seq);
  }
}
