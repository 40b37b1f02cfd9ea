import { afterEach, describe, expect, test } from "bun:test";
import type { Envelope } from "../events/envelope.ts";
import { Dispatcher, type HandlerContext } from "./dispatcher.ts";
import { HandlerError } from "./errors.ts";
import { cleanupTemp, msg, rig, signedData, statusOf } from "./journal.test-util.ts";

afterEach(cleanupTemp);

function errorsOf(db: import("bun:sqlite").Database, seq: number): { attempt: number; at: string; error: string }[] {
  return db.query("SELECT attempt, at, error FROM event_errors WHERE seq = ? ORDER BY id").all(seq) as never;
}

describe("dispatch order and routing", () => {
  test("rows are processed strictly in seq order", async () => {
    const r = rig();
    const seen: number[] = [];
    const h = async (_e: Envelope, _p: unknown, ctx: HandlerContext): Promise<void> => {
      await r.vt.settle(1); // yield, so a racing second worker would interleave
      seen.push(ctx.seq);
    };
    const seqs = ["peer_added", "policy_updated", "peer_removed", "node_state_updated", "policy_updated"].map(
      (type, i) => r.send({ type, id: `e${i}`, payload: { id: `n_${i}`, peer_id: `n_${i}` } }).seq,
    );
    const d = r.dispatcher({ peer_added: h, peer_removed: h, policy_updated: h, node_state_updated: h });
    d.start();
    await d.idle();
    expect(seen).toEqual(seqs);
    for (const s of seqs) expect(statusOf(r.db, s)).toBe("done");
    await d.stop();
  });

  test("new rows after a kick are processed; handler gets envelope, parsed payload and context", async () => {
    const r = rig();
    const calls: [string, unknown, HandlerContext][] = [];
    const d = r.dispatcher({ peer_removed: async (e, p, ctx) => void calls.push([e.eventId, p, ctx]) });
    d.start();
    await d.idle();
    const { seq } = r.send({ type: "peer_removed", id: "evt_k", payload: { peer_id: "n_1" } });
    d.kick();
    await d.idle();
    expect(calls).toEqual([["evt_k", { peer_id: "n_1" }, { seq, replay: false, dryRun: false, attempt: 1, recovered: false }]]);
    await d.stop();
  });

  test("unknown types and bridge events in node mode → ignored; bridge mode dispatches them", async () => {
    const r = rig();
    let bridge = 0;
    const unknown = r.send({ type: "something_new", id: "u" }).seq;
    const relay = r.send({ type: "relay_session_revoked", id: "b", payload: { session_id: "s1" } }).seq;
    const d = r.dispatcher({ relay_session_revoked: async () => void bridge++ });
    d.start();
    await d.idle();
    expect([statusOf(r.db, unknown), statusOf(r.db, relay), bridge]).toEqual(["ignored", "ignored", 0]);
    await d.stop();
    const relay2 = r.send({ type: "relay_session_revoked", id: "b2", payload: { session_id: "s2" } }).seq;
    const d2 = r.dispatcher({ relay_session_revoked: async () => void bridge++ }, "bridge");
    d2.start();
    await d2.idle();
    expect([statusOf(r.db, relay2), bridge]).toEqual(["done", 1]);
    await d2.stop();
  });

  test("rejected and duplicate rows are never dispatched", async () => {
    const r = rig();
    let calls = 0;
    r.send({ type: "x", id: "a", nonce: "same" });
    r.send({ type: "x", id: "b", nonce: "same" }); // replay
    const d = r.dispatcher({ x: async () => void calls++ });
    d.start();
    await d.idle();
    expect(calls).toBe(1);
    await d.stop();
  });
});

