/**
 * Report entries pushed by nodes (nodeapi.md §5). A batch is applied all-or-nothing: an entry
 * whose version is below the stored one, or equal with different content, is a conflict (409).
 * Re-sending the identical entry is a no-op success, so retries are safe.
 */
import type { Db } from "./db.ts";

export interface ReportIn {
  key: string;
  content_type: string;
  payload: unknown;
  version: number;
  updated_at: string;
}

/** One conflicting entry, reported in the 409 body. */
export interface ReportConflict {
  key: string;
  version: number;
  current_version: number;
}

interface Row {
  key: string;
  content_type: string;
  payload: string;
  version: number;
  updated_at: string;
  deleted: number;
}

export class Reports {
  constructor(private readonly db: Db, private readonly now: () => number = Date.now) {}

  private row(nodeId: string, key: string): Row | undefined {
    return (
      (this.db
        .query("SELECT key, content_type, payload, version, updated_at, deleted FROM reports WHERE node_id = ? AND key = ?")
        .get(nodeId, key) as Row | null) ?? undefined
    );
  }

  /** Applies a batch; returns the conflicts (nothing applied) or [] (everything applied). */
  apply(nodeId: string, entries: ReportIn[], deleted: string[]): ReportConflict[] {
    return this.db.transaction((): ReportConflict[] => {
      const conflicts: ReportConflict[] = [];
      const toWrite: ReportIn[] = [];
      for (const e of entries) {
        const cur = this.row(nodeId, e.key);
        const payload = JSON.stringify(e.payload ?? null);
        if (!cur || e.version > cur.version) toWrite.push(e);
        else if (e.version === cur.version && !cur.deleted && cur.payload === payload && cur.content_type === e.content_type) continue;
        else conflicts.push({ key: e.key, version: e.version, current_version: cur.version });
      }
      if (conflicts.length > 0) return conflicts;
      const up = this.db.query(
        `INSERT INTO reports (node_id, key, content_type, payload, version, updated_at, deleted, received_at)
         VALUES (?, ?, ?, ?, ?, ?, 0, ?) ON CONFLICT(node_id, key) DO UPDATE SET content_type = excluded.content_type,
         payload = excluded.payload, version = excluded.version, updated_at = excluded.updated_at, deleted = 0,
         received_at = excluded.received_at`,
      );
      for (const e of toWrite) up.run(nodeId, e.key, e.content_type, JSON.stringify(e.payload ?? null), e.version, e.updated_at, this.now());
      const del = this.db.query("UPDATE reports SET deleted = 1, received_at = ? WHERE node_id = ? AND key = ?");
      for (const k of deleted) del.run(this.now(), nodeId, k);
      return [];
    })();
  }

  /** Live (not deleted) entries of a node. */
  list(nodeId: string, includeDeleted = false): (ReportIn & { deleted: boolean })[] {
    const rows = this.db
      .query("SELECT key, content_type, payload, version, updated_at, deleted FROM reports WHERE node_id = ? ORDER BY key")
      .all(nodeId) as Row[];
    return rows
      .filter((r) => includeDeleted || !r.deleted)
      .map((r) => ({ ...r, payload: JSON.parse(r.payload) as unknown, deleted: r.deleted === 1 }));
  }
}
