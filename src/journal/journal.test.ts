import { afterEach, describe, expect, test } from "bun:test";
import { generateKeyPairSync } from "node:crypto";
import { ed25519KeyFromBase64 } from "../events/keys.ts";
import { NonceStore } from "../events/nonce-store.ts";
import { V1, V1_ISSUED_MS, VECTOR_PUBLIC_KEY } from "../events/testing.ts";
import { kvGet } from "../store/db.ts";
import { Journal, LAST_EVENT_ID_KEY } from "./journal.ts";
import { cleanupTemp, captureLogger, msg, oversize, rig, signedData, statusOf, TEST_OPTIONS } from "./journal.test-util.ts";

afterEach(cleanupTemp);

describe("intake: verified / duplicate / rejected", () => {
  test("a signed event is journaled verified + pending, with ordering key and Last-Event-ID", () => {
    const r = rig();
    const res = r.send({ type: "peer_added", id: "evt_1", payload: { id: "n_2", public_key: "k" } }, "41");
    expect(res.verdict).toBe("verified");
    expect(res.envelope?.eventId).toBe("evt_1");
    const row = r.journal.row(res.seq)!;
    expect(row).toMatchObject({ verify: "verified", status: "pending", event_type: "peer_added", ordering_key: "peer:n_2", sse_id: "41", node_id: "n_self" });
    expect(row.nonce).toStartWith("nonce-");
    expect(r.journal.lastEventId()).toBe("41");
    expect(r.journal.stats().sse_verified_total).toBe(1);
  });

  test("the §8.3 V1 vector verifies with the spec key; delivered twice → duplicate without a warning", () => {
    const r = rig();
    const log = captureLogger();
    const j = new Journal({
      db: r.db,
      nodeId: () => "n_self",
      keys: () => ({ current: ed25519KeyFromBase64(VECTOR_PUBLIC_KEY) }),
      nonces: new NonceStore(),
      now: () => V1_ISSUED_MS + 1000,
      log,
      options: TEST_OPTIONS,
    });
    expect(j.intake(msg(V1, "1")).verdict).toBe("verified");
    const dup = j.intake(msg(V1, "2"));
    expect(dup.verdict).toBe("duplicate");
    expect(statusOf(r.db, dup.seq)).toBe("duplicate");
    expect(log.lines.filter((l) => l.level === "warn")).toEqual([]);
    expect(j.stats().sse_duplicate_total).toBe(1);
    expect(j.lastEventId()).toBe("2");
  });

  test("same nonce with another event_id → rejected replay, warned, counted", () => {
    const r = rig();
    r.send({ type: "policy_updated", id: "evt_a", nonce: "N1" });
    const res = r.send({ type: "policy_updated", id: "evt_b", nonce: "N1" });
    expect(res).toMatchObject({ verdict: "rejected", reason: "replay" });
    const row = r.journal.row(res.seq)!;
    expect(row).toMatchObject({ verify: "rejected", status: "rejected", reject_reason: "replay", event_id: "evt_b", nonce: "N1" });
    const warn = r.log.lines.find((l) => l.msg === "security: event rejected")!;
    expect(warn.level).toBe("warn");
    expect(warn.fields).toMatchObject({ event_id: "evt_b", event_type: "policy_updated", reason: "replay" });
    expect(r.journal.stats().sse_rejected_total).toEqual({ replay: 1 });
  });

  test("bad signature, stale, future, malformed, oversize, nonce_store_full are journaled with the reason", () => {
    const r = rig({ nonces: new NonceStore({ capacity: 1 }) });
    const now = r.vt.now();
    const good = signedData(r.signer.privateKey, { type: "peer_removed", id: "evt_x", payload: { peer_id: "n_peer456" }, issuedMs: now });
    const tampered = good.replace("n_peer456", "n_peer457");
    const other = generateKeyPairSync("ed25519").privateKey;
    const cases: [string, ReturnType<Journal["intake"]>][] = [
      ["bad_signature", r.journal.intake(msg(tampered, "1"))],
      ["bad_signature", r.journal.intake(msg(signedData(other, { type: "x", id: "e1", issuedMs: now }), "2"))],
      ["stale", r.journal.intake(msg(signedData(r.signer.privateKey, { type: "x", id: "e2", issuedMs: now - 5 * 60_000 - 1000 }), "3"))],
      ["future", r.journal.intake(msg(signedData(r.signer.privateKey, { type: "x", id: "e3", issuedMs: now + 5 * 60_000 + 1000 }), "4"))],
      ["malformed", r.journal.intake(msg('{"event_type":"x"}', "5"))],
      ["malformed", r.journal.intake(msg("not json", "6"))],
      ["oversize", r.journal.intake(oversize("7"))],
      ["oversize", r.journal.intake(msg("x".repeat((1 << 20) + 1), "8"))],
    ];
    expect(r.send({ type: "x", id: "e4" }).verdict).toBe("verified"); // fills the 1-entry store
    cases.push(["nonce_store_full", r.send({ type: "x", id: "e5" })]);
    for (const [reason, res] of cases) {
      expect(res.verdict).toBe("rejected");
      expect(res.reason).toBe(reason as never);
      expect(r.journal.row(res.seq)).toMatchObject({ verify: "rejected", status: "rejected", reject_reason: reason });
    }
    expect(r.journal.row(cases[4]![1].seq)!.event_type).toBe("x"); // partial fields kept
    expect(r.journal.row(cases[6]![1].seq)!.raw.length).toBe(0);
    expect(r.journal.stats().sse_rejected_total).toEqual({ bad_signature: 2, stale: 1, future: 1, malformed: 2, oversize: 2, nonce_store_full: 1 });
    expect(r.log.lines.filter((l) => l.msg === "security: event rejected")).toHaveLength(9);
    // Every one of them moved the Last-Event-ID (durably appended, whatever the outcome).
    expect(r.journal.lastEventId()).toBe("sse-2");
  });

  test("a nonce forgotten by memory but present in the journal is still a replay (unique index)", () => {
    const r = rig();
    r.send({ type: "x", id: "evt_a", nonce: "N9" });
    r.nonces.clear();
    const res = r.send({ type: "x", id: "evt_b", nonce: "N9" });
    expect(res).toMatchObject({ verdict: "rejected", reason: "replay" });
  });

  test("a mismatching SSE event: field is warned but routing uses the signed type", () => {
    const r = rig();
    const res = r.journal.intake(msg(signedData(r.signer.privateKey, { type: "peer_removed", id: "e", payload: { peer_id: "p" }, issuedMs: r.vt.now() }), "1", "policy_updated"));
    expect(res.verdict).toBe("verified");
    expect(r.log.lines.some((l) => l.level === "warn" && l.fields.sse_event === "policy_updated")).toBe(true);
  });
});

