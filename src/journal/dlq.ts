/**
 * Dead-letter queue operations over `plexd.db` (operations.md §2; config.md §4.2 `dlq …`;
 * control socket `/v1/dlq…`). Plain functions so the control socket and tests call them
 * directly; after {@link dlqRetry} the caller kicks the dispatcher / outbox.
 *
 * Ids: event rows `e<seq>` (a bare `<seq>` is accepted too), outbox deliveries `d<id>`.
 */
import type { Database } from "bun:sqlite";
import { JournalError } from "./errors.ts";
import { rowEnvelope, ts, type EventRow } from "./rows.ts";
import { parsePayload } from "./types.ts";

/** One DLQ entry as listed (`ID KIND TYPE EVENT_ID ATTEMPTS DEAD_AT LAST_ERROR`). JSON-ready. */
export interface DlqEntry {
  id: string;
  kind: "event" | "delivery";
  /** Event type, or the outbox item kind (`ack`, `result`, …). */
  type: string | null;
  event_id: string | null;
  attempts: number;
  last_error: string | null;
  dead_at: string | null;
  /** Row status (`dead` for list results; `dlqShow` shows any row). */
  status: string;
  /** Only from {@link dlqShow}. */
  detail?: DlqEventDetail | DlqDeliveryDetail;
}

/** Full event row for `dlq show` (raw bytes omitted; the envelope is decoded). */
export interface DlqEventDetail {
  seq: number;
  sse_id: string | null;
  issued_at: string | null;
  received_at: string;
  verify: string;
  reject_reason: string | null;
  ordering_key: string | null;
  next_attempt_at: string | null;
  processed_at: string | null;
  replay_of: number | null;
  node_id: string;
  nonce: string | null;
  signature: string | null;
  /** Decoded payload (JSON value), undefined when the envelope never parsed. */
  payload?: unknown;
  /** Pretty-printed payload (2-space JSON). */
  payload_pretty?: string;
  /** `action_request` parameters, shown separately. */
  parameters?: unknown;
  errors: { attempt: number; at: string; error: string }[];
}

/** Full outbox row for `dlq show d<id>`. */
export interface DlqDeliveryDetail {
  id: number;
  dedup_key: string | null;
  method: string;
  path: string;
  body: string | null;
  created_at: string;
  next_attempt_at: string | null;
  delivered_at: string | null;
  node_id: string;
}

/** Parsed DLQ id. */
export type DlqId = { kind: "event"; seq: number } | { kind: "delivery"; id: number };

/** Parses `e12`, `12` (event) or `d7` (delivery). @throws JournalError unknown_id */
export function parseDlqId(id: string): DlqId {
  const m = /^([ed]?)([1-9][0-9]{0,15})$/.exec(id.trim());
  if (m === null) throw new JournalError("unknown_id", `not a DLQ id: ${JSON.stringify(id)} (expected e<seq> or d<id>)`);
  const n = Number(m[2]);
  return m[1] === "d" ? { kind: "delivery", id: n } : { kind: "event", seq: n };
}

interface OutboxRow {
  id: number;
  kind: string;
  dedup_key: string | null;
  node_id: string;
  method: string;
  path: string;
  body: string | null;
  created_at: string;
  attempts: number;
  next_attempt_at: string | null;
  last_error: string | null;
  status: string;
  delivered_at: string | null;
  dead_at: string | null;
}

function eventEntry(r: EventRow): DlqEntry {
  return {
    id: `e${r.seq}`,
    kind: "event",
    type: r.event_type,
    event_id: r.event_id,
    attempts: r.attempts,
    last_error: r.last_error,
    dead_at: r.dead_at,
    status: r.status,
  };
}

function deliveryEntry(r: OutboxRow): DlqEntry {
  return {
    id: `d${r.id}`,
    kind: "delivery",
    type: r.kind,
    event_id: null,
    attempts: r.attempts,
    last_error: r.last_error,
    dead_at: r.dead_at,
    status: r.status,
  };
}

