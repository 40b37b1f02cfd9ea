import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync, chmodSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as v from "valibot";
import { ensurePrivateDir, writeFileAtomic, writeJsonAtomic } from "./atomic.ts";
import { kvGet, kvSet, openDatabase } from "./db.ts";
import { StoreError } from "./errors.ts";
import { readJsonFile } from "./files.ts";

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "plexd-store-"));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("atomic writes", () => {
  test("writes 0600 files and leaves no temp file", () => {
    const d = tmp();
    const p = join(d, "identity.json");
    writeJsonAtomic(p, { node_id: "n_1" });
    writeFileAtomic(p, '{"node_id":"n_2"}');
    expect(statSync(p).mode & 0o777).toBe(0o600);
    expect(readdirSync(d)).toEqual(["identity.json"]);
    expect(readJsonFile(p, v.object({ node_id: v.string() }))).toEqual({ node_id: "n_2" });
  });

  test("failed write names the path and keeps the old file", () => {
    const d = tmp();
    const p = join(d, "missing-dir", "x.json");
    expect(() => writeFileAtomic(p, "x")).toThrow(StoreError);
    expect(() => writeFileAtomic(p, "x")).toThrow(p);
  });

  test("ensurePrivateDir creates 0700 and tightens wider modes", () => {
    const d = join(tmp(), "data");
    expect(ensurePrivateDir(d)).toBe(false);
    expect(statSync(d).mode & 0o777).toBe(0o700);
    chmodSync(d, 0o755);
    expect(ensurePrivateDir(d)).toBe(true);
    expect(statSync(d).mode & 0o777).toBe(0o700);
  });
});

describe("reading state files", () => {
  const schema = v.object({ node_id: v.string() });
  test("missing is undefined", () => {
    expect(readJsonFile(join(tmp(), "nope.json"), schema)).toBeUndefined();
  });
  test("truncated file is reported with its path, never replaced", () => {
    const p = join(tmp(), "identity.json");
    writeFileSync(p, '{"node_id": "n_');
    let err: unknown;
    try {
      readJsonFile(p, schema);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).code).toBe("corrupt");
    expect((err as StoreError).message).toContain(p);
  });
  test("wrong shape is corrupt with the field", () => {
    const p = join(tmp(), "identity.json");
    writeFileSync(p, '{"node_id": 5}');
    expect(() => readJsonFile(p, schema)).toThrow(/node_id/);
  });
});

describe("database", () => {
  test("creates schema, WAL, 0600, kv round trip, survives reopen", () => {
    const d = tmp();
    const p = join(d, "plexd.db");
    let db = openDatabase(p);
    expect((db.query("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode).toBe("wal");
    kvSet(db, "sse.last_event_id", "42");
    db.close();
    expect(statSync(p).mode & 0o777).toBe(0o600);
    db = openDatabase(p);
    expect(kvGet(db, "sse.last_event_id")).toBe("42");
    kvSet(db, "sse.last_event_id", undefined);
    expect(kvGet(db, "sse.last_event_id")).toBeUndefined();
    db.close();
  });

  test("migration snapshots the previous version first", () => {
    const d = tmp();
    const p = join(d, "plexd.db");
    openDatabase(p, { migrations: ["CREATE TABLE a(x)"] }).close();
    const snaps = join(d, "upgrade");
    const db = openDatabase(p, { migrations: ["CREATE TABLE a(x)", "CREATE TABLE b(y)"], snapshotDir: snaps });
    expect((db.query("PRAGMA user_version").get() as { user_version: number }).user_version).toBe(2);
    db.close();
    expect(readdirSync(snaps)).toEqual(["plexd.db.pre-1"]);
  });

  test("newer schema than known is refused", () => {
    const p = join(tmp(), "plexd.db");
    openDatabase(p, { migrations: ["CREATE TABLE a(x)", "CREATE TABLE b(y)"] }).close();
    expect(() => openDatabase(p, { migrations: ["CREATE TABLE a(x)"] })).toThrow(/newer than this binary/);
  });

  test("a corrupt database file is reported with its path", () => {
    const d = tmp();
    mkdirSync(d, { recursive: true });
    const p = join(d, "plexd.db");
    writeFileSync(p, "this is not sqlite at all, just garbage bytes".repeat(200));
    expect(() => openDatabase(p)).toThrow(p);
  });
});