describe("Last-Event-ID", () => {
  test("events without id: do not move it; empty id: clears it; clearLastEventId forgets it", () => {
    const r = rig();
    r.send({ type: "x", id: "a" }, "10");
    r.journal.intake(msg(signedData(r.signer.privateKey, { type: "x", id: "b", issuedMs: r.vt.now() })));
    expect(r.journal.lastEventId()).toBe("10");
    r.send({ type: "x", id: "c" }, "");
    expect(r.journal.lastEventId()).toBeUndefined();
    r.send({ type: "x", id: "d" }, "11");
    r.journal.clearLastEventId();
    expect(r.journal.lastEventId()).toBeUndefined();
  });

  test("append and the Last-Event-ID advance are one transaction", () => {
    const r = rig();
    r.db.exec("DROP TABLE kv");
    expect(() => r.send({ type: "x", id: "a" }, "12")).toThrow();
    expect((r.db.query("SELECT COUNT(*) AS n FROM events").get() as { n: number }).n).toBe(0);
  });

  test("crash between append and verification: row exists, id advanced, verified and dispatched at start", async () => {
    const a = rig();
    const data = signedData(a.signer.privateKey, { type: "peer_removed", id: "evt_c", payload: { peer_id: "n_9" }, issuedMs: a.vt.now() });
    const seq = a.journal.append(msg(data, "77"));
    // "crash": the process dies here.
    expect(a.journal.row(seq)).toMatchObject({ verify: "unverified", status: "received" });
    expect(kvGet(a.db, LAST_EVENT_ID_KEY)).toBe("77");
    await a.vt.advance(60_000); // restart a minute later
    const b = rig({ from: a });
    const seen: string[] = [];
    const d = b.dispatcher({ peer_removed: async (env) => void seen.push(env.eventId) });
    d.start();
    await d.idle();
    expect(seen).toEqual(["evt_c"]);
    expect(b.journal.row(seq)).toMatchObject({ verify: "verified", status: "done", attempts: 1 });
    expect(b.journal.lastEventId()).toBe("77");
    await d.stop();
  });
});

