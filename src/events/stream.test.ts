import { afterEach, describe, expect, test } from "bun:test";
import type { SseMessage, SseOversize } from "./sse.ts";
import { EventStream, type EventStreamDeps, type StreamFailure, type StreamState } from "./stream.ts";
import { VirtualTime } from "./testing.ts";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const URL_ = "https://cp.example/v1/nodes/n1/events";

interface Call {
  headers: Headers;
  at: number;
  signal: AbortSignal;
}
type Handler = (call: Call) => Response | "hang" | Error;

/** A live SSE body the test writes to; errors out when the client aborts. */
function liveBody(call: Call, init: { status?: number; contentType?: string } = {}) {
  let ctrl!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({ start: (c) => void (ctrl = c) });
  call.signal.addEventListener("abort", () => {
    try {
      ctrl.error(new Error("aborted"));
    } catch {}
  });
  const response = new Response(body, {
    status: init.status ?? 200,
    headers: { "content-type": init.contentType ?? "text/event-stream; charset=utf-8" },
  });
  return {
    response,
    push: (s: string) => ctrl.enqueue(enc(s)),
    close: () => ctrl.close(),
  };
}

function setup(handlers: Handler[], over: Partial<EventStreamDeps> = {}) {
  const vt = new VirtualTime(1_700_000_000_000);
  const calls: Call[] = [];
  const events: (SseMessage | SseOversize)[] = [];
  const failures: { f: StreamFailure; at: number }[] = [];
  const states: StreamState[] = [];
  let connected = 0;
  let token = "nsk-1";
  let lastId: string | undefined;
  const fetchFn = (_url: string, init: RequestInit): Promise<Response> =>
    new Promise((resolve, reject) => {
      const call: Call = { headers: new Headers(init.headers), at: vt.now(), signal: init.signal! };
      calls.push(call);
      const h = handlers.shift() ?? (() => new Response("down", { status: 500 }));
      const r = h(call);
      if (r === "hang") {
        call.signal.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
      } else if (r instanceof Error) reject(r);
      else resolve(r);
    });
  const stream = new EventStream({
    url: () => URL_,
    token: () => token,
    lastEventId: () => lastId,
    version: "1.2.3",
    onEvent: (e) => {
      events.push(e);
      if (e.id !== undefined) lastId = e.id;
    },
    onConnected: () => connected++,
    onFailure: (f) => failures.push({ f, at: vt.now() }),
    onStateChange: (s) => states.push(s),
    fetch: fetchFn,
    now: vt.now,
    sleep: vt.sleep,
    random: () => 0.5, // jitter factor exactly 1
    ...over,
  });
  const running = stream.start();
  return {
    vt,
    calls,
    events,
    failures,
    states,
    stream,
    running,
    get connected() {
      return connected;
    },
    setToken: (t: string) => void (token = t),
    /** Delays between each failure and the following attempt. */
    delays: () => failures.slice(0, calls.length - 1).map((f, i) => calls[i + 1]!.at - f.at),
  };
}

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup) await c();
  cleanup = [];
});
function track<T extends { stream: EventStream }>(s: T): T {
  cleanup.push(() => s.stream.stop());
  return s;
}

