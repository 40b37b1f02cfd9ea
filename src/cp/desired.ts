/** Per-node desired state the admin sets: metadata map, data entries and secrets (values). */
import type { Db } from "./db.ts";
import type { EventLog } from "./events.ts";

/** DataEntry of protocol.md §5. */
export interface DataEntry {
  key: string;
  content_type: string;
  payload: unknown;
  version: number;
  updated_at: string;
}

export class Desired {
  constructor(
    private readonly db: Db,
    private readonly events: EventLog,
    private readonly now: () => number = Date.now,
  ) {}

  metadata(nodeId: string): Record<string, string> {
    const r = this.db.query("SELECT metadata FROM nodes WHERE id = ?").get(nodeId) as { metadata: string } | null;
    return r ? (JSON.parse(r.metadata) as Record<string, string>) : {};
  }

  data(nodeId: string): DataEntry[] {
    const rows = this.db
      .query("SELECT key, content_type, payload, version, updated_at FROM node_data WHERE node_id = ? ORDER BY key")
      .all(nodeId) as { key: string; content_type: string; payload: string; version: number; updated_at: string }[];
    return rows.map((r) => ({ ...r, payload: JSON.parse(r.payload) as unknown }));
  }

  secretRefs(nodeId: string): { key: string; version: number }[] {
    return this.db
      .query("SELECT key, version FROM secrets WHERE node_id = ? ORDER BY key")
      .all(nodeId) as { key: string; version: number }[];
  }

  secret(nodeId: string, key: string): { value: Uint8Array; version: number } | undefined {
    const r = this.db.query("SELECT value, version FROM secrets WHERE node_id = ? AND key = ?").get(nodeId, key) as
      | { value: Uint8Array; version: number }
      | null;
    return r ?? undefined;
  }

  private stateUpdated(nodeId: string): void {
    this.events.publish(nodeId, "node_state_updated", { metadata: this.metadata(nodeId), data: this.data(nodeId) });
  }

  /** Merges keys into the metadata map (`null` deletes a key) and notifies the node. */
  setMetadata(nodeId: string, patch: Record<string, string | null>): Record<string, string> {
    const m = this.metadata(nodeId);
    for (const [k, v] of Object.entries(patch)) {
      if (v === null) delete m[k];
      else m[k] = v;
    }
    this.db.query("UPDATE nodes SET metadata = ? WHERE id = ?").run(JSON.stringify(m), nodeId);
    this.stateUpdated(nodeId);
    return m;
  }

  /** Creates or replaces a data entry (version + 1) and notifies the node. */
  setData(nodeId: string, key: string, contentType: string, payload: unknown): DataEntry {
    const prev = this.db.query("SELECT version FROM node_data WHERE node_id = ? AND key = ?").get(nodeId, key) as
      | { version: number }
      | null;
    const entry: DataEntry = {
      key,
      content_type: contentType,
      payload,
      version: (prev?.version ?? 0) + 1,
      updated_at: new Date(this.now()).toISOString(),
    };
    this.db
      .query(
        `INSERT INTO node_data (node_id, key, content_type, payload, version, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(node_id, key) DO UPDATE SET content_type = excluded.content_type, payload = excluded.payload,
         version = excluded.version, updated_at = excluded.updated_at`,
      )
      .run(nodeId, key, contentType, JSON.stringify(payload), entry.version, entry.updated_at);
    this.stateUpdated(nodeId);
    return entry;
  }

  /** Deletes a data entry and notifies the node. */
  deleteData(nodeId: string, key: string): boolean {
    const r = this.db.query("DELETE FROM node_data WHERE node_id = ? AND key = ?").run(nodeId, key);
    if (r.changes > 0) this.stateUpdated(nodeId);
    return r.changes > 0;
  }

  /** Sets a secret value (version + 1); the node gets the new index, never the value. */
  setSecret(nodeId: string, key: string, value: Uint8Array): { key: string; version: number } {
    const prev = this.secret(nodeId, key);
    const version = (prev?.version ?? 0) + 1;
    this.db
      .query(
        `INSERT INTO secrets (node_id, key, value, version) VALUES (?, ?, ?, ?)
         ON CONFLICT(node_id, key) DO UPDATE SET value = excluded.value, version = excluded.version`,
      )
      .run(nodeId, key, value, version);
    this.events.publish(nodeId, "node_secrets_updated", { secret_refs: this.secretRefs(nodeId) });
    return { key, version };
  }
}
