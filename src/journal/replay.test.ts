import { afterEach, describe, expect, test } from "bun:test";
import { generateKeyPairSync } from "node:crypto";
import type { HandlerContext, EventHandler } from "./dispatcher.ts";
import { HandlerError, JournalError } from "./errors.ts";
import { cleanupTemp, msg, rig, signedData, statusOf, type Rig } from "./journal.test-util.ts";
import { replay } from "./replay.ts";

afterEach(cleanupTemp);

type SeqName = "add1" | "add2" | "rm2" | "act" | "forged" | "unknown" | "policy";

interface World {
  r: Rig;
  peers: Set<string>;
  ctxs: HandlerContext[];
  handlers: Record<string, EventHandler>;
  seq: Record<SeqName, number>;
}

/** A node with peers n_1 (added), n_2 (added then removed), an action, a rejected and an unknown event. */
async function world(): Promise<World> {
  const r = rig();
  const peers = new Set<string>();
  const ctxs: HandlerContext[] = [];
  const handlers: Record<string, EventHandler> = {
    peer_added: async (_e, p, ctx) => {
      ctxs.push(ctx);
      const id = (p as { id: string }).id;
      if (peers.has(id)) return [];
      if (!ctx.dryRun) peers.add(id);
      return [`peer ${id}: add`];
    },
    peer_removed: async (_e, p, ctx) => {
      ctxs.push(ctx);
      const id = (p as { peer_id: string }).peer_id;
      if (!peers.has(id)) return [];
      if (!ctx.dryRun) peers.delete(id);
      return [`peer ${id}: remove`];
    },
    action_request: async (_e, _p, ctx) => void ctxs.push(ctx),
    policy_updated: async () => {
      throw new HandlerError("bad policy", { retryable: false });
    },
  };
  const seq = {} as Record<SeqName, number>;
  seq.add1 = r.send({ type: "peer_added", id: "evt_add1", payload: { id: "n_1" } }).seq;
  await r.vt.advance(60_000);
  seq.add2 = r.send({ type: "peer_added", id: "evt_add2", payload: { id: "n_2" } }).seq;
  seq.rm2 = r.send({ type: "peer_removed", id: "evt_rm2", payload: { peer_id: "n_2" } }).seq;
  await r.vt.advance(60_000);
  seq.act = r.send({ type: "action_request", id: "evt_act", payload: { execution_id: "x1", action: "service.restart" } }).seq;
  const forged = signedData(generateKeyPairSync("ed25519").privateKey, { type: "peer_added", id: "evt_forged", payload: { id: "n_evil" }, issuedMs: r.vt.now() });
  seq.forged = r.journal.intake(msg(forged, "f")).seq;
  seq.unknown = r.send({ type: "brand_new_event", id: "evt_new" }).seq;
  seq.policy = r.send({ type: "policy_updated", id: "evt_pol" }).seq;
  const d = r.dispatcher(handlers);
  d.start();
  await d.idle();
  await d.stop();
  ctxs.length = 0;
  return { r, peers, ctxs, handlers, seq };
}

function snapshot(r: Rig): string {
  return JSON.stringify(r.db.query("SELECT seq, status, attempts, last_error, processed_at, dead_at FROM events ORDER BY seq").all());
}