/** Lists dead entries, oldest `dead_at` first (events and deliveries merged). */
export function dlqList(db: Database, filter: { type?: string; kind?: "event" | "delivery"; limit?: number } = {}): DlqEntry[] {
  const out: DlqEntry[] = [];
  if (filter.kind !== "delivery") {
    const rows = (
      filter.type === undefined
        ? db.query("SELECT * FROM events WHERE status = 'dead' ORDER BY dead_at, seq").all()
        : db.query("SELECT * FROM events WHERE status = 'dead' AND event_type = ? ORDER BY dead_at, seq").all(filter.type)
    ) as EventRow[];
    out.push(...rows.map(eventEntry));
  }
  if (filter.kind !== "event") {
    const rows = (
      filter.type === undefined
        ? db.query("SELECT * FROM outbox WHERE status = 'dead' ORDER BY dead_at, id").all()
        : db.query("SELECT * FROM outbox WHERE status = 'dead' AND kind = ? ORDER BY dead_at, id").all(filter.type)
    ) as OutboxRow[];
    out.push(...rows.map(deliveryEntry));
  }
  out.sort((a, b) => (a.dead_at ?? "").localeCompare(b.dead_at ?? ""));
  return filter.limit !== undefined && filter.limit >= 0 ? out.slice(0, filter.limit) : out;
}

/**
 * Full entry for `dlq show` — any journal or outbox row, not only dead ones (delivered outbox
 * rows are kept for debugging, operations.md §3). Undefined for an unknown id.
 * @throws JournalError unknown_id for a malformed id
 */
export function dlqShow(db: Database, id: string): DlqEntry | undefined {
  const p = parseDlqId(id);
  if (p.kind === "delivery") {
    const r = db.query("SELECT * FROM outbox WHERE id = ?").get(p.id) as OutboxRow | null;
    if (r === null) return undefined;
    const detail: DlqDeliveryDetail = {
      id: r.id,
      dedup_key: r.dedup_key,
      method: r.method,
      path: r.path,
      body: r.body,
      created_at: r.created_at,
      next_attempt_at: r.next_attempt_at,
      delivered_at: r.delivered_at,
      node_id: r.node_id,
    };
    return { ...deliveryEntry(r), detail };
  }
  const r = db.query("SELECT * FROM events WHERE seq = ?").get(p.seq) as EventRow | null;
  if (r === null) return undefined;
  const errors = db.query("SELECT attempt, at, error FROM event_errors WHERE seq = ? ORDER BY id").all(r.seq) as DlqEventDetail["errors"];
  const detail: DlqEventDetail = {
    seq: r.seq,
    sse_id: r.sse_id,
    issued_at: r.issued_at,
    received_at: r.received_at,
    verify: r.verify,
    reject_reason: r.reject_reason,
    ordering_key: r.ordering_key,
    next_attempt_at: r.next_attempt_at,
    processed_at: r.processed_at,
    replay_of: r.replay_of,
    node_id: r.node_id,
    nonce: r.nonce,
    signature: r.signature,
    errors,
  };
  const env = rowEnvelope(r);
  if (env !== undefined) {
    const pl = parsePayload(env.payloadText);
    if (pl.ok) {
      detail.payload = pl.value;
      detail.payload_pretty = JSON.stringify(pl.value, null, 2);
      if (env.eventType === "action_request" && pl.value !== null && typeof pl.value === "object") {
        detail.parameters = (pl.value as Record<string, unknown>).parameters ?? {};
      }
    } else {
      detail.payload_pretty = env.payloadText;
    }
  }
  return { ...eventEntry(r), detail };
}

/** Selection of {@link dlqRetry}: explicit ids, or everything matching. */
export type DlqRetrySelection = string[] | { all: true; type?: string; kind?: "event" | "delivery" | string };

function isUniqueViolation(err: unknown): boolean {
  return /UNIQUE constraint failed/.test(String((err as { message?: unknown })?.message));
}

/**
 * Requeues dead entries (status → `pending`, `attempts` → 0), in id order. No re-verification;
 * supersession (operations.md §1.3) applies when the dispatcher takes them. A dead delivery whose
 * dedup key already has a pending item stays dead (the newer item wins). Its `created_at` is
 * reset so `outbox.max_age` counts from the requeue. Returns the number requeued.
 * @throws JournalError on a malformed id or kind
 */
