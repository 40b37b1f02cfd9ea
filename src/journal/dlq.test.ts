import { afterEach, describe, expect, test } from "bun:test";
import type { Database } from "bun:sqlite";
import { dlqList, dlqPurge, dlqRetry, dlqShow, parseDlqId } from "./dlq.ts";
import { HandlerError, JournalError } from "./errors.ts";
import { cleanupTemp, rig, statusOf, type Rig } from "./journal.test-util.ts";

afterEach(cleanupTemp);

function addOutbox(db: Database, kind: string, status: string, deadAt: string | null, dedup: string | null = null): number {
  return (
    db
      .query(
        `INSERT INTO outbox(kind, dedup_key, node_id, method, path, body, created_at, attempts, last_error, status, dead_at)
         VALUES (?, ?, 'n_self', 'POST', '/v1/nodes/n_self/executions/x/ack', '{}', '2025-01-15T10:00:00.000Z', 3, 'HTTP 400', ?, ?) RETURNING id`,
      )
      .get(kind, dedup, status, deadAt) as { id: number }
  ).id;
}

/** Sends three events that die permanently and one that succeeds. */
async function withDead(): Promise<{ r: Rig; dead: number[]; ok: number; calls: string[] }> {
  const r = rig();
  const calls: string[] = [];
  const dead = [
    r.send({ type: "policy_updated", id: "p1" }).seq,
    r.send({ type: "action_request", id: "a1", payload: { execution_id: "x1", action: "service.restart", parameters: { unit: "nginx" } } }).seq,
  ];
  await r.vt.advance(1_000);
  dead.push(r.send({ type: "policy_updated", id: "p2" }).seq);
  const ok = r.send({ type: "node_state_updated", id: "n1" }).seq;
  const fail = async (e: { eventId: string }): Promise<void> => {
    calls.push(e.eventId);
    throw new HandlerError(`bad ${e.eventId}`, { retryable: false });
  };
  const d = r.dispatcher({ policy_updated: fail, action_request: fail, node_state_updated: async () => {} });
  d.start();
  await d.idle();
  await d.stop();
  return { r, dead, ok, calls };
}