describe("replay --dry-run", () => {
  test("plans every selected row against the current state and writes nothing", async () => {
    const w = await world();
    const { r, seq } = w;
    expect(statusOf(r.db, seq.policy)).toBe("dead");
    w.peers.delete("n_1"); // drift: n_1 vanished locally
    const before = snapshot(r);
    const d = r.dispatcher(w.handlers);
    const rows = await replay({ db: r.db, dispatcher: d, log: r.log, now: r.vt.now }, { dryRun: true });
    expect(rows.map((x) => [x.seq, x.type, x.event_id, x.result, x.changes])).toEqual([
      [seq.add1, "peer_added", "evt_add1", "planned", ["peer n_1: add"]],
      [seq.add2, "peer_added", "evt_add2", "superseded", []],
      [seq.rm2, "peer_removed", "evt_rm2", "planned", ["no change"]],
      [seq.act, "action_request", "evt_act", "skipped", []],
      [seq.unknown, "brand_new_event", "evt_new", "ignored", []],
      [seq.policy, "policy_updated", "evt_pol", "error", []],
    ]);
    expect(rows[3]!.reason).toContain("never replayed");
    expect(rows[5]!.reason).toContain("bad policy");
    expect(w.ctxs.every((c) => c.dryRun && c.replay)).toBe(true);
    expect(w.ctxs).toHaveLength(2);
    expect(w.peers.has("n_1")).toBe(false);
    expect(snapshot(r)).toBe(before);
  });

  test("filters: type, seq, event id, since/until, status (AND-ed)", async () => {
    const w = await world();
    const { r, seq } = w;
    const d = r.dispatcher(w.handlers);
    const run = async (f: Partial<Parameters<typeof replay>[1]>) =>
      (await replay({ db: r.db, dispatcher: d, log: r.log, now: r.vt.now }, { dryRun: true, ...f })).map((x) => x.seq);
    expect(await run({ types: ["peer_added"] })).toEqual([seq.add1, seq.add2]);
    expect(await run({ types: ["peer_added", "peer_removed"], seqs: [seq.add2, seq.rm2, seq.act] })).toEqual([seq.add2, seq.rm2]);
    expect(await run({ ids: ["evt_rm2"] })).toEqual([seq.rm2]);
    expect(await run({ since: "30s" })).toEqual([seq.act, seq.unknown, seq.policy]);
    expect(await run({ until: new Date(r.vt.now() - 90_000).toISOString() })).toEqual([seq.add1]);
    expect(await run({ since: "90s", until: "30s" })).toEqual([seq.add2, seq.rm2]);
    expect(await run({ status: "dead" })).toEqual([seq.policy]);
    const rej = await replay({ db: r.db, dispatcher: d, log: r.log, now: r.vt.now }, { dryRun: true, status: "rejected" });
    expect(rej.map((x) => [x.seq, x.result])).toEqual([[seq.forged, "rejected"]]);
    expect(rej[0]!.reason).toContain("bad_signature");
    await expect(run({ since: "yesterday" })).rejects.toThrow(JournalError);
  });
});

describe("replay (apply)", () => {
  test("appends replay_of copies, the dispatcher applies them, supersession holds, then reconcile", async () => {
    const w = await world();
    const { r, seq } = w;
    w.peers.delete("n_1");
    const d = r.dispatcher(w.handlers);
    d.start();
    let reconciles = 0;
    const rows = await replay(
      { db: r.db, dispatcher: d, log: r.log, now: r.vt.now, reconcile: () => void reconciles++ },
      { dryRun: false, types: ["peer_added", "action_request"] },
    );
    expect(rows.map((x) => [x.seq, x.result, x.changes])).toEqual([
      [seq.add1, "applied", ["peer n_1: add"]],
      [seq.add2, "superseded", []],
      [seq.act, "skipped", []],
    ]);
    expect([...w.peers]).toEqual(["n_1"]); // n_2 not resurrected
    const copy = r.journal.row(rows[0]!.replay_seq!)!;
    expect(copy).toMatchObject({ replay_of: seq.add1, status: "done", verify: "verified", nonce: null, event_id: "evt_add1" });
    expect(w.ctxs.filter((c) => !c.dryRun).map((c) => c.replay)).toEqual([true]);
    expect(reconciles).toBe(1);
    // Copies are not selected again by a later replay.
    const again = await replay({ db: r.db, dispatcher: d, log: r.log, now: r.vt.now }, { dryRun: true, types: ["peer_added"] });
    expect(again.map((x) => x.seq)).toEqual([seq.add1, seq.add2]);
    await d.stop();
  });

  test("a failing copy is reported failed; --no-reconcile skips the reconcile; rejected needs --dry-run", async () => {
    const w = await world();
    const { r, seq } = w;
    const d = r.dispatcher(w.handlers);
    d.start();
    let reconciles = 0;
    const deps = { db: r.db, dispatcher: d, log: r.log, now: r.vt.now, reconcile: () => void reconciles++ };
    const rows = await replay(deps, { dryRun: false, seqs: [seq.policy], noReconcile: true });
    expect(rows.map((x) => [x.seq, x.result, x.reason])).toEqual([[seq.policy, "failed", "permanent HandlerError: bad policy"]]);
    expect(reconciles).toBe(0);
    await expect(replay(deps, { dryRun: false, status: "rejected" })).rejects.toThrow(JournalError);
    await d.stop();
  });
});
