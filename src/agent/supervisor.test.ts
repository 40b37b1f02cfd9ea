import { afterEach, beforeEach, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildConfig } from "../config/index.ts";
import { generateKeyPair } from "../identity/keys.ts";
import { FakeKernel } from "../kernel/fake.ts";
import { createLogger } from "../log/index.ts";
import { Supervisor } from "./supervisor.ts";

let dir: string;
let server: ReturnType<typeof Bun.serve>;
const calls: string[] = [];
const peer = { id: "n_peer", public_key: generateKeyPair().publicKey, mesh_ip: "10.100.0.9", endpoint: "192.0.2.9:51820", allowed_ips: ["10.100.0.9/32"], psk: "" };

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "plexd-sup-"));
  calls.length = 0;
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    fetch: async (req) => {
      const path = new URL(req.url).pathname;
      calls.push(`${req.method} ${path}`);
      if (path === "/v1/register")
        return Response.json(
          { node_id: "n_self", mesh_ip: "10.100.0.1", signing_public_key: "ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=", node_secret_key: "nsk-1", peers: [peer] },
          { status: 201 },
        );
      if (path.endsWith("/heartbeat")) return Response.json({});
      if (path.endsWith("/state")) return Response.json({ peers: [peer], policies: [] });
      if (path.endsWith("/drift")) return Response.json({});
      if (path.endsWith("/events")) {
        return new Response(new ReadableStream({ start: (c) => c.enqueue(new TextEncoder().encode(": connected\n\n")) }), { headers: { "content-type": "text/event-stream" } });
      }
      return Response.json({ error: "not_found" }, { status: 404 });
    },
  });
});
afterEach(async () => {
  await server.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

test("start order, register from token file, configure, connect; SIGTERM leaves the interface and exits 0", async () => {
  const tokenFile = join(dir, "token");
  writeFileSync(tokenFile, "plxb_test_token");
  const { config } = buildConfig({
    path: "/x",
    text: [
      `api: http://127.0.0.1:${server.port}`,
      `data_dir: ${join(dir, "data")}`,
      "mesh: {interface: plexdt0}",
      `token: {file: ${tokenFile}, metadata: false}`,
      "policy: {default: allow}",
      "nat_traversal: {enabled: false}",
      "shutdown: {drain_timeout: 1s}",
    ].join("\n"),
  });
  const lines: string[] = [];
  const log = createLogger({ level: "debug", format: "text", write: (l) => lines.push(l) });
  const kernel = new FakeKernel();
  const socket = join(dir, "plexd.sock");
  const sup = new Supervisor({ config, env: {}, log, socketPath: socket, loadAddon: () => null, createKernel: async () => kernel, binaryPath: tokenFile });
  const done = sup.run();
  const deadline = Date.now() + 10_000;
  while (!(sup.phase === "connected" && calls.some((c) => c.endsWith("/heartbeat")) && calls.some((c) => c.endsWith("/state"))) && Date.now() < deadline) await Bun.sleep(20);
  expect(sup.phase).toBe("connected");
  const phases = lines.filter((l) => l.includes(" phase ")).map((l) => / to=(\w+)/.exec(l)![1]);
  expect(phases).toEqual(["registering", "configuring", "nat_discovery", "connected"]);
  expect(existsSync(tokenFile)).toBe(false);
  expect(statSync(join(dir, "data/node_secret_key")).mode & 0o777).toBe(0o600);
  expect(calls[0]).toBe("POST /v1/register");
  const dev = await kernel.readDevice("plexdt0");
  expect(dev!.peers.map((p) => p.publicKey)).toEqual([peer.public_key]);
  expect(existsSync(socket)).toBe(true);
  const st = await sup.status();
  expect(st).toMatchObject({ node_id: "n_self", mesh_ip: "10.100.0.1", peers: { total: 1 } });

  sup.requestStop();
  expect(await done).toBe(0);
  const order = lines.map((l) => (l.includes("to=stopping") ? "stopping" : l.includes(" stopped ") ? "stopped" : "")).filter(Boolean);
  expect(order).toEqual(["stopping", "stopped"]);
  expect(kernel.closed).toBe(true);
  // Stop never tears the mesh down (lifecycle.md §14.1).
  expect(kernel.calls.filter((c) => c.startsWith("deleteInterface"))).toEqual([]);
  expect(existsSync(socket)).toBe(false);
}, 20_000);

test("restart with identity configures from cache before any CP call", async () => {
  const { config } = buildConfig({
    path: "/x",
    text: [`api: http://127.0.0.1:1`, `data_dir: ${join(dir, "data")}`, "mesh: {interface: plexdt0}", "token: {metadata: false}", "policy: {default: allow}", "nat_traversal: {enabled: false}", "shutdown: {drain_timeout: 1s}"].join("\n"),
  });
  // Identity + cache as a previous run left them.
  const { persistIdentity } = await import("../identity/index.ts");
  const k = generateKeyPair();
  persistIdentity(join(dir, "data"), { nodeId: "n_self", meshIp: "10.100.0.1", privateKey: k.privateKey, nodeSecretKey: "nsk", signingPublicKey: "ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=" });
  const { writePeersCache } = await import("../mesh/cache.ts");
  writePeersCache(join(dir, "data"), [peer]);
  const kernel = new FakeKernel();
  const sup = new Supervisor({ config, env: {}, log: createLogger({ write: () => {} }), socketPath: join(dir, "s.sock"), loadAddon: () => null, createKernel: async () => kernel, binaryPath: join(dir, "data/private_key") });
  const done = sup.run();
  const deadline = Date.now() + 5_000;
  while (sup.phase !== "connected" && Date.now() < deadline) await Bun.sleep(10);
  // CP at 127.0.0.1:1 is unreachable; the tunnel is there anyway.
  expect((await kernel.readDevice("plexdt0"))!.peers).toHaveLength(1);
  sup.requestStop();
  expect(await done).toBe(0);
}, 15_000);
