/**
 * Forward-only schema migrations. Index i upgrades `PRAGMA user_version` from i to i+1.
 * Never edit a shipped entry; append a new one.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE bootstrap_tokens (
    token_hash TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    used_by TEXT
  );
  CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    hostname TEXT NOT NULL,
    public_key TEXT NOT NULL,
    mesh_ip TEXT NOT NULL,
    nsk TEXT,
    reg_metadata TEXT NOT NULL DEFAULT '{}',
    metadata TEXT NOT NULL DEFAULT '{}',
    capabilities TEXT,
    endpoint TEXT NOT NULL DEFAULT '',
    nat_type TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    last_seen INTEGER NOT NULL,
    last_heartbeat TEXT,
    registered_at INTEGER NOT NULL,
    removed_at INTEGER,
    next_seq INTEGER NOT NULL DEFAULT 1,
    pending_reconcile INTEGER NOT NULL DEFAULT 0,
    pending_rotate INTEGER NOT NULL DEFAULT 0
  );
  CREATE UNIQUE INDEX nodes_nsk ON nodes(nsk) WHERE nsk IS NOT NULL;
  CREATE INDEX nodes_hostname ON nodes(hostname);
  CREATE TABLE ip_released (ip TEXT PRIMARY KEY, released_at INTEGER NOT NULL);
  CREATE TABLE psks (a TEXT NOT NULL, b TEXT NOT NULL, psk TEXT NOT NULL, PRIMARY KEY (a, b));
  CREATE TABLE events (
    node_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (node_id, seq)
  );
  CREATE TABLE signing_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    seed TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    transition_expires INTEGER
  );
  CREATE TABLE policies (id TEXT PRIMARY KEY, body TEXT NOT NULL, position INTEGER NOT NULL);
  CREATE TABLE node_data (
    node_id TEXT NOT NULL, key TEXT NOT NULL, content_type TEXT NOT NULL, payload TEXT NOT NULL,
    version INTEGER NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (node_id, key)
  );
  CREATE TABLE secrets (
    node_id TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, version INTEGER NOT NULL,
    PRIMARY KEY (node_id, key)
  );
  CREATE TABLE reports (
    node_id TEXT NOT NULL, key TEXT NOT NULL, content_type TEXT NOT NULL, payload TEXT NOT NULL,
    version INTEGER NOT NULL, updated_at TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,
    received_at INTEGER NOT NULL, PRIMARY KEY (node_id, key)
  );
  CREATE TABLE executions (
    execution_id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL,
    action TEXT NOT NULL,
    request TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    ack_status TEXT, ack_reason TEXT, ack_at INTEGER,
    result TEXT, result_at INTEGER
  );
  CREATE INDEX executions_node ON executions(node_id);
  CREATE TABLE records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    node_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    received_at INTEGER NOT NULL
  );
  CREATE INDEX records_node_kind ON records(node_id, kind, id);
  CREATE TABLE telemetry_batches (
    node_id TEXT NOT NULL, kind TEXT NOT NULL, batch_id TEXT NOT NULL, received_at INTEGER NOT NULL,
    PRIMARY KEY (node_id, kind, batch_id)
  );
  CREATE TABLE artifacts (
    version TEXT NOT NULL, os TEXT NOT NULL, arch TEXT NOT NULL, sha256 TEXT NOT NULL,
    size INTEGER NOT NULL, path TEXT NOT NULL, signed INTEGER NOT NULL DEFAULT 1,
    uploaded_at INTEGER NOT NULL, PRIMARY KEY (version, os, arch)
  );
  `,
];
