import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../log/index.ts";
import { CpApi, newBatchId } from "./api.ts";
import { HttpClient } from "./http.ts";

type Seen = { method: string; path: string; rawPath: string; headers: Headers; body: Uint8Array };
let seen: Seen[] = [];
/** path → handler override for the next requests. */
const routes = new Map<string, (req: Request) => Response | Promise<Response>>();
let server: ReturnType<typeof Bun.serve>;
let dir: string;
const ARTIFACT = new Uint8Array(300_000).map((_, i) => i % 251);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "plexd-api-test-"));
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const rawPath = req.url.slice(req.url.indexOf("/", 8));
      seen.push({ method: req.method, path: url.pathname, rawPath, headers: req.headers, body: new Uint8Array(await req.clone().arrayBuffer()) });
      const h = routes.get(`${req.method} ${url.pathname}`);
      if (h) return h(req);
      return Response.json({ error: "not_found" }, { status: 404 });
    },
  });
});
afterAll(() => {
  server.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

function api(profile: "standard" | "legacy" = "standard", log: string[] = []) {
  const http = new HttpClient({ baseUrl: `http://127.0.0.1:${server.port}`, auth: () => "the-nsk" });
  return new CpApi({ http, profile, logger: createLogger({ write: (l) => log.push(l), format: "text" }) });
}
const bodyText = (s: Seen) =>
  new TextDecoder().decode(s.headers.get("content-encoding") === "gzip" ? Bun.gunzipSync(s.body as Uint8Array<ArrayBuffer>) : s.body);

describe("CpApi", () => {
  test("heartbeat: directives, missing/non-JSON/garbage = none; 10 s default timeout path", async () => {
    const a = api();
    const hb = { node_id: "n_1", timestamp: "2025-01-01T00:00:00.000Z", status: "healthy" as const, uptime: "1s", binary_checksum: "sha256:00", mesh: { interface: "plexd0", peer_count: 0, listen_port: 51820 } };
    for (const [resp, want] of [
      [() => Response.json({ reconcile: true }), { reconcile: true, rotate_keys: false }],
      [() => new Response("ok"), { reconcile: false, rotate_keys: false }],
      [() => new Response(null, { status: 204 }), { reconcile: false, rotate_keys: false }],
      [() => Response.json({ reconcile: "yes" }), { reconcile: false, rotate_keys: false }],
      [() => Response.json({ rotate_keys: true, reconcile: null, future: [1] }), { reconcile: false, rotate_keys: true }],
    ] as const) {
      routes.set("POST /v1/nodes/n_1/heartbeat", resp);
      const r = await a.heartbeat("n_1", hb);
      expect(r.ok && r.value).toEqual(want);
    }
    routes.set("POST /v1/nodes/n_1/heartbeat", () => new Response("", { status: 401 }));
    const r = await a.heartbeat("n_1", hb);
    expect(!r.ok && r.error.status).toBe(401);
  });

  test("deregister: 401/404 = already deregistered", async () => {
    const a = api();
    routes.set("POST /v1/nodes/n_1/deregister", () => new Response(null, { status: 204 }));
    expect(await a.deregister("n_1")).toEqual({ ok: true, status: 204, value: { alreadyDeregistered: false } });
    routes.set("POST /v1/nodes/n_1/deregister", () => new Response(null, { status: 404 }));
    expect(await a.deregister("n_1")).toEqual({ ok: true, status: 404, value: { alreadyDeregistered: true } });
    routes.set("POST /v1/nodes/n_1/deregister", () => new Response(null, { status: 401 }));
    expect((await a.deregister("n_1")).ok).toBe(true);
    routes.set("POST /v1/nodes/n_1/deregister", () => new Response(null, { status: 500 }));
    expect((await a.deregister("n_1")).ok).toBe(false);
  });

  test("ack/result: 409 counts as delivered; path params encoded", async () => {
    const a = api();
    seen = [];
    routes.set("POST /v1/nodes/n_1/executions/e%2F1/ack", () => new Response(null, { status: 409 }));
    const r = await a.ack("n_1", "e/1", { execution_id: "e/1", status: "accepted", reason: "" });
    expect(r).toEqual({ ok: true, status: 409, value: { conflict: true } });
    expect(seen[0]!.rawPath).toBe("/v1/nodes/n_1/executions/e%2F1/ack");
    // report keeps 409 as an error (per-entry conflict resolution is the caller's)
    routes.set("POST /v1/nodes/n_1/report", () => Response.json({ error: "conflict", conflicts: [] }, { status: 409 }));
    const rep = await a.postReport("n_1", { entries: [], deleted: [] });
    expect(!rep.ok && rep.error.status).toBe(409);
  });

  test("telemetry: always gzip, batch id header, NDJSON vs JSON array by profile", async () => {
    routes.set("POST /v1/nodes/n_1/logs", () => Response.json({ accepted: 2 }, { status: 202 }));
    routes.set("POST /v1/nodes/n_1/metrics", () => Response.json({ accepted: 1 }, { status: 202 }));
    const line = { timestamp: "t", source: "journal", unit: "u", message: "m", severity: "info", hostname: "h" };
    const id = newBatchId();
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    seen = [];
    expect((await api("standard").postLogs("n_1", [line, line], id)).ok).toBe(true);
    expect((await api("standard").postLogs("n_1", [line, line], id)).ok).toBe(true); // retry: same id
    expect((await api("legacy").postLogs("n_1", [line], id)).ok).toBe(true);
    expect((await api().postMetrics("n_1", [{ timestamp: "t", group: "g", data: {} }], id)).ok).toBe(true);
    for (const s of seen) {
      expect(s.headers.get("content-encoding")).toBe("gzip");
      expect(s.headers.get("x-plexd-batch-id")).toBe(id);
    }
    expect(seen[0]!.headers.get("content-type")).toBe("application/x-ndjson");
    expect(bodyText(seen[0]!)).toBe(JSON.stringify(line) + "\n" + JSON.stringify(line) + "\n");
    expect(seen[2]!.headers.get("content-type")).toBe("application/json");
    expect(JSON.parse(bodyText(seen[2]!))).toEqual([line]);
    expect(seen[3]!.headers.get("content-type")).toBe("application/json");
    expect(JSON.parse(bodyText(seen[3]!))).toHaveLength(1);
  });

  test("auxiliary endpoints tolerate 404 (logged once); ping: any HTTP answer proves reachability", async () => {
    const log: string[] = [];
    const a = api("standard", log);
    routes.delete("POST /v1/nodes/n_1/tunnels/s1/ready");
    const body = { listen_addr: "10.100.0.1:2222", timestamp: "t" };
    expect(await a.tunnelReady("n_1", "s1", body)).toEqual({ ok: true, status: 404, value: { supported: false } });
    expect(await a.tunnelReady("n_1", "s1", body)).toEqual({ ok: true, status: 404, value: { supported: false } });
    expect(log.filter((l) => l.includes("tunnel_ready"))).toHaveLength(1);
    routes.set("POST /v1/nodes/n_1/integrity/violations", () => new Response(null, { status: 202 }));
    const iv = await a.postIntegrityViolation("n_1", { type: "binary", path: "/x", expected_checksum: "a", actual_checksum: "b", detail: "", timestamp: "t" });
    expect(iv.ok && iv.value.supported).toBe(true);
    routes.set("POST /v1/nodes/n_1/tunnels/s1/closed", () => new Response(null, { status: 500 }));
    expect((await a.tunnelClosed("n_1", "s1", { reason: "revoked", duration: "1s", timestamp: "t" })).ok).toBe(false);
    routes.set("GET /v1/ping", () => new Response(null, { status: 401 }));
    expect(await a.ping()).toEqual({ ok: true, status: 401, value: { httpStatus: 401 } });
  });

  test("state and rotate responses validated; invalid → invalid_response", async () => {
    const K = "ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=";
    const a = api();
    routes.set("GET /v1/nodes/n_1/state", () =>
      Response.json({ peers: [{ peer_id: "n_2", public_key: K, mesh_ip: "10.100.0.2", allowed_ips: ["10.100.0.2/32"] }], policies: null, data: [], secret_refs: [] }),
    );
    const s = await a.getState("n_1");
    expect(s.ok && s.value.peers.peers[0]!.id).toBe("n_2");
    routes.set("GET /v1/nodes/n_1/state", () => Response.json({ peers: [], policies: [{ id: "p", rules: [{ src: "*", dst: "*", action: "explode" }] }] }));
    const bad = await a.getState("n_1");
    expect(!bad.ok && bad.error.kind).toBe("invalid_response");
    routes.set("POST /v1/keys/rotate", () => Response.json({ updated_peers: null, node_secret_key: "new-nsk" }));
    const rot = await a.rotateKeys({ node_id: "n_1", new_public_key: K });
    expect(rot.ok && rot.value).toEqual({ updated_peers: { peers: [], rejected: [] }, node_secret_key: "new-nsk" });
    routes.set("GET /v1/nodes/n_1/secrets/a%2Fb", () => Response.json({ key: "a/b", ciphertext: "AA==", nonce: "AA==", version: 3 }));
    const sec = await a.getSecret("n_1", "a/b");
    expect(sec.ok && sec.value.version).toBe(3);
    routes.set("PUT /v1/nodes/n_1/endpoint", () => Response.json({ peer_endpoints: [{ peer_id: "n_2", endpoint: "1.2.3.4:5" }] }));
    const ep = await a.putEndpoint("n_1", { public_endpoint: "5.6.7.8:51820", nat_type: "full_cone" });
    expect(ep.ok && ep.value.peer_endpoints).toEqual([{ peer_id: "n_2", endpoint: "1.2.3.4:5" }]);
  });

  test("artifact: streamed to a 0600 file with SHA-256 and signature header", async () => {
    routes.set("GET /v1/artifacts/plexd/1.2.3/linux/amd64", () => new Response(ARTIFACT, { headers: { "x-plexd-artifact-signature": "c2ln" } }));
    const dest = join(dir, "plexd.new");
    const r = await api().downloadArtifact({ version: "1.2.3", os: "linux", arch: "amd64", destPath: dest });
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.value.size).toBe(ARTIFACT.length);
      expect(r.value.sha256).toBe(new Bun.CryptoHasher("sha256").update(ARTIFACT).digest("hex"));
      expect(r.value.signature).toBe("c2ln");
    }
    expect(new Uint8Array(readFileSync(dest))).toEqual(ARTIFACT);
    expect(statSync(dest).mode & 0o777).toBe(0o600);
  });

  test("artifact: over the size cap or stalled → error and no partial file", async () => {
    const dest = join(dir, "plexd.partial");
    const big = await api().downloadArtifact({ version: "1.2.3", os: "linux", arch: "amd64", destPath: dest, maxBytes: 1000 });
    expect(!big.ok && big.error.kind).toBe("too_large");
    expect(existsSync(dest)).toBe(false);

    // No Content-Length (streamed): the cap is enforced while reading.
    routes.set("GET /v1/artifacts/plexd/2.0.0/linux/arm64", () => new Response(new Blob([ARTIFACT]).stream()));
    const chunked = await api().downloadArtifact({ version: "2.0.0", os: "linux", arch: "arm64", destPath: dest, maxBytes: 100_000 });
    expect(!chunked.ok && chunked.error.kind).toBe("too_large");
    expect(existsSync(dest)).toBe(false);

    routes.set("GET /v1/artifacts/plexd/9.9.9/linux/amd64", () => {
      const stream = new ReadableStream<Uint8Array>({
        async start(c) {
          c.enqueue(new Uint8Array(1000));
          await Bun.sleep(2000); // then silence
          c.close();
        },
      });
      return new Response(stream);
    });
    const t0 = Date.now();
    const stalled = await api().downloadArtifact({ version: "9.9.9", os: "linux", arch: "amd64", destPath: dest, stallTimeoutMs: 300 });
    expect(Date.now() - t0).toBeLessThan(1800);
    expect(!stalled.ok && stalled.error.kind).toBe("timeout");
    expect(!stalled.ok && stalled.error.message).toContain("stalled");
    expect(existsSync(dest)).toBe(false);

    const missing = await api().downloadArtifact({ version: "0.0.1", os: "linux", arch: "amd64", destPath: dest });
    expect(!missing.ok && missing.error.status).toBe(404);
  });
});