describe("DLQ", () => {
  test("ids: e<seq>, bare seq, d<id>; anything else is refused", () => {
    expect(parseDlqId("e12")).toEqual({ kind: "event", seq: 12 });
    expect(parseDlqId("12")).toEqual({ kind: "event", seq: 12 });
    expect(parseDlqId("d3")).toEqual({ kind: "delivery", id: 3 });
    for (const bad of ["", "x1", "e", "e0", "d-1", "e1; DROP TABLE events"]) expect(() => parseDlqId(bad)).toThrow(JournalError);
  });

  test("list shows dead events and dead deliveries with filters and limit", async () => {
    const { r, dead } = await withDead();
    const d1 = addOutbox(r.db, "ack", "dead", "2025-01-15T10:40:00.000Z");
    addOutbox(r.db, "result", "pending", null);
    const all = dlqList(r.db, {});
    expect(all.map((e) => e.id)).toEqual([...dead.map((s) => `e${s}`), `d${d1}`]);
    expect(all[0]).toMatchObject({ kind: "event", type: "policy_updated", event_id: "p1", attempts: 1, last_error: "permanent HandlerError: bad p1", status: "dead" });
    expect(all[3]).toMatchObject({ kind: "delivery", type: "ack", event_id: null, attempts: 3, last_error: "HTTP 400" });
    expect(dlqList(r.db, { type: "policy_updated" }).map((e) => e.event_id)).toEqual(["p1", "p2"]);
    expect(dlqList(r.db, { kind: "delivery" }).map((e) => e.id)).toEqual([`d${d1}`]);
    expect(dlqList(r.db, { kind: "event", limit: 1 }).map((e) => e.id)).toEqual([`e${dead[0]}`]);
  });

  test("show decodes the envelope, action parameters and error history; unknown id → undefined", async () => {
    const { r, dead } = await withDead();
    const e = dlqShow(r.db, `e${dead[1]}`)!;
    expect(e.kind).toBe("event");
    const det = e.detail as import("./dlq.ts").DlqEventDetail;
    expect(det.payload).toEqual({ execution_id: "x1", action: "service.restart", parameters: { unit: "nginx" } });
    expect(det.payload_pretty).toContain('\n  "action": "service.restart"');
    expect(det.parameters).toEqual({ unit: "nginx" });
    expect(det.ordering_key).toBe("exec:x1");
    expect(det.errors).toEqual([{ attempt: 1, at: expect.any(String), error: "permanent HandlerError: bad a1" }]);
    expect(dlqShow(r.db, "e999")).toBeUndefined();
    const d = addOutbox(r.db, "ack", "delivered", null);
    expect(dlqShow(r.db, `d${d}`)).toMatchObject({ kind: "delivery", status: "delivered", detail: { method: "POST", body: "{}" } });
  });

  test("retry one id requeues it (attempts 0) and the dispatcher processes it", async () => {
    const { r, dead } = await withDead();
    expect(dlqRetry(r.db, [`e${dead[0]}`, `e${dead[0]}`, "e999"])).toBe(1);
    expect(r.journal.row(dead[0]!)).toMatchObject({ status: "pending", attempts: 0, dead_at: null });
    const seen: string[] = [];
    const d = r.dispatcher({ policy_updated: async (e) => void seen.push(e.eventId) });
    d.start();
    await d.idle();
    expect(seen).toEqual(["p1"]);
    expect(statusOf(r.db, dead[0]!)).toBe("done");
    expect(statusOf(r.db, dead[2]!)).toBe("dead");
    await d.stop();
  });

  test("retry-all with type and kind filters; deliveries requeued unless a newer one is pending", async () => {
    const { r, dead } = await withDead();
    const d1 = addOutbox(r.db, "ack", "dead", "2025-01-15T10:40:00.000Z", "ack:x1");
    const d2 = addOutbox(r.db, "capabilities", "dead", "2025-01-15T10:41:00.000Z", "capabilities");
    addOutbox(r.db, "capabilities", "pending", null, "capabilities");
    expect(dlqRetry(r.db, { all: true, type: "action_request" })).toBe(1);
    expect(statusOf(r.db, dead[1]!)).toBe("pending");
    expect(dlqRetry(r.db, { all: true, kind: "delivery" })).toBe(1);
    const st = (id: number) => (r.db.query("SELECT status FROM outbox WHERE id = ?").get(id) as { status: string }).status;
    expect([st(d1), st(d2)]).toEqual(["pending", "dead"]);
    expect(dlqRetry(r.db, { all: true })).toBe(2); // p1, p2 (capabilities still blocked)
    expect(dlqList(r.db, {}).map((e) => e.id)).toEqual([`d${d2}`]);
    expect(() => dlqRetry(r.db, { all: true, kind: "bogus" })).toThrow(JournalError);
  });

  test("retry of an old peer_added after a later peer_removed was applied → superseded, not applied", async () => {
    const r = rig();
    const applied: string[] = [];
    const add = r.send({ type: "peer_added", id: "add", payload: { id: "n_2" } }).seq;
    const rm = r.send({ type: "peer_removed", id: "rm", payload: { peer_id: "n_2" } }).seq;
    let addWorks = false;
    const d = r.dispatcher({
      peer_added: async () => {
        if (!addWorks) throw new HandlerError("bad", { retryable: false });
        applied.push("add");
      },
      peer_removed: async () => void applied.push("rm"),
    });
    d.start();
    await d.idle();
    expect([statusOf(r.db, add), statusOf(r.db, rm)]).toEqual(["dead", "done"]);
    addWorks = true;
    expect(dlqRetry(r.db, [`e${add}`])).toBe(1);
    d.kick();
    await d.idle();
    expect(statusOf(r.db, add)).toBe("superseded");
    expect(applied).toEqual(["rm"]);
    await d.stop();
  });

  test("purge by id, by age and all; never touches rows that are not dead", async () => {
    const { r, dead, ok } = await withDead();
    const od = addOutbox(r.db, "ack", "dead", "2025-01-15T10:00:00.000Z");
    expect(dlqPurge(r.db, { ids: [`e${dead[0]}`, `e${ok}`] })).toBe(1);
    expect(r.journal.row(dead[0]!)).toBeUndefined();
    expect(r.db.query("SELECT COUNT(*) AS n FROM event_errors WHERE seq = ?").get(dead[0]!)).toEqual({ n: 0 });
    // dead[1] died an hour before now, the outbox row 30 min before, dead[2] just now.
    r.db.query("UPDATE events SET dead_at = '2025-01-15T09:30:00.000Z' WHERE seq = ?").run(dead[1]!);
    expect(dlqPurge(r.db, { olderThanMs: 10 * 60_000, now: r.vt.now() })).toBe(2);
    expect(od).toBeGreaterThan(0);
    expect(dlqList(r.db, {}).map((e) => e.id)).toEqual([`e${dead[2]}`]);
    expect(dlqPurge(r.db, { all: true })).toBe(1);
    expect(statusOf(r.db, ok)).toBe("done");
    expect(() => dlqPurge(r.db, {})).toThrow(JournalError);
    expect(() => dlqPurge(r.db, { all: true, ids: ["e1"] })).toThrow(JournalError);
  });
});
