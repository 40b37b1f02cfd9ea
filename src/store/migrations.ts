/**
 * Forward-only schema migrations; index i upgrades user_version i → i+1. Never edit a shipped
 * entry: add a new one. Tables follow operations.md §1 and §3.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sse_id TEXT, event_id TEXT, event_type TEXT, issued_at TEXT, nonce TEXT, signature TEXT,
    received_at TEXT NOT NULL, raw BLOB NOT NULL,
    verify TEXT NOT NULL, reject_reason TEXT,
    status TEXT NOT NULL, ordering_key TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at TEXT, last_error TEXT,
    processed_at TEXT, dead_at TEXT, replay_of INTEGER, node_id TEXT NOT NULL, trace_id TEXT
  );
  CREATE UNIQUE INDEX events_nonce_verified ON events(nonce) WHERE verify = 'verified';
  CREATE INDEX events_dup ON events(event_id, signature);
  CREATE INDEX events_status ON events(status, seq);
  CREATE INDEX events_ordering ON events(ordering_key, seq);
  CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL, dedup_key TEXT, node_id TEXT NOT NULL,
    method TEXT NOT NULL, path TEXT NOT NULL, body TEXT,
    created_at TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT, last_error TEXT, status TEXT NOT NULL DEFAULT 'pending',
    delivered_at TEXT, dead_at TEXT
  );
  CREATE UNIQUE INDEX outbox_dedup ON outbox(kind, dedup_key) WHERE status = 'pending' AND dedup_key IS NOT NULL;
  CREATE TABLE revoked_sessions (session_id TEXT PRIMARY KEY, revoked_at TEXT NOT NULL);
  `,
  // 1 (src/journal): per-attempt error history of journal rows for `plexd dlq show`
  // (operations.md §2); rows go with their event (ON DELETE CASCADE, foreign_keys=ON).
  `
  CREATE TABLE event_errors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    seq INTEGER NOT NULL REFERENCES events(seq) ON DELETE CASCADE,
    attempt INTEGER NOT NULL, at TEXT NOT NULL, error TEXT NOT NULL
  );
  CREATE INDEX event_errors_seq ON event_errors(seq);
  CREATE INDEX events_dead ON events(dead_at) WHERE status = 'dead';
  `,
  // 2 (src/journal): the duplicate lookup (protocol.md §8.2 step 2) and `replay --event-id`
  // only need event_id to find the row; the 88-byte signature in the key made every intake
  // insert ~25 % dearer at 20k rows (random pages) for nothing — it is compared on the row.
  `
  DROP INDEX events_dup;
  CREATE INDEX events_event_id ON events(event_id);
  `,
];