describe("retries and dead letters", () => {
  test("retryable failures back off 2, 4, 8, 16, 32 s and go dead after 6 attempts", async () => {
    const r = rig();
    const attemptsAt: number[] = [];
    const { seq } = r.send({ type: "policy_updated", id: "p1" });
    const d = r.dispatcher({
      policy_updated: async () => {
        attemptsAt.push(r.vt.now());
        throw new HandlerError("EBUSY", { retryable: true });
      },
    });
    d.start();
    await r.vt.until(() => statusOf(r.db, seq) === "dead", 3_600_000, 500);
    const gaps = attemptsAt.slice(1).map((t, i) => t - attemptsAt[i]!);
    expect(gaps).toEqual([2_000, 4_000, 8_000, 16_000, 32_000]);
    const row = r.journal.row(seq)!;
    expect(row).toMatchObject({ status: "dead", attempts: 6, last_error: "retryable HandlerError: EBUSY" });
    expect(row.dead_at).not.toBeNull();
    expect(errorsOf(r.db, seq).map((e) => e.attempt)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(r.log.lines.some((l) => l.level === "error" && l.msg === "journal: event moved to the DLQ")).toBe(true);
    await d.stop();
  });

  test("the delay is capped at retry_max", async () => {
    const r = rig({ options: { retryBaseMs: 100_000, retryMaxMs: 150_000, maxRetries: 3 } });
    const { seq } = r.send({ type: "x", id: "j" });
    const d = r.dispatcher({ x: async () => Promise.reject(new HandlerError("again", { retryable: true })) });
    d.start();
    await d.idle();
    const row = r.journal.row(seq)!;
    expect(row.status).toBe("retry_wait");
    expect(Date.parse(row.next_attempt_at!) - r.vt.now()).toBe(100_000);
    await r.vt.advance(100_000);
    await d.idle();
    // 2nd retry: min(200 s, cap 150 s)
    expect(Date.parse(r.journal.row(seq)!.next_attempt_at!) - r.vt.now()).toBe(150_000);
    await d.stop();
  });

  test("a failing row does not block later rows", async () => {
    const r = rig();
    const order: string[] = [];
    let fail = true;
    const a = r.send({ type: "x", id: "a" }).seq;
    const b = r.send({ type: "y", id: "b" }).seq;
    const d = r.dispatcher({
      x: async () => {
        order.push("x");
        if (fail) throw new HandlerError("busy", { retryable: true });
      },
      y: async () => void order.push("y"),
    });
    d.start();
    await d.idle();
    expect([statusOf(r.db, a), statusOf(r.db, b)]).toEqual(["retry_wait", "done"]);
    fail = false;
    await r.vt.advance(2_000);
    await d.idle();
    expect(order).toEqual(["x", "y", "x"]);
    expect(r.journal.row(a)).toMatchObject({ status: "done", attempts: 2 });
    await d.stop();
  });

  test("a permanent error (payload fails its schema) is dead after the first attempt", async () => {
    const r = rig();
    let calls = 0;
    const { seq } = r.send({ type: "peer_added", id: "bad", payload: { id: 7 } });
    const d = r.dispatcher({
      peer_added: async () => {
        calls++;
        throw new HandlerError("payload: id must be a string", { retryable: false });
      },
    });
    d.start();
    await d.idle();
    expect(calls).toBe(1);
    expect(r.journal.row(seq)).toMatchObject({ status: "dead", attempts: 1, last_error: "permanent HandlerError: payload: id must be a string" });
    await d.stop();
  });

  test("an uncaught exception is retried once, then permanent", async () => {
    const r = rig();
    let calls = 0;
    const { seq } = r.send({ type: "x", id: "bug" });
    const d = r.dispatcher({
      x: async () => {
        calls++;
        throw new TypeError("cannot read properties of undefined");
      },
    });
    d.start();
    await d.idle();
    expect(r.journal.row(seq)).toMatchObject({ status: "retry_wait", attempts: 1 });
    await r.vt.advance(2_000);
    await d.idle();
    expect(calls).toBe(2);
    expect(r.journal.row(seq)).toMatchObject({ status: "dead", attempts: 2, last_error: "uncaught TypeError: cannot read properties of undefined" });
    await r.vt.advance(600_000);
    expect(calls).toBe(2);
    await d.stop();
  });

  test("an uncaught exception followed by success is done", async () => {
    const r = rig();
    let calls = 0;
    const { seq } = r.send({ type: "x", id: "flaky" });
    const d = r.dispatcher({
      x: async () => {
        if (++calls === 1) throw new Error("once");
      },
    });
    d.start();
    await r.vt.until(() => statusOf(r.db, seq) === "done", 60_000, 500);
    expect(calls).toBe(2);
    await d.stop();
  });
});

test("jitter spans 0.75–1.25 × the delay", async () => {
  for (const [rnd, want] of [
    [0, 1_500],
    [0.999999, 2_500],
  ] as const) {
    const r = rig();
    const { seq } = r.send({ type: "x", id: "j" });
    const d = new Dispatcher({
      journal: r.journal,
      handlers: { x: async () => Promise.reject(new HandlerError("again", { retryable: true })) },
      mode: () => "node",
      log: r.log,
      sleep: (ms, s) => r.vt.sleep(ms, s ?? new AbortController().signal),
      random: () => rnd,
    });
    d.start();
    await d.idle();
    expect(Date.parse(r.journal.row(seq)!.next_attempt_at!) - r.vt.now()).toBeCloseTo(want, -1);
    await d.stop();
  }
});

describe("supersession", () => {
  test("an old peer_added retried after a later peer_removed was applied is superseded, not applied", async () => {
    const r = rig();
    const peers = new Set<string>();
    let addFails = true;
    const added = r.send({ type: "peer_added", id: "add", payload: { id: "n_2", public_key: "k" } }).seq;
    const removed = r.send({ type: "peer_removed", id: "rm", payload: { peer_id: "n_2" } }).seq;
    const d = r.dispatcher({
      peer_added: async (_e, p) => {
        if (addFails) throw new HandlerError("EAGAIN", { retryable: true });
        peers.add((p as { id: string }).id);
      },
      peer_removed: async (_e, p) => void peers.delete((p as { peer_id: string }).peer_id),
    });
    d.start();
    await d.idle();
    expect([statusOf(r.db, added), statusOf(r.db, removed)]).toEqual(["retry_wait", "done"]);
    addFails = false;
    await r.vt.advance(2_000);
    await d.idle();
    expect(statusOf(r.db, added)).toBe("superseded");
    expect(peers.has("n_2")).toBe(false);
    await d.stop();
  });

  test("rows of other ordering keys are not superseded", async () => {
    const r = rig();
    let fail = true;
    const a = r.send({ type: "peer_added", id: "a", payload: { id: "n_1" } }).seq;
    r.send({ type: "peer_removed", id: "b", payload: { peer_id: "n_2" } });
    const d = r.dispatcher({
      peer_added: async () => {
        if (fail) throw new HandlerError("x", { retryable: true });
      },
      peer_removed: async () => {},
    });
    d.start();
    await d.idle();
    fail = false;
    await r.vt.advance(2_000);
    await d.idle();
    expect(statusOf(r.db, a)).toBe("done");
    await d.stop();
  });
});

describe("restart and stop", () => {
  test("pending and processing rows found at start are re-dispatched (processing marked recovered)", async () => {
    const a = rig();
    const p1 = a.send({ type: "x", id: "p1" }).seq;
    const p2 = a.send({ type: "x", id: "p2" }).seq;
    // Crash while p1's handler ran.
    a.db.query("UPDATE events SET status = 'processing', attempts = 1 WHERE seq = ?").run(p1);
    const b = rig({ from: a });
    const ctxs: HandlerContext[] = [];
    const d = b.dispatcher({ x: async (_e, _p, ctx) => void ctxs.push(ctx) });
    d.start();
    await d.idle();
    expect(ctxs.map((c) => [c.seq, c.attempt, c.recovered])).toEqual([
      [p1, 2, true],
      [p2, 1, false],
    ]);
    expect(errorsOf(b.db, p1).map((e) => e.error)).toEqual(["interrupted: agent stopped during processing"]);
    await d.stop();
  });

  test("a row interrupted by restarts on every attempt ends dead instead of crash-looping", async () => {
    const a = rig({ options: { maxRetries: 1 } });
    const s = a.send({ type: "x", id: "loop" }).seq;
    a.db.query("UPDATE events SET status = 'processing', attempts = 2 WHERE seq = ?").run(s);
    let calls = 0;
    const d = rig({ from: a, options: { maxRetries: 1 } }).dispatcher({ x: async () => void calls++ });
    d.start();
    await d.idle();
    expect([calls, statusOf(a.db, s)]).toEqual([0, "dead"]);
    await d.stop();
  });

  test("fresh rows commit the attempt with the outcome, without a processing commit", async () => {
    const r = rig();
    const { seq } = r.send({ type: "x", id: "f1" });
    const during: (string | undefined)[] = [];
    const d = r.dispatcher({ x: async () => void during.push(statusOf(r.db, seq)) });
    d.start();
    await d.idle();
    expect(during).toEqual(["pending"]);
    expect(r.journal.row(seq)).toMatchObject({ status: "done", attempts: 1 });
    await d.stop();
  });

  test("a row that crashed the agent on its fresh attempt runs on the careful path at the next start", async () => {
    const a = rig({ options: { maxRetries: 1 } });
    const s = a.send({ type: "x", id: "crasher" }).seq;
    const hang = a.dispatcher({ x: () => new Promise<never>(() => {}) }); // the "crash": never finishes
    hang.start();
    await a.vt.settle();
    expect(a.journal.row(s)).toMatchObject({ status: "pending", attempts: 0 });
    // Restarts: each run now commits `processing` + the attempt first; the loop ends dead.
    let runs = 0;
    for (let i = 0; i < 5 && statusOf(a.db, s) !== "dead"; i++) {
      const d = rig({ from: a, options: { maxRetries: 1 } }).dispatcher({
        x: async () => {
          runs++;
          expect(a.journal.row(s)).toMatchObject({ status: "processing", attempts: runs });
          return new Promise<never>(() => {});
        },
      });
      d.start();
      await a.vt.settle();
    }
    expect([runs, statusOf(a.db, s)]).toEqual([2, "dead"]);
  });

  test("side-effect types take the careful path even when fresh", async () => {
    const r = rig();
    const { seq } = r.send({ type: "action_request", id: "act", payload: { execution_id: "x1" } });
    const during: (string | undefined)[] = [];
    const d = r.dispatcher({ action_request: async () => void during.push(statusOf(r.db, seq)) });
    d.start();
    await d.idle();
    expect(during).toEqual(["processing"]);
    expect(r.journal.row(seq)).toMatchObject({ status: "done", attempts: 1 });
    await d.stop();
  });

  test("outcomes of a burst are committed together and in seq order", async () => {
    const r = rig();
    const now = r.vt.now();
    const res = r.journal.intakeBatch(
      [0, 1, 2, 3].map((i) => msg(signedData(r.signer.privateKey, { type: i === 2 ? "y" : "x", id: `b${i}`, issuedMs: now }), `s${i}`)),
    );
    const seen: number[] = [];
    const d = r.dispatcher({
      x: async (_e, _p, ctx) => void seen.push(ctx.seq),
      y: async () => Promise.reject(new HandlerError("busy", { retryable: true })),
    });
    d.start();
    await d.idle();
    expect(seen).toEqual([res[0]!.seq, res[1]!.seq, res[3]!.seq]);
    expect(res.map((x) => statusOf(r.db, x.seq))).toEqual(["done", "done", "retry_wait", "done"]);
    expect(r.journal.row(res[2]!.seq)).toMatchObject({ attempts: 1, last_error: "retryable HandlerError: busy" });
    expect(errorsOf(r.db, res[2]!.seq).map((e) => e.attempt)).toEqual([1]);
    await d.stop();
  });

  test("stop waits for the running handler and takes no new rows", async () => {
    const r = rig();
    let release!: () => void;
    const gate = new Promise<void>((res) => (release = res));
    const done: string[] = [];
    r.send({ type: "x", id: "slow" });
    r.send({ type: "x", id: "next" });
    const d = r.dispatcher({
      x: async (e) => {
        if (e.eventId === "slow") await gate;
        done.push(e.eventId);
      },
    });
    d.start();
    await r.vt.settle();
    let stopped = false;
    const stopping = d.stop().then(() => (stopped = true));
    await r.vt.settle();
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(done).toEqual(["slow"]);
    expect(statusOf(r.db, 2)).toBe("pending");
  });
});

describe("queued outcomes ride on the next intake commit", () => {
  /** Counts transactions opened through `db.transaction` from now on. */
  function commits(r: ReturnType<typeof rig>): () => number {
    let n = 0;
    const orig = r.db.transaction.bind(r.db);
    r.db.transaction = ((fn: (...a: never[]) => unknown) => {
      const t = orig(fn);
      const wrap = Object.assign((...a: never[]) => (n++, t(...a)), {
        immediate: (...a: never[]) => (n++, t.immediate(...a)),
        deferred: (...a: never[]) => (n++, t.deferred(...a)),
        exclusive: (...a: never[]) => (n++, t.exclusive(...a)),
      });
      return wrap;
    }) as typeof r.db.transaction;
    return () => n;
  }

  test("fresh outcomes stay queued, are not dispatched twice, and commit with the next intake", async () => {
    const r = rig();
    const calls: number[] = [];
    const a = r.send({ type: "x", id: "q1" }).seq;
    const b = r.send({ type: "x", id: "q2" }).seq;
    const count = commits(r);
    const d = r.dispatcher({ x: async (_e, _p, ctx) => void calls.push(ctx.seq) });
    d.start();
    const atStart = count(); // start() recovers interrupted rows in a transaction of its own
    await r.vt.settle(20); // the loop runs both rows and queries again (rows still read pending)
    expect(calls).toEqual([a, b]);
    expect([statusOf(r.db, a), statusOf(r.db, b)]).toEqual(["pending", "pending"]);
    expect(count()).toBe(atStart);
    const c = r.send({ type: "x", id: "q3" }).seq; // one transaction: row c + outcomes of a, b
    expect(count()).toBe(atStart + 1);
    expect(r.journal.row(a)).toMatchObject({ status: "done", attempts: 1 });
    expect(r.journal.row(b)).toMatchObject({ status: "done", attempts: 1 });
    d.kick();
    await r.vt.settle(20);
    expect(calls).toEqual([a, b, c]);
    await d.idle(); // idle() commits what is queued
    expect(statusOf(r.db, c)).toBe("done");
    await d.stop();
  });

  test("without intake, queued outcomes are committed after 100 ms", async () => {
    const r = rig();
    const { seq } = r.send({ type: "x", id: "t1" });
    const d = r.dispatcher({ x: async () => {} });
    d.start();
    await r.vt.settle(20);
    expect(statusOf(r.db, seq)).toBe("pending");
    await r.vt.advance(99);
    expect(statusOf(r.db, seq)).toBe("pending");
    await r.vt.advance(1);
    expect(r.journal.row(seq)).toMatchObject({ status: "done", attempts: 1 });
    await d.stop();
  });

  test("an intake that rolls back gives the carried outcomes back; they commit later", async () => {
    const r = rig();
    const { seq } = r.send({ type: "x", id: "rb1" });
    let calls = 0;
    const d = r.dispatcher({ x: async () => void calls++ });
    d.start();
    await r.vt.settle(20);
    const data = signedData(r.signer.privateKey, { type: "x", id: "rb2", issuedMs: r.vt.now() });
    r.db.exec("ALTER TABLE kv RENAME TO kv_gone");
    expect(() => r.journal.intakeBatch([msg(data, "s-rb2")])).toThrow();
    r.db.exec("ALTER TABLE kv_gone RENAME TO kv");
    expect(statusOf(r.db, seq)).toBe("pending");
    await d.idle();
    expect(r.journal.row(seq)).toMatchObject({ status: "done", attempts: 1 });
    expect(calls).toBe(1);
    await d.stop();
  });

  test("a failure outcome queued behind the retry timer is still scheduled correctly", async () => {
    const r = rig();
    const { seq } = r.send({ type: "x", id: "f1" });
    let calls = 0;
    const d = r.dispatcher({
      x: async () => {
        if (++calls === 1) throw new HandlerError("busy", { retryable: true });
      },
    });
    d.start();
    await r.vt.settle(20);
    expect(statusOf(r.db, seq)).toBe("pending"); // retry_wait queued, not yet committed
    await r.vt.advance(100);
    expect(statusOf(r.db, seq)).toBe("retry_wait");
    await r.vt.advance(1_800); // backoff 2 s after the failed attempt
    expect(calls).toBe(1);
    await r.vt.advance(100);
    expect(calls).toBe(2);
    await d.idle();
    expect(r.journal.row(seq)).toMatchObject({ status: "done", attempts: 2 });
    await d.stop();
  });

  test("stop commits queued outcomes", async () => {
    const r = rig();
    const { seq } = r.send({ type: "x", id: "s1" });
    const d = r.dispatcher({ x: async () => {} });
    d.start();
    await r.vt.settle(20);
    expect(statusOf(r.db, seq)).toBe("pending");
    await d.stop();
    expect(statusOf(r.db, seq)).toBe("done");
  });
});

