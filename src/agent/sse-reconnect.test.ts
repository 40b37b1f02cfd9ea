/**
 * lifecycle.md §9.1: every SSE (re)connect triggers a reconcile cycle ("sse_connected"), so
 * whatever happened while the stream was down is fetched with GET /state. The supervisor runs
 * on the fake kernel against a loopback CP whose event stream the test ends on demand; the
 * reconcile interval is an hour, so no periodic cycle can stand in for the triggered one.
 */
import { afterEach, beforeEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildConfig } from "../config/index.ts";
import { generateKeyPair } from "../identity/keys.ts";
import { FakeKernel } from "../kernel/fake.ts";
import { createLogger } from "../log/index.ts";
import { Supervisor } from "./supervisor.ts";

const SIGN = "ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=";
const peer = { id: "n_peer", public_key: generateKeyPair().publicKey, mesh_ip: "10.100.0.9", endpoint: "192.0.2.9:51820", allowed_ips: ["10.100.0.9/32"], psk: "" };

let dir: string;
let server: ReturnType<typeof Bun.serve>;
/** Every request in order, with the time it arrived. */
let calls: Array<{ at: number; call: string }>;
/** Open event streams, oldest first; closing one ends that SSE connection cleanly. */
let streams: Array<ReadableStreamDefaultController<Uint8Array>>;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "plexd-ssere-"));
  calls = [];
  streams = [];
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    fetch: (req) => {
      const path = new URL(req.url).pathname;
      calls.push({ at: Date.now(), call: `${req.method} ${path}` });
      if (path === "/v1/register")
        return Response.json({ node_id: "n_self", mesh_ip: "10.100.0.1", signing_public_key: SIGN, node_secret_key: "nsk-1", peers: [peer] }, { status: 201 });
      if (path.endsWith("/heartbeat") || path.endsWith("/drift") || path.endsWith("/capabilities")) return Response.json({});
      if (path.endsWith("/state")) return Response.json({ peers: [peer], policies: [] });
      if (path.endsWith("/events")) {
        const body = new ReadableStream<Uint8Array>({
          start: (c) => {
            streams.push(c);
            c.enqueue(new TextEncoder().encode(": connected\n\n"));
          },
        });
        return new Response(body, { headers: { "content-type": "text/event-stream" } });
      }
      return Response.json({ error: "not_found" }, { status: 404 });
    },
  });
});
afterEach(async () => {
  for (const c of streams) {
    try {
      c.close();
    } catch {
      // already closed
    }
  }
  await server.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

async function until(what: string, fn: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (fn()) return;
    await Bun.sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

const count = (suffix: string, after = 0) => calls.filter((c) => c.at >= after && c.call.endsWith(suffix)).length;

test("an SSE reconnect triggers a reconcile cycle (sse_connected → GET /state)", async () => {
  writeFileSync(join(dir, "token"), "plxb_test_token");
  const { config } = buildConfig({
    path: "/x",
    text: [
      `api: http://127.0.0.1:${server.port}`,
      `data_dir: ${join(dir, "data")}`,
      "mesh: {interface: plexdt0}",
      `token: {file: ${join(dir, "token")}, metadata: false}`,
      "policy: {default: allow}",
      "nat_traversal: {enabled: false}",
      "reconcile: {interval: 1h}",
      "shutdown: {drain_timeout: 1s}",
    ].join("\n"),
  });
  const sup = new Supervisor({
    config,
    env: {},
    log: createLogger({ write: () => {} }),
    socketPath: join(dir, "plexd.sock"),
    loadAddon: () => null,
    createKernel: async () => new FakeKernel(),
    binaryPath: join(dir, "token.bin"),
    firewallTarget: () => null,
    firewalld: null,
    systemctl: null,
  });
  writeFileSync(join(dir, "token.bin"), "plexd v1");
  const done = sup.run();
  try {
    await until("connected with a reconciler", () => sup.phase === "connected" && sup.reconciler !== undefined);
    // Record the reason of every cycle from here on (the scheduler calls reconciler.cycle).
    const reasons: Array<{ at: number; reason: string }> = [];
    const r = sup.reconciler!;
    const cycle = r.cycle.bind(r);
    r.cycle = (reason: string) => {
      reasons.push({ at: Date.now(), reason });
      return cycle(reason);
    };

    // First connection: its own sse_connected cycle comes ≥ 2 s after the startup cycle.
    await until("first event stream", () => streams.length === 1);
    await until("first sse_connected cycle", () => reasons.some((x) => x.reason === "sse_connected"), 8_000);
    await sup.scheduler!.idle();
    await Bun.sleep(300);
    expect(streams).toHaveLength(1);

    // The CP ends the stream; the agent reconnects after its backoff (~1 s) …
    const cutAt = Date.now();
    const statesBefore = count("/state");
    streams[0]!.close();
    await until("second event stream", () => streams.length === 2, 8_000);
    const reconnectAt = calls.filter((c) => c.call.endsWith("/events")).at(-1)!.at;
    expect(reconnectAt).toBeGreaterThanOrEqual(cutAt);

    // … and that reconnect, not a timer, brings a reconcile with GET /state.
    await until("sse_connected cycle after the reconnect", () => reasons.some((x) => x.reason === "sse_connected" && x.at >= reconnectAt), 8_000);
    await until("GET /state after the reconnect", () => count("/state", reconnectAt) > 0, 8_000);
    expect(count("/state")).toBeGreaterThan(statesBefore);
    expect(reasons.filter((x) => x.at >= cutAt).map((x) => x.reason)).toEqual(["sse_connected"]);
  } finally {
    sup.requestStop();
    expect(await done).toBe(0);
  }
}, 30_000);
