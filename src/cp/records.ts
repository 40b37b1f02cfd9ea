/** Append-only per-node records (drift, telemetry items, integrity alerts, tunnel notices). */
import type { Db } from "./db.ts";

/** Record kinds stored by the CP. */
export type RecordKind =
  | "drift"
  | "metrics"
  | "logs"
  | "audit"
  | "integrity"
  | "tunnel_ready"
  | "tunnel_closed"
  | "heartbeat";

export class Records {
  constructor(private readonly db: Db, private readonly now: () => number = Date.now) {}

  add(nodeId: string, kind: RecordKind, body: unknown): void {
    this.db
      .query("INSERT INTO records (node_id, kind, body, received_at) VALUES (?, ?, ?, ?)")
      .run(nodeId, kind, JSON.stringify(body), this.now());
  }

  /** Stores a telemetry batch once per X-Plexd-Batch-Id; returns false for a duplicate batch. */
  addBatch(nodeId: string, kind: "metrics" | "logs" | "audit", batchId: string | null, items: unknown[]): boolean {
    return this.db.transaction((): boolean => {
      if (batchId) {
        const r = this.db
          .query("INSERT OR IGNORE INTO telemetry_batches (node_id, kind, batch_id, received_at) VALUES (?, ?, ?, ?)")
          .run(nodeId, kind, batchId, this.now());
        if (r.changes === 0) return false;
      }
      for (const it of items) this.add(nodeId, kind, it);
      return true;
    })();
  }

  /** Newest-last list of records, after `afterId`, at most `limit`. */
  list(nodeId: string, kind: string, afterId = 0, limit = 1000): { id: number; received_at: string; body: unknown }[] {
    const rows = this.db
      .query("SELECT id, body, received_at FROM records WHERE node_id = ? AND kind = ? AND id > ? ORDER BY id LIMIT ?")
      .all(nodeId, kind, afterId, limit) as { id: number; body: string; received_at: number }[];
    return rows.map((r) => ({ id: r.id, received_at: new Date(r.received_at).toISOString(), body: JSON.parse(r.body) }));
  }
}
