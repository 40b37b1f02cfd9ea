import { afterEach, describe, expect, test } from "bun:test";
import type { Database } from "bun:sqlite";
import { cleanupTemp, rig, T0 } from "./journal.test-util.ts";

afterEach(cleanupTemp);

const H = 3_600_000;
const D = 24 * H;

function put(db: Database, status: string, ageMs: number, o: { deadAgeMs?: number; key?: string; size?: number } = {}): number {
  const verify = status === "rejected" || status === "duplicate" ? status : "verified";
  return (
    db
      .query(
        `INSERT INTO events(received_at, raw, verify, status, ordering_key, dead_at, node_id)
         VALUES (?, ?, ?, ?, ?, ?, 'n_self') RETURNING seq`,
      )
      .get(
        new Date(T0 - ageMs).toISOString(),
        new Uint8Array(o.size ?? 10),
        verify,
        status,
        o.key ?? null,
        o.deadAgeMs === undefined ? null : new Date(T0 - o.deadAgeMs).toISOString(),
      ) as { seq: number }
  ).seq;
}

function seqs(db: Database): number[] {
  return (db.query("SELECT seq FROM events ORDER BY seq").all() as { seq: number }[]).map((r) => r.seq);
}

describe("prune (operations.md §1.4)", () => {
  test("terminal rows older than retention go; young ones and non-terminal rows stay", () => {
    const r = rig();
    const old = ["done", "ignored", "duplicate", "rejected", "superseded"].map((s) => put(r.db, s, 8 * D));
    const young = put(r.db, "done", 6 * D);
    const waiting = [put(r.db, "pending", 9 * D), put(r.db, "retry_wait", 9 * D), put(r.db, "processing", 9 * D)];
    expect(r.journal.prune()).toBe(old.length);
    expect(seqs(r.db)).toEqual([young, ...waiting]);
  });

  test("dead rows stay until dlq_retention, whatever their age", () => {
    const r = rig();
    const recent = put(r.db, "dead", 20 * D, { deadAgeMs: 29 * D });
    const expired = put(r.db, "dead", 40 * D, { deadAgeMs: 31 * D });
    put(r.db, "done", 8 * D);
    expect(r.journal.prune()).toBe(2);
    expect(seqs(r.db)).toEqual([recent]);
    expect(expired).toBeGreaterThan(0);
  });

  test("max_rows keeps the newest terminal rows; dead and pending rows do not count", () => {
    const r = rig({ options: { maxRows: 3 } });
    const rows = Array.from({ length: 6 }, (_, i) => put(r.db, "done", (10 - i) * H));
    const dead = put(r.db, "dead", 20 * H, { deadAgeMs: H });
    const pending = put(r.db, "pending", 20 * H);
    expect(r.journal.prune()).toBe(3);
    expect(seqs(r.db)).toEqual([...rows.slice(3), dead, pending]);
  });

  test("the newest done row of a key outlives an older dead row of that key (supersession keeps working)", () => {
    const r = rig();
    const deadAdd = put(r.db, "dead", 9 * D, { deadAgeMs: 9 * D, key: "peer:n_2" });
    const removed = put(r.db, "done", 8 * D, { key: "peer:n_2" });
    const other = put(r.db, "done", 8 * D, { key: "peer:n_3" });
    expect(r.journal.prune()).toBe(1);
    expect(seqs(r.db)).toEqual([deadAdd, removed]);
    expect(other).toBeGreaterThan(0);
  });

  test("error history goes with its row", () => {
    const r = rig();
    const s = put(r.db, "dead", 40 * D, { deadAgeMs: 40 * D });
    r.db.query("INSERT INTO event_errors(seq, attempt, at, error) VALUES (?, 1, 'x', 'boom')").run(s);
    r.journal.prune();
    expect(r.db.query("SELECT COUNT(*) AS n FROM event_errors").get()).toEqual({ n: 0 });
  });

  test("over max_db_size: terminal rows down to 50 % of max_rows, then VACUUM shrinks the file", () => {
    const r = rig({ options: { maxRows: 100, maxDbBytes: 256 * 1024 } });
    for (let i = 0; i < 80; i++) put(r.db, "done", H, { size: 16 * 1024 });
    const dead = put(r.db, "dead", H, { deadAgeMs: H, size: 16 * 1024 });
    const pageBytes = (): number =>
      (r.db.query("PRAGMA page_count").get() as { page_count: number }).page_count * (r.db.query("PRAGMA page_size").get() as { page_size: number }).page_size;
    const before = pageBytes();
    expect(before).toBeGreaterThan(256 * 1024);
    expect(r.journal.prune()).toBe(30);
    expect((r.db.query("SELECT COUNT(*) AS n FROM events WHERE status = 'done'").get() as { n: number }).n).toBe(50);
    expect(seqs(r.db)).toContain(dead);
    expect(pageBytes()).toBeLessThan(before * 0.8);
    expect(r.log.lines.some((l) => l.msg.includes("max_db_size"))).toBe(true);
  });
});