describe("EventStream over a fake fetch (virtual time)", () => {
  test("request headers, events, onConnected, Last-Event-ID and a rotated bearer on reconnect", async () => {
    let first!: ReturnType<typeof liveBody>;
    const s = track(
      setup([
        (c) => (first = liveBody(c)).response,
        (c) => liveBody(c).response,
      ]),
    );
    await s.vt.settle();
    expect(s.stream.state).toBe("streaming");
    expect(s.connected).toBe(1);
    const h = s.calls[0]!.headers;
    expect(h.get("accept")).toBe("text/event-stream");
    expect(h.get("cache-control")).toBe("no-cache");
    expect(h.get("authorization")).toBe("Bearer nsk-1");
    expect(h.get("user-agent")).toBe("plexd/1.2.3");
    expect(h.get("x-plexd-version")).toBe("1.2.3");
    expect(h.get("accept-encoding")).toBe("gzip");
    expect(h.has("last-event-id")).toBe(false);

    first.push(": hi\n\nid: 41\nevent: peer_added\ndata: {\"x\":1}\n\ndata: no-id\n");
    first.push("\n");
    await s.vt.settle();
    expect(s.events.map((e) => (e.type === "event" ? [e.id, e.data] : e.type))).toEqual([
      ["41", '{"x":1}'],
      [undefined, "no-id"],
    ]);
    expect(s.stream.stats.lastConnectedAt).toBe(s.vt.now());

    s.setToken("nsk-2");
    first.close();
    await s.vt.advance(2_000);
    expect(s.calls).toHaveLength(2);
    expect(s.calls[1]!.headers.get("authorization")).toBe("Bearer nsk-2");
    expect(s.calls[1]!.headers.get("last-event-id")).toBe("41");
    expect(s.failures[0]!.f.kind).toBe("ended");
    expect(s.connected).toBe(2);
    expect(s.stream.stats.reconnectsTotal).toBe(1);
  });

  test("backoff 1 s ×2 capped at 60 s on repeated 5xx; error body capped at 4096 bytes", async () => {
    const big = "e".repeat(10_000);
    const handlers: Handler[] = Array.from({ length: 10 }, () => () => new Response(big, { status: 502 }));
    const s = track(setup(handlers));
    await s.vt.until(() => s.calls.length >= 10, 3_600_000, 500);
    expect(s.delays().slice(0, 9)).toEqual([1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
    const f = s.failures[0]!.f;
    expect(f.kind).toBe("http_error");
    if (f.kind === "http_error") expect(f.body.length).toBe(4096);
    expect(s.states).toContain("backoff");
  });

  test("jitter stays within ±25 %", async () => {
    let seed = 1;
    const s = track(
      setup(
        Array.from({ length: 8 }, () => () => new Response("", { status: 500 })),
        { random: () => ((seed = (seed * 48271) % 2147483647) / 2147483647) },
      ),
    );
    await s.vt.until(() => s.calls.length >= 8, 3_600_000, 250);
    s.delays().forEach((d, n) => {
      const nominal = Math.min(1000 * 2 ** n, 60_000);
      expect(d).toBeGreaterThanOrEqual(nominal * 0.75 - 1);
      expect(d).toBeLessThanOrEqual(nominal * 1.25 + 1);
    });
  });

  test("typed outcomes: 401, 403, 404, 426, 429 (Retry-After seconds), 503 (HTTP-date), wrong content type, network", async () => {
    const vtStart = 1_700_000_000_000;
    const httpDate = new Date(vtStart + 600_000).toUTCString(); // far enough to still be ahead
    const s = track(
      setup([
        () => new Response("no", { status: 401 }),
        () => new Response("{}", { status: 426 }),
        () => new Response("", { status: 429, headers: { "retry-after": "7" } }),
        () => new Response("", { status: 503, headers: { "retry-after": httpDate } }),
        () => new Response("{}", { status: 200, headers: { "content-type": "application/json" } }),
        () => new TypeError("connection refused"),
        () => new Response("", { status: 404 }),
        () => new Response("", { status: 403 }),
      ]),
    );
    await s.vt.until(() => s.calls.length >= 8, 7_200_000, 1000);
    expect(s.failures.slice(0, 8).map((f) => f.f.kind)).toEqual([
      "unauthorized",
      "upgrade_required",
      "rate_limited",
      "http_error",
      "bad_content_type",
      "network",
      "node_unknown",
      "node_unknown",
    ]);
    const d = s.delays();
    expect(d[2]).toBe(7000); // Retry-After: 7
    const f3 = s.failures[3]!;
    expect(d[3]).toBe(Math.min(vtStart + 600_000 - f3.at, 300_000)); // HTTP-date, capped at 5 min
    expect(d[6]).toBe(300_000); // node unknown: retry every 5 min
    expect(s.states).toContain("stopped");
  });

  test("idle timeout: no bytes for 90 s aborts and reconnects; bytes keep it alive", async () => {
    let live!: ReturnType<typeof liveBody>;
    const s = track(setup([(c) => (live = liveBody(c)).response, (c) => liveBody(c).response]));
    await s.vt.settle();
    for (let i = 0; i < 5; i++) {
      await s.vt.advance(60_000);
      live.push(": keepalive\n");
    }
    expect(s.calls).toHaveLength(1);
    await s.vt.advance(89_000);
    expect(s.calls).toHaveLength(1);
    await s.vt.advance(1_000);
    expect(s.failures.map((f) => f.f.kind)).toEqual(["idle_timeout"]);
    await s.vt.advance(1_000); // stable connection → backoff reset → 1 s base
    expect(s.calls).toHaveLength(2);
  });

  test("connect timeout when no response arrives within 10 s", async () => {
    const s = track(setup([() => "hang", (c) => liveBody(c).response]));
    await s.vt.advance(9_999);
    expect(s.failures).toHaveLength(0);
    await s.vt.advance(1);
    expect(s.failures[0]?.f.kind).toBe("connect_timeout");
  });

  test("retry: replaces the base; reset only after ≥1 byte and ≥30 s open", async () => {
    const bodies: ReturnType<typeof liveBody>[] = [];
    const handlers: Handler[] = Array.from({ length: 6 }, () => (c: Call) => {
      const b = liveBody(c);
      bodies.push(b);
      return b.response;
    });
    const s = track(setup(handlers));
    await s.vt.settle();
    // 1: short-lived with bytes → no reset; n=0 delay with base from retry: 5000.
    bodies[0]!.push("retry: 5000\n");
    await s.vt.advance(1000);
    bodies[0]!.close();
    await s.vt.until(() => s.calls.length === 2);
    // 2: short-lived again → n=1 → 10 s.
    bodies[1]!.push(": x\n");
    bodies[1]!.close();
    await s.vt.until(() => s.calls.length === 3);
    // 3: open 31 s with bytes → reset → n=0 → 5 s.
    bodies[2]!.push(": x\n");
    await s.vt.advance(31_000);
    bodies[2]!.close();
    await s.vt.until(() => s.calls.length === 4);
    // 4: open 40 s, zero bytes → no reset → n=1 → 10 s.
    await s.vt.advance(40_000);
    bodies[3]!.close();
    await s.vt.until(() => s.calls.length === 5);
    // 5: retry: 0 is floored at 100 ms (no tight loop); n=2 → 400 ms.
    bodies[4]!.push("retry: 0\n");
    bodies[4]!.close();
    await s.vt.until(() => s.calls.length === 6, 60_000, 10);
    expect(s.delays()).toEqual([5000, 10_000, 5000, 10_000, 400]);
  });

  test("polling fallback after 5 continuous minutes without a stream; a stream ends it", async () => {
    const pollsAt: number[] = [];
    const handlers: Handler[] = Array.from({ length: 14 }, () => () => new Response("", { status: 500 }));
    handlers.push((c) => liveBody(c).response);
    let vtNow = (): number => 0;
    const s = track(setup(handlers, { poll: async () => void pollsAt.push(vtNow()), timing: { pollIntervalMs: 60_000 } }));
    vtNow = s.vt.now;
    const start = s.vt.now();
    await s.vt.until(() => s.stream.state === "polling", 3_600_000, 1000);
    await s.vt.until(() => s.stream.state === "streaming", 3_600_000, 1000);
    // Entered only after 5 min of continuous failure, with an immediate first poll.
    expect(pollsAt[0]! - start).toBeGreaterThanOrEqual(300_000);
    const before = s.failures.filter((f) => f.at <= pollsAt[0]!);
    expect(before.at(-1)!.at).toBe(pollsAt[0]!);
    // Every poll is followed by one SSE attempt at once; polls are one interval apart.
    for (const p of pollsAt) expect(s.calls.filter((c) => c.at === p)).toHaveLength(p === pollsAt[0] ? 2 : 1);
    for (let i = 1; i < pollsAt.length; i++) expect(pollsAt[i]! - pollsAt[i - 1]!).toBe(60_000);
    const triggering = s.calls.findIndex((c) => c.at === pollsAt[0]);
    expect(pollsAt.length).toBe(s.calls.length - triggering - 1);
    expect(s.states).toContain("polling");
    expect(s.states.at(-1)).toBe("streaming");
  });

  test("a failing handler closes the connection (re-delivery via Last-Event-ID)", async () => {
    let live!: ReturnType<typeof liveBody>;
    const s = track(
      setup([(c) => (live = liveBody(c)).response, (c) => liveBody(c).response], {
        onEvent: () => {
          throw new Error("journal full");
        },
      }),
    );
    await s.vt.settle();
    live.push("id: 1\ndata: x\n\n");
    await s.vt.settle();
    expect(s.failures[0]?.f.kind).toBe("handler_error");
    await s.vt.advance(1000);
    expect(s.calls).toHaveLength(2);
  });

  test("throwing observers do not end the loop", async () => {
    const boom = (): never => {
      throw new Error("observer bug");
    };
    const s = track(
      setup([() => new Response("", { status: 500 }), (c) => liveBody(c).response], {
        onFailure: boom,
        onConnected: boom,
        onStateChange: boom,
      }),
    );
    await s.vt.advance(1000);
    expect(s.calls).toHaveLength(2);
    expect(s.stream.state).toBe("streaming");
  });

  test("oversize events reach the handler as markers", async () => {
    let live!: ReturnType<typeof liveBody>;
    const s = track(setup([(c) => (live = liveBody(c)).response], { maxEventBytes: 8 }));
    await s.vt.settle();
    live.push("id: 5\ndata: 0123456789\n\ndata: ok\n\n");
    await s.vt.settle();
    expect(s.events.map((e) => e.type)).toEqual(["oversize", "event"]);
  });

  test("stop() ends streaming and backoff promptly", async () => {
    const s = setup([(c) => liveBody(c).response]);
    await s.vt.settle();
    expect(s.stream.state).toBe("streaming");
    await s.stream.stop();
    await s.running;
    expect(s.stream.state).toBe("stopped");
    const t = setup([() => new Response("", { status: 500 })]);
    await t.vt.settle();
    expect(t.stream.state).toBe("backoff");
    await t.stream.stop();
    expect(t.stream.state).toBe("stopped");
    expect(t.vt.pending).toBe(0);
  });
});

describe("EventStream against a real Bun.serve SSE server on 127.0.0.1", () => {
  test("streams, reconnects with Last-Event-ID and the current bearer", async () => {
    const seen: { auth: string | null; last: string | null; accept: string | null; ua: string | null }[] = [];
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      idleTimeout: 0,
      fetch(req) {
        seen.push({
          auth: req.headers.get("authorization"),
          last: req.headers.get("last-event-id"),
          accept: req.headers.get("accept"),
          ua: req.headers.get("user-agent"),
        });
        const n = seen.length;
        const body = new ReadableStream<Uint8Array>({
          async start(c) {
            const e = new TextEncoder();
            c.enqueue(e.encode(`: welcome ${n}\n\n`));
            await Bun.sleep(5);
            c.enqueue(e.encode(`id: ${n}0\nevent: t\ndata: {"n":`));
            await Bun.sleep(5);
            c.enqueue(e.encode(`${n}}\r\n\r\n`));
            if (n === 1) c.close(); // first connection ends; the client must come back
          },
        });
        return new Response(body, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
      },
    });
    try {
      const got: string[] = [];
      let lastId: string | undefined;
      let token = "nsk-a";
      let connects = 0;
      const stream = new EventStream({
        url: () => `http://127.0.0.1:${server.port}/v1/nodes/n1/events`,
        token: () => token,
        lastEventId: () => lastId,
        version: "0.1.0",
        onEvent: (e) => {
          if (e.type === "event") got.push(e.data);
          if (e.id !== undefined) lastId = e.id;
          token = "nsk-b";
        },
        onConnected: () => connects++,
        timing: { backoffBaseMs: 20, backoffCapMs: 100 },
      });
      const done = stream.start();
      const deadline = Date.now() + 5000;
      while (got.length < 2 && Date.now() < deadline) await Bun.sleep(10);
      expect(stream.state).toBe("streaming");
      await stream.stop();
      await done;
      expect(got).toEqual(['{"n":1}', '{"n":2}']);
      expect(connects).toBe(2);
      expect(seen[0]).toEqual({ auth: "Bearer nsk-a", last: null, accept: "text/event-stream", ua: "plexd/0.1.0" });
      expect(seen[1]).toMatchObject({ auth: "Bearer nsk-b", last: "10" });
      expect(stream.stats.reconnectsTotal).toBe(1);
    } finally {
      server.stop(true);
    }
  });
});
