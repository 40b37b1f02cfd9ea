/** The CP's single SQLite file: WAL mode, versioned forward-only migrations. */
import { Database } from "bun:sqlite";
import { MIGRATIONS } from "./migrations.ts";

export type Db = Database;

/** Opens (creating if needed) and migrates the database at `path`. */
export function openDb(path: string): Db {
  const db = new Database(path, { create: true, strict: true });
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA synchronous = NORMAL");
  db.exec("PRAGMA foreign_keys = ON");
  db.exec("PRAGMA busy_timeout = 5000");
  migrate(db);
  return db;
}

function migrate(db: Db): void {
  const row = db.query("PRAGMA user_version").get() as { user_version: number };
  const current = row.user_version;
  if (current > MIGRATIONS.length) {
    throw new Error(`database schema version ${current} is newer than this binary (${MIGRATIONS.length})`);
  }
  for (let i = current; i < MIGRATIONS.length; i++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[i] as string);
      db.exec(`PRAGMA user_version = ${i + 1}`);
    })();
  }
}
