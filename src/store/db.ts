/**
 * The agent's SQLite database (`data_dir/plexd.db`): WAL, synchronous=FULL, versioned
 * forward-only migrations tracked in PRAGMA user_version (lifecycle.md §13.4).
 */
import { Database } from "bun:sqlite";
import { copyFileSync, existsSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { StoreError } from "./errors.ts";
import { FILE_MODE, ensurePrivateDir } from "./atomic.ts";
import { MIGRATIONS } from "./migrations.ts";

export interface OpenDbOptions {
  /** Directory for pre-migration snapshots (`upgrade/plexd.db.pre-<version>`). */
  snapshotDir?: string;
  migrations?: readonly string[];
}

export function openDatabase(path: string, opts: OpenDbOptions = {}): Database {
  const migrations = opts.migrations ?? MIGRATIONS;
  const fresh = !existsSync(path);
  let db: Database;
  try {
    db = new Database(path, { create: true, strict: true });
    db.exec("PRAGMA busy_timeout = 5000");
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = FULL");
    db.exec("PRAGMA foreign_keys = ON");
    const check = db.query("PRAGMA quick_check").get() as { quick_check: string } | null;
    if (check?.quick_check !== "ok") throw new Error(`integrity check: ${check?.quick_check}`);
  } catch (err) {
    throw new StoreError("corrupt", path, `cannot open database (corrupt or not SQLite): ${(err as Error).message}`, { cause: err });
  }
  if (fresh) chmodSync(path, FILE_MODE);
  const current = (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
  if (current > migrations.length) {
    db.close();
    throw new StoreError("schema_too_new", path, `schema version ${current} is newer than this binary knows (${migrations.length})`);
  }
  if (current < migrations.length) {
    if (!fresh && opts.snapshotDir) {
      ensurePrivateDir(opts.snapshotDir);
      db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
      const snap = join(opts.snapshotDir, `plexd.db.pre-${current}`);
      copyFileSync(path, snap);
      chmodSync(snap, FILE_MODE);
    }
    const migrate = db.transaction(() => {
      for (let v = current; v < migrations.length; v++) db.exec(migrations[v]!);
      db.exec(`PRAGMA user_version = ${migrations.length}`);
    });
    migrate();
  }
  return db;
}

/** Small key/value table helpers (e.g. `sse.last_event_id`). */
export function kvGet(db: Database, key: string): string | undefined {
  const row = db.query("SELECT value FROM kv WHERE key = ?").get(key) as { value: string } | null;
  return row?.value;
}

export function kvSet(db: Database, key: string, value: string | undefined): void {
  if (value === undefined) db.query("DELETE FROM kv WHERE key = ?").run(key);
  else db.query("INSERT INTO kv(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(key, value);
}
