/**
 * `plexd replay` (operations.md §4): select journal rows, then either plan them against the
 * current state (`dryRun`, writes nothing) or append `replay_of` copies that the dispatcher
 * processes like fresh events (supersession applies to them, by the original's position).
 */
import type { Database } from "bun:sqlite";
import type { Logger } from "../log/index.ts";
import { parseDurationMs, parseRfc3339 } from "../util/duration.ts";
import type { Dispatcher } from "./dispatcher.ts";
import { JournalError } from "./errors.ts";
import { ts, type EventRow } from "./rows.ts";
import { DEFAULT_REPLAY_STATUSES, NEVER_REPLAY } from "./types.ts";

/** Row selection; filters are AND-ed, repeated values OR-ed. */
export interface ReplayFilter {
  /** Duration back from now (`1h`) or RFC 3339; compared with `received_at`. */
  since?: string;
  until?: string;
  types?: string[];
  /** Envelope `event_id`s. */
  ids?: string[];
  seqs?: number[];
  /** Row status(es); default `done`, `dead`, `ignored`, `superseded`. `rejected` needs dryRun. */
  status?: string | string[];
  dryRun: boolean;
  /** Skip the reconcile after a real replay (`--no-reconcile`). */
  noReconcile?: boolean;
}

/** Result of one selected row (`SEQ TYPE EVENT_ID RESULT CHANGES`). JSON-ready. */
export interface ReplayRow {
  seq: number;
  type: string | null;
  event_id: string | null;
  /**
   * dry run: `planned` | `superseded` | `ignored` | `skipped` | `rejected` | `error`;
   * real run: `applied` | `superseded` | `ignored` | `skipped` | `failed` (dead) | `retrying` | `pending`.
   */
  result: string;
  changes: string[];
  reason?: string;
  /** seq of the replay copy (real runs). */
  replay_seq?: number;
}

/** Dependencies of {@link replay}. */
export interface ReplayDeps {
  db: Database;
  /** Supplies handlers, routing and the dispatcher loop (it must be started for real runs). */
  dispatcher: Dispatcher;
  log: Logger;
  now?: () => number;
  /** Triggered after a real replay so the CP's desired state is authoritative again. */
  reconcile?: () => void | Promise<void>;
}

function instant(value: string, now: number, name: string): number {
  const t = parseRfc3339(value);
  if (t !== undefined) return t.epochMs;
  try {
    return now - parseDurationMs(value);
  } catch (err) {
    throw new JournalError("invalid_filter", `--${name} must be a duration or an RFC 3339 time, got ${JSON.stringify(value)}`, { cause: err });
  }
}

/** Builds the selection query. Exported for tests of the filter logic. */
export function selectReplayRows(db: Database, f: ReplayFilter, now: number): EventRow[] {
  const statuses = f.status === undefined ? [...DEFAULT_REPLAY_STATUSES] : Array.isArray(f.status) ? f.status : [f.status];
  if (statuses.length === 0) throw new JournalError("invalid_filter", "status list is empty");
  const where: string[] = [];
  const args: (string | number)[] = [];
  const inList = (col: string, values: readonly (string | number)[]): void => {
    where.push(`${col} IN (${values.map(() => "?").join(",")})`);
    args.push(...values);
  };
  inList("status", statuses);
  // Replay copies are not themselves replayed again: select originals only.
  where.push("replay_of IS NULL");
  if (f.since !== undefined) {
    where.push("received_at >= ?");
    args.push(ts(instant(f.since, now, "since")));
  }
  if (f.until !== undefined) {
    where.push("received_at <= ?");
    args.push(ts(instant(f.until, now, "until")));
  }
  if (f.types !== undefined && f.types.length > 0) inList("event_type", f.types);
  if (f.ids !== undefined && f.ids.length > 0) inList("event_id", f.ids);
  if (f.seqs !== undefined && f.seqs.length > 0) inList("seq", f.seqs);
  return db.query(`SELECT * FROM events WHERE ${where.join(" AND ")} ORDER BY seq`).all(...args) as EventRow[];
}

