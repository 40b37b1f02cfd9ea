import { afterEach, describe, expect, test } from "bun:test";
import { VirtualTime } from "../events/testing.ts";
import { dlqList, dlqRetry } from "./dlq.ts";
import { captureLogger, cleanupTemp, T0, tempDb } from "./journal.test-util.ts";
import { Outbox, type OutboxItem, type SendOutcome } from "./outbox.ts";

afterEach(cleanupTemp);

function setup(send: (item: OutboxItem) => Promise<SendOutcome>, db = tempDb().db, vt = new VirtualTime(T0)) {
  const log = captureLogger();
  const ob = new Outbox({
    db,
    nodeId: () => "n_self",
    send,
    log,
    now: vt.now,
    sleep: (ms, s) => vt.sleep(ms, s ?? new AbortController().signal),
    random: () => 0.5,
  });
  const status = (id: number) => (db.query("SELECT status FROM outbox WHERE id = ?").get(id) as { status: string }).status;
  return { db, vt, log, ob, status };
}

const ack = (x: string) => ({ kind: "ack", dedupKey: `ack:${x}`, method: "POST", path: `/v1/nodes/n_self/executions/${x}/ack`, body: "{}" });
const result = (x: string) => ({ kind: "result", dedupKey: `result:${x}`, method: "POST", path: `/v1/nodes/n_self/executions/${x}/result`, body: "{}" });

describe("outbox", () => {
  test("dedup: a pending ack is kept, a pending capabilities update is replaced by the newest", () => {
    const { db, ob } = setup(async () => "delivered");
    const a = ob.enqueue(ack("x1"));
    expect(ob.enqueue({ ...ack("x1"), body: '{"second":true}' })).toBe(a);
    const c = ob.enqueue({ kind: "capabilities", dedupKey: "capabilities", method: "PUT", path: "/c", body: "v1" });
    expect(ob.enqueue({ kind: "capabilities", dedupKey: "capabilities", method: "PUT", path: "/c", body: "v2" })).toBe(c);
    const bodies = db.query("SELECT id, body FROM outbox ORDER BY id").all();
    expect(bodies).toEqual([
      { id: a, body: "{}" },
      { id: c, body: "v2" },
    ]);
  });

  test("transient failures back off 1, 2, 4 s; FIFO per kind; a result waits for its ack", async () => {
    const sent: [string, number][] = [];
    let ackFails = 3;
    const { vt, ob, status } = setup(async (item) => {
      sent.push([item.path.split("/").at(-1)! + ":" + item.path.split("/").at(-2)!, vt.now() - T0]);
      if (item.kind === "ack" && ackFails-- > 0) return "retry";
      return "delivered";
    });
    const a = ob.enqueue(ack("x1"));
    const r = ob.enqueue(result("x1"));
    ob.start();
    await vt.until(() => status(r) === "delivered", 60_000, 100);
    expect(sent).toEqual([
      ["ack:x1", 0],
      ["ack:x1", 1_000],
      ["ack:x1", 3_000],
      ["ack:x1", 7_000],
      ["result:x1", 7_000],
    ]);
    expect(status(a)).toBe("delivered");
    await ob.stop();
  });

  test("permanent → dead (listed in the DLQ as d<id>, logged); retry requeues it; max age → dead", async () => {
    let mode: SendOutcome = { outcome: "permanent", error: "HTTP 400" };
    const { db, vt, ob, log, status } = setup(async () => mode);
    const a = ob.enqueue(ack("x2"));
    expect(await ob.drainOnce()).toBe(1);
    expect(status(a)).toBe("dead");
    expect(dlqList(db, { kind: "delivery" })).toMatchObject([{ id: `d${a}`, type: "ack", last_error: "HTTP 400" }]);
    expect(log.lines.some((l) => l.level === "error" && l.fields.id === `d${a}`)).toBe(true);
    expect(dlqRetry(db, [`d${a}`], vt.now())).toBe(1);
    mode = "delivered";
    await ob.drainOnce();
    expect(status(a)).toBe("delivered");
    mode = "retry";
    const b = ob.enqueue(ack("x3"));
    await ob.drainOnce();
    await vt.advance(7 * 24 * 3_600_000 + 1);
    await ob.drainOnce();
    expect(status(b)).toBe("dead");
    expect(dlqList(db, {}).map((e) => e.last_error)).toEqual(["older than outbox.max_age"]);
  });

  test("401 pauses delivery until a kick; Retry-After replaces the backoff", async () => {
    const outcomes: SendOutcome[] = ["pause", { outcome: "retry", retryAfterMs: 30_000 }, "delivered"];
    const times: number[] = [];
    const { vt, ob, status } = setup(async () => {
      times.push(vt.now() - T0);
      return outcomes.shift()!;
    });
    const a = ob.enqueue(ack("x4"));
    ob.start();
    await vt.advance(600_000);
    expect(ob.paused).toBe(true);
    expect(times).toEqual([0]);
    ob.kick(); // re-authenticated
    await vt.until(() => status(a) === "delivered", 120_000, 1_000);
    expect(times).toEqual([0, 600_000, 630_000]);
    await ob.stop();
  });

  test("pending items survive a restart and are delivered by the next process", async () => {
    const first = setup(async () => "retry");
    const a = first.ob.enqueue(ack("x5"));
    await first.ob.drainOnce();
    const delivered: number[] = [];
    const second = setup(async (i) => (delivered.push(i.id), "delivered"), first.db, first.vt);
    await first.vt.advance(1_000);
    await second.ob.drainOnce();
    expect(delivered).toEqual([a]);
    expect(second.ob.prune()).toBe(0);
    await first.vt.advance(8 * 24 * 3_600_000);
    expect(second.ob.prune()).toBe(1);
  });
});
