import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SseClient, admin, call, registerNode, startCp, type CpProc, type TestNode } from "./cp-harness.ts";

let cp: CpProc;
let n: TestNode;
beforeAll(async () => {
  cp = await startCp({ faults: true, extra: ["--sse-keepalive", "100ms"] });
  n = await registerNode(cp);
});
afterAll(async () => {
  await cp?.cleanup();
});

const send = (type: string, payload: unknown = {}) =>
  admin(cp, "POST", `/admin/nodes/${n.node_id}/events`, { event_type: type, payload_text: JSON.stringify(payload) });
const logged = async () => (await admin(cp, "GET", `/admin/nodes/${n.node_id}/events`)).json.events as { event_id: string; event_type: string; data: string }[];

describe("SSE stream", () => {
  test("content type, keepalive comments, id/event/data framing", async () => {
    const res = await fetch(`${cp.url}/v1/nodes/${n.node_id}/events`, { headers: { authorization: `Bearer ${n.nsk}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("text/event-stream");
    await res.body?.cancel();
    const s = await SseClient.open(cp, n.node_id, n.nsk);
    await s.until((c) => c.comments >= 3, 3000);
    await send("live_one", { x: "<&>" });
    await s.until((c) => c.events.some((e) => e.event === "live_one"));
    const ev = s.events.find((e) => e.event === "live_one")!;
    const env = JSON.parse(ev.data);
    expect(ev.id).toBe(env.event_id);
    expect(env.event_type).toBe("live_one");
    expect(ev.data).toBe((await logged()).find((e) => e.event_id === ev.id)!.data);
    s.close();
  });

  test("401/404/403 statuses", async () => {
    expect((await SseClient.open(cp, n.node_id, "wrong")).status).toBe(401);
    expect((await SseClient.open(cp, "n_nope", n.nsk)).status).toBe(404);
  });

  test("Last-Event-ID replays exactly what was missed, ids increase", async () => {
    const s1 = await SseClient.open(cp, n.node_id, n.nsk);
    const all = (await logged()).length;
    await s1.waitCount(all);
    await send("r1");
    await send("r2");
    await s1.waitCount(all + 2);
    const lastSeen = s1.events.at(-1)!.id!;
    s1.close();
    await send("m1", { missed: 1 });
    await send("m2", { missed: 2 });
    const s2 = await SseClient.open(cp, n.node_id, n.nsk, lastSeen);
    await s2.waitCount(2);
    await Bun.sleep(200);
    expect(s2.events.map((e) => e.event)).toEqual(["m1", "m2"]);
    expect(s2.events[0]!.id! > lastSeen).toBe(true);
    expect(s2.events[1]!.id! > s2.events[0]!.id!).toBe(true);
    // Without Last-Event-ID everything is replayed, byte-identical to the log.
    const s3 = await SseClient.open(cp, n.node_id, n.nsk);
    const log = await logged();
    await s3.waitCount(log.length);
    expect(s3.events.map((e) => e.data)).toEqual(log.map((e) => e.data));
    s2.close();
    s3.close();
  });

  test("CP restart in the middle of a stream loses nothing", async () => {
    const s1 = await SseClient.open(cp, n.node_id, n.nsk);
    const before = (await logged()).length;
    await s1.waitCount(before);
    await send("pre1");
    await s1.until((c) => c.events.at(-1)?.event === "pre1");
    const lastSeen = s1.events.at(-1)!.id!;
    // Sent while the client is still connected but about to lose the stream.
    s1.close();
    await send("pre2", { n: 2 });
    await send("pre3", { n: 3 });
    const preLog = await logged();
    await cp.restart();
    const s2 = await SseClient.open(cp, n.node_id, n.nsk, lastSeen);
    await s2.waitCount(2);
    expect(s2.events.map((e) => e.event)).toEqual(["pre2", "pre3"]);
    expect(s2.events.map((e) => e.data)).toEqual(preLog.slice(-2).map((e) => e.data));
    await send("post1");
    await s2.waitCount(3);
    expect(s2.events[2]!.event).toBe("post1");
    expect(s2.events[2]!.id! > s2.events[1]!.id!).toBe(true);
    // The NSK and node survived too.
    expect((await call(cp, "GET", `/v1/nodes/${n.node_id}/state`, { token: n.nsk })).status).toBe(200);
    s2.close();
  });

  test("a live stream is cut when the CP stops, and resumes after restart", async () => {
    const s = await SseClient.open(cp, n.node_id, n.nsk);
    await s.waitCount((await logged()).length);
    const last = s.events.at(-1)!.id!;
    await cp.kill();
    await s.until((c) => c.closed, 5000);
    await cp.restart();
    await send("after_kill");
    const s2 = await SseClient.open(cp, n.node_id, n.nsk, last);
    await s2.waitCount(1);
    expect(s2.events.map((e) => e.event)).toEqual(["after_kill"]);
    s2.close();
  });
});

describe("fault injection", () => {
  test("drop closes the stream; stall stops every byte until resumed", async () => {
    const s = await SseClient.open(cp, n.node_id, n.nsk);
    await s.until((c) => c.comments >= 1);
    expect((await admin(cp, "POST", `/admin/nodes/${n.node_id}/faults/sse`, { mode: "drop" })).json.dropped).toBeGreaterThanOrEqual(1);
    await s.until((c) => c.closed);

    const t = await SseClient.open(cp, n.node_id, n.nsk, (await logged()).at(-1)!.event_id);
    await t.until((c) => c.comments >= 1);
    await admin(cp, "POST", `/admin/nodes/${n.node_id}/faults/sse`, { mode: "stall", ms: 60_000 });
    await Bun.sleep(50);
    const c0 = t.comments;
    await send("during_stall");
    await Bun.sleep(400);
    expect(t.comments).toBe(c0);
    expect(t.events.length).toBe(0);
    await admin(cp, "POST", `/admin/nodes/${n.node_id}/faults/sse`, { mode: "resume" });
    await t.waitCount(1);
    expect(t.events[0]!.event).toBe("during_stall");
    t.close();
  });

  test("HTTP faults: 429 + Retry-After, 500, 401 for N matching requests; latency", async () => {
    await admin(cp, "POST", "/admin/faults/http", { pattern: "/heartbeat$", status: 429, count: 2, retry_after: 7 });
    const hb = { node_id: n.node_id, timestamp: new Date().toISOString(), status: "healthy", uptime: "1s", binary_checksum: "x", mesh: { interface: "plexd0", peer_count: 0, listen_port: 1 } };
    const r1 = await call(cp, "POST", `/v1/nodes/${n.node_id}/heartbeat`, { token: n.nsk, body: hb });
    expect(r1.status).toBe(429);
    expect(r1.headers.get("retry-after")).toBe("7");
    expect((await call(cp, "POST", `/v1/nodes/${n.node_id}/heartbeat`, { token: n.nsk, body: hb })).status).toBe(429);
    expect((await call(cp, "POST", `/v1/nodes/${n.node_id}/heartbeat`, { token: n.nsk, body: hb })).status).toBe(200);
    await admin(cp, "POST", "/admin/faults/http", { pattern: "/state$", status: 500 });
    await admin(cp, "POST", "/admin/faults/http", { pattern: "/events$", status: 401 });
    expect((await call(cp, "GET", `/v1/nodes/${n.node_id}/state`, { token: n.nsk })).status).toBe(500);
    expect((await call(cp, "GET", `/v1/nodes/${n.node_id}/state`, { token: n.nsk })).status).toBe(200);
    expect((await SseClient.open(cp, n.node_id, n.nsk)).status).toBe(401);
    await admin(cp, "POST", "/admin/faults/latency", { pattern: "/v1/ping", ms: 300, count: 1 });
    const t0 = Date.now();
    await call(cp, "GET", "/v1/ping", { token: n.nsk });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    const t1 = Date.now();
    await call(cp, "GET", "/v1/ping", { token: n.nsk });
    expect(Date.now() - t1).toBeLessThan(250);
    // Admin paths are never affected.
    await admin(cp, "POST", "/admin/faults/http", { pattern: ".*", status: 500, count: 1 });
    expect((await admin(cp, "GET", "/admin/faults")).status).toBe(200);
    expect((await admin(cp, "DELETE", "/admin/faults")).status).toBe(200);
  });

  test("bad events: forged, stale, replayed, malformed, oversized", async () => {
    const last = (await logged()).at(-1)!.event_id;
    const s = await SseClient.open(cp, n.node_id, n.nsk, last);
    await send("good_one");
    for (const kind of ["forged", "stale", "replayed", "malformed", "oversized"]) {
      expect((await admin(cp, "POST", `/admin/nodes/${n.node_id}/faults/event`, { kind })).status).toBe(201);
    }
    await s.waitCount(6, 10_000);
    const [good, forged, stale, replayed, malformed, oversized] = s.events.map((e) => e.data);
    const g = JSON.parse(good!);
    const f = JSON.parse(forged!);
    expect(f.signature).toHaveLength(88);
    expect(Date.now() - Date.parse(JSON.parse(stale!).issued_at)).toBeGreaterThan(9 * 60_000);
    const r = JSON.parse(replayed!);
    expect(r.nonce).toBe(JSON.parse(stale!).nonce);
    expect(r.event_id).not.toBe(JSON.parse(stale!).event_id);
    expect(() => JSON.parse(malformed!)).toThrow();
    expect(oversized!.length).toBeGreaterThan(1024 * 1024);
    expect(g.event_type).toBe("good_one");
    s.close();
  });

  test("fault endpoints are 404 without --faults", async () => {
    const plain = await startCp();
    try {
      expect((await admin(plain, "GET", "/admin/faults")).status).toBe(404);
    } finally {
      await plain.cleanup();
    }
  });
});