const RESULT_OF_STATUS: Record<string, string> = {
  done: "applied",
  superseded: "superseded",
  ignored: "ignored",
  dead: "failed",
  retry_wait: "retrying",
  pending: "pending",
  processing: "pending",
};

/**
 * Replays the selected rows in `seq` order. Dry run: plan each against the current state via
 * the handlers (`ctx.dryRun`), nothing is written. Real run: append copies (`replay_of`,
 * `pending`, no nonce — the original holds it), wait until the dispatcher is idle, report each
 * copy's outcome, then reconcile unless `noReconcile`.
 * @throws JournalError invalid_filter (bad since/until, `rejected` without dryRun)
 */
export async function replay(deps: ReplayDeps, filter: ReplayFilter): Promise<ReplayRow[]> {
  const { db, dispatcher, log } = deps;
  const now = (deps.now ?? Date.now)();
  const statuses = filter.status === undefined ? [] : Array.isArray(filter.status) ? filter.status : [filter.status];
  if (!filter.dryRun && statuses.some((s) => s === "rejected" || s === "duplicate")) {
    throw new JournalError("invalid_filter", "rejected/duplicate events can only be listed with --dry-run (never applied)");
  }
  const rows = selectReplayRows(db, filter, now);
  const out: ReplayRow[] = [];
  const toCopy: { row: EventRow; result: ReplayRow }[] = [];
  for (const row of rows) {
    const base = { seq: row.seq, type: row.event_type, event_id: row.event_id, changes: [] as string[] };
    if (row.verify !== "verified") {
      const reason = row.verify === "rejected" ? `rejected: ${row.reject_reason ?? "unknown"}` : row.verify;
      out.push({ ...base, result: row.verify === "rejected" ? "rejected" : "skipped", reason: `${reason} (never applied)` });
      continue;
    }
    const never = row.event_type === null ? undefined : NEVER_REPLAY.get(row.event_type);
    if (never !== undefined) {
      out.push({ ...base, result: "skipped", reason: never });
      continue;
    }
    if (filter.dryRun) {
      const p = await dispatcher.plan(row);
      out.push({ ...base, result: p.result, changes: p.changes, ...(p.reason === undefined ? {} : { reason: p.reason }) });
      continue;
    }
    const result: ReplayRow = { ...base, result: "pending" };
    out.push(result);
    toCopy.push({ row, result });
  }
  if (filter.dryRun || toCopy.length === 0) return out;

  const nodeId = dispatcher.journal.nodeId();
  db.transaction(() => {
    const ins = db.query(
      `INSERT INTO events(sse_id, event_id, event_type, issued_at, nonce, signature, received_at, raw, verify, status,
         ordering_key, attempts, replay_of, node_id)
       VALUES (NULL, ?, ?, ?, NULL, ?, ?, ?, 'verified', 'pending', ?, 0, ?, ?) RETURNING seq`,
    );
    for (const c of toCopy) {
      const r = c.row;
      const got = ins.get(r.event_id, r.event_type, r.issued_at, r.signature, ts(now), r.raw, r.ordering_key, r.seq, nodeId) as { seq: number };
      c.result.replay_seq = got.seq;
    }
  }).immediate();
  log.info("journal: replaying events", { count: toCopy.length });
  dispatcher.kick();
  await dispatcher.idle();
  for (const c of toCopy) {
    const seq = c.result.replay_seq as number;
    const r = dispatcher.row(seq);
    c.result.result = r === undefined ? "pending" : (RESULT_OF_STATUS[r.status] ?? r.status);
    if (r?.status === "dead" || r?.status === "retry_wait") c.result.reason = r.last_error ?? undefined;
    if (r?.status === "superseded") c.result.reason = "a later event with the same ordering key was applied";
    c.result.changes = dispatcher.takeChanges(seq) ?? [];
  }
  if (!filter.noReconcile && deps.reconcile !== undefined) await deps.reconcile();
  return out;
}