export function dlqRetry(db: Database, sel: DlqRetrySelection, now: number = Date.now()): number {
  let events: number[] = [];
  let deliveries: number[] = [];
  if (Array.isArray(sel)) {
    for (const id of sel) {
      const p = parseDlqId(id);
      if (p.kind === "event") events.push(p.seq);
      else deliveries.push(p.id);
    }
  } else {
    if (sel.kind !== undefined && sel.kind !== "event" && sel.kind !== "delivery") {
      throw new JournalError("invalid_filter", `kind must be event or delivery, got ${JSON.stringify(sel.kind)}`);
    }
    if (sel.kind !== "delivery") {
      const rows = (
        sel.type === undefined
          ? db.query("SELECT seq FROM events WHERE status = 'dead' ORDER BY seq").all()
          : db.query("SELECT seq FROM events WHERE status = 'dead' AND event_type = ? ORDER BY seq").all(sel.type)
      ) as { seq: number }[];
      events = rows.map((r) => r.seq);
    }
    if (sel.kind !== "event") {
      const rows = (
        sel.type === undefined
          ? db.query("SELECT id FROM outbox WHERE status = 'dead' ORDER BY id").all()
          : db.query("SELECT id FROM outbox WHERE status = 'dead' AND kind = ? ORDER BY id").all(sel.type)
      ) as { id: number }[];
      deliveries = rows.map((r) => r.id);
    }
  }
  events.sort((a, b) => a - b);
  deliveries.sort((a, b) => a - b);
  let n = 0;
  db.transaction(() => {
    const ev = db.query(
      `UPDATE events SET status = 'pending', attempts = 0, next_attempt_at = NULL, dead_at = NULL, processed_at = NULL
       WHERE seq = ? AND status = 'dead'`,
    );
    for (const seq of events) n += ev.run(seq).changes;
    const ob = db.query(
      `UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = NULL, dead_at = NULL, created_at = ?
       WHERE id = ? AND status = 'dead'`,
    );
    for (const id of deliveries) {
      try {
        n += ob.run(ts(now), id).changes;
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
      }
    }
  }).immediate();
  return n;
}

/** Selection of {@link dlqPurge}; exactly one of `ids`, `olderThanMs`, `all`. */
export interface DlqPurgeSelection {
  ids?: string[];
  /** Entries whose `dead_at` is older than this. */
  olderThanMs?: number;
  all?: boolean;
  /** Clock for `olderThanMs` (default Date.now()). */
  now?: number;
}

/**
 * Deletes dead entries (never rows in any other status). Returns the number deleted.
 * @throws JournalError when the selection is not exactly one of ids / olderThanMs / all
 */
export function dlqPurge(db: Database, sel: DlqPurgeSelection): number {
  const given = [sel.ids !== undefined, sel.olderThanMs !== undefined, sel.all === true].filter(Boolean).length;
  if (given !== 1) throw new JournalError("invalid_filter", "purge needs exactly one of: ids, olderThan, all");
  let n = 0;
  db.transaction(() => {
    if (sel.ids !== undefined) {
      for (const id of sel.ids) {
        const p = parseDlqId(id);
        n +=
          p.kind === "event"
            ? db.query("DELETE FROM events WHERE seq = ? AND status = 'dead'").run(p.seq).changes
            : db.query("DELETE FROM outbox WHERE id = ? AND status = 'dead'").run(p.id).changes;
      }
    } else if (sel.all === true) {
      n += db.query("DELETE FROM events WHERE status = 'dead'").run().changes;
      n += db.query("DELETE FROM outbox WHERE status = 'dead'").run().changes;
    } else {
      const older = sel.olderThanMs as number;
      if (!(older >= 0)) throw new JournalError("invalid_filter", `olderThan must be ≥ 0, got ${older}`);
      const cut = ts((sel.now ?? Date.now()) - older);
      n += db.query("DELETE FROM events WHERE status = 'dead' AND dead_at < ?").run(cut).changes;
      n += db.query("DELETE FROM outbox WHERE status = 'dead' AND dead_at < ?").run(cut).changes;
    }
  }).immediate();
  return n;
}
