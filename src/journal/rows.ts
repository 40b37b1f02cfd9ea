/**
 * Row shape of the `events` table and the small SQL helpers shared by the journal, the
 * dispatcher, the DLQ functions and replay. Timestamps are stored as `toISOString()` text
 * (UTC, millisecond precision, fixed width) so they order correctly as strings in SQL.
 */
import type { Database } from "bun:sqlite";
import { parseEnvelope, type Envelope } from "../events/envelope.ts";
import type { EventStatus, VerifyState } from "./types.ts";

/** One `events` row as stored (operations.md §1.1). */
export interface EventRow {
  seq: number;
  sse_id: string | null;
  event_id: string | null;
  event_type: string | null;
  issued_at: string | null;
  nonce: string | null;
  signature: string | null;
  received_at: string;
  raw: Uint8Array;
  verify: VerifyState;
  reject_reason: string | null;
  status: EventStatus;
  ordering_key: string | null;
  attempts: number;
  next_attempt_at: string | null;
  last_error: string | null;
  processed_at: string | null;
  dead_at: string | null;
  replay_of: number | null;
  node_id: string;
  trace_id: string | null;
}

/** Instant → stored timestamp text. */
export function ts(ms: number): string {
  return new Date(ms).toISOString();
}

/** Stored timestamp text → instant (NaN if unreadable). */
export function tsMs(text: string | null): number {
  return text === null ? Number.NaN : Date.parse(text);
}

const utf8 = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/** The `raw` column as text (U+FFFD for invalid UTF-8; verification works on the bytes). */
export function rawText(row: Pick<EventRow, "raw">): string {
  return utf8.decode(row.raw);
}

/** Re-parses a row's envelope (step 1 only); undefined for rows that never parsed. */
export function rowEnvelope(row: Pick<EventRow, "raw">): Envelope | undefined {
  const p = parseEnvelope(rawText(row));
  return p.ok ? p.envelope : undefined;
}

/** Reads one row by seq. */
export function getRow(db: Database, seq: number): EventRow | undefined {
  return (db.query("SELECT * FROM events WHERE seq = ?").get(seq) as EventRow | null) ?? undefined;
}

/** Appends one entry to a row's error history (table `event_errors`). */
export function recordError(db: Database, seq: number, attempt: number, atMs: number, error: string): void {
  db.query("INSERT INTO event_errors(seq, attempt, at, error) VALUES (?, ?, ?, ?)").run(seq, attempt, ts(atMs), error);
}

/**
 * True when a row with the same ordering key and a later position is `done` (operations.md §1.3).
 * A row's position is its `replay_of` when it is a replay copy, else its `seq`, so a replay of an
 * old event is superseded by anything that happened after the original.
 */
export function isSuperseded(db: Database, row: Pick<EventRow, "seq" | "ordering_key" | "replay_of">): boolean {
  if (row.ordering_key === null) return false;
  const pos = row.replay_of ?? row.seq;
  const hit = db
    .query(
      `SELECT 1 FROM events WHERE ordering_key = ? AND status = 'done' AND seq <> ?
         AND COALESCE(replay_of, seq) > ? LIMIT 1`,
    )
    .get(row.ordering_key, row.seq, pos);
  return hit !== null;
}