describe("intakeBatch (group commit)", () => {
  test("one chunk: every row with its verdict, Last-Event-ID at the last id, later events see earlier ones", () => {
    const r = rig();
    const now = r.vt.now();
    const a = signedData(r.signer.privateKey, { type: "peer_added", id: "evt_a", payload: { id: "n_1" }, issuedMs: now, nonce: "NB1" });
    const b = signedData(r.signer.privateKey, { type: "x", id: "evt_b", issuedMs: now, nonce: "NB1" }); // nonce of a → replay
    const res = r.journal.intakeBatch([msg(a, "1"), msg(a, "2"), msg(b, "3"), msg("junk"), oversize("4")]);
    expect(res.map((x) => [x.verdict, x.reason])).toEqual([
      ["verified", undefined],
      ["duplicate", undefined],
      ["rejected", "replay"],
      ["rejected", "malformed"],
      ["rejected", "oversize"],
    ]);
    expect(res.map((x) => statusOf(r.db, x.seq))).toEqual(["pending", "duplicate", "rejected", "rejected", "rejected"]);
    expect(r.journal.row(res[0]!.seq)).toMatchObject({ ordering_key: "peer:n_1", attempts: 0 });
    expect(r.journal.lastEventId()).toBe("4");
    expect(r.journal.stats()).toEqual({ sse_rejected_total: { replay: 1, malformed: 1, oversize: 1 }, sse_duplicate_total: 1, sse_verified_total: 1 });
  });

  test("a batch that fails before the commit leaves no row, no Last-Event-ID and no nonce: re-delivery verifies", () => {
    const r = rig();
    r.send({ type: "x", id: "first" }, "1");
    const data = signedData(r.signer.privateKey, { type: "x", id: "evt_lost", issuedMs: r.vt.now(), nonce: "N-lost" });
    r.db.exec("ALTER TABLE kv RENAME TO kv_gone");
    expect(() => r.journal.intakeBatch([msg(data, "2")])).toThrow();
    expect((r.db.query("SELECT COUNT(*) AS n FROM events").get() as { n: number }).n).toBe(1);
    expect(r.nonces.has("N-lost", r.vt.now())).toBe(false);
    expect(r.journal.stats().sse_verified_total).toBe(1);
    r.db.exec("ALTER TABLE kv_gone RENAME TO kv");
    expect(r.journal.lastEventId()).toBe("1");
    expect(r.journal.intakeBatch([msg(data, "2")])[0]!.verdict).toBe("verified");
    expect(r.journal.lastEventId()).toBe("2");
  });

  test("an empty batch writes nothing", () => {
    const r = rig();
    expect(r.journal.intakeBatch([])).toEqual([]);
  });
});

describe("nonce seeding", () => {
  test("after a restart a replayed nonce is caught from the seeded store", async () => {
    const a = rig();
    a.send({ type: "x", id: "evt_1", nonce: "N-restart" });
    await a.vt.advance(30_000);
    const fresh = new NonceStore();
    const b = rig({ from: a, nonces: fresh });
    expect(b.journal.seedNonces()).toBe(1);
    expect(fresh.has("N-restart", b.vt.now())).toBe(true);
    const res = b.send({ type: "x", id: "evt_2", nonce: "N-restart" });
    expect(res).toMatchObject({ verdict: "rejected", reason: "replay" });
    expect(b.log.lines.find((l) => l.msg === "security: event rejected")!.fields.detail).toBe("nonce already used");
  });

  test("only nonces of verified events issued within 5 min are loaded", async () => {
    const a = rig();
    a.send({ type: "x", id: "old", nonce: "N-old" });
    await a.vt.advance(4 * 60_000);
    a.send({ type: "x", id: "new", nonce: "N-new" });
    a.journal.intake(msg('{"event_type":"x","nonce":"N-bad"}', "z"));
    await a.vt.advance(2 * 60_000);
    const fresh = new NonceStore();
    const b = rig({ from: a, nonces: fresh });
    expect(b.journal.seedNonces()).toBe(1);
    expect(fresh.has("N-new", b.vt.now())).toBe(true);
    expect(fresh.has("N-old", b.vt.now())).toBe(false);
  });
});

describe("options", () => {
  test("invalid options are refused with the option name", () => {
    const r = rig();
    expect(
      () => new Journal({ db: r.db, nodeId: () => "n", keys: () => r.signer.keys, nonces: new NonceStore(), log: r.log, options: { ...TEST_OPTIONS, retryMaxMs: 1 } }),
    ).toThrow(/retryMaxMs/);
  });
});
