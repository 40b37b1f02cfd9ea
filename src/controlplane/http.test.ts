import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HttpClient, MAX_JSON_BYTES } from "./http.ts";
import { cpPath, normaliseBaseUrl, segment } from "./url.ts";

type Seen = { method: string; url: string; headers: Headers; body: Uint8Array };
let seen: Seen[] = [];
let server: ReturnType<typeof Bun.serve>;
let base: string;

beforeAll(() => {
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    async fetch(req) {
      const url = new URL(req.url);
      seen.push({ method: req.method, url: req.url, headers: req.headers, body: new Uint8Array(await req.arrayBuffer()) });
      switch (url.pathname) {
        case "/v1/json":
          return Response.json({ hello: "world" });
        case "/v1/empty":
          return new Response(null, { status: 204 });
        case "/v1/gzip":
          return new Response(Bun.gzipSync(new TextEncoder().encode(JSON.stringify({ zipped: true }))), {
            headers: { "content-type": "application/json", "content-encoding": "gzip" },
          });
        case "/v1/bomb": // 11 MiB of spaces inside a JSON string, a few KB on the wire
          return new Response(Bun.gzipSync(new TextEncoder().encode(`"${" ".repeat(MAX_JSON_BYTES + 1024 * 1024)}"`)), {
            headers: { "content-type": "application/json", "content-encoding": "gzip" },
          });
        case "/v1/big-plain":
          return new Response(`"${"x".repeat(MAX_JSON_BYTES)}"`, { headers: { "content-type": "application/json" } });
        case "/v1/426":
          return Response.json({ error: "upgrade_required", min_version: "9.9.9", message: "too old" }, { status: 426 });
        case "/v1/429":
          return Response.json({ error: "rate_limited" }, { status: 429, headers: { "retry-after": "7" } });
        case "/v1/503-date":
          return new Response("busy", { status: 503, headers: { "retry-after": new Date(Date.now() + 120_000).toUTCString() } });
        case "/v1/big-error":
          return new Response("e".repeat(100_000), { status: 500 });
        case "/v1/slow":
          await Bun.sleep(1500);
          return Response.json({});
        case "/v1/skew":
          return new Response("{}", { headers: { date: new Date(Date.now() + 5 * 60_000).toUTCString() } });
        case "/v1/redirect":
          return new Response(null, { status: 302, headers: { location: "http://127.0.0.1:1/elsewhere" } });
        default:
          return Response.json({ error: "not_found" }, { status: 404 });
      }
    },
  });
  base = `http://127.0.0.1:${server.port}/`;
});

afterAll(() => {
  server.stop(true);
});

function client(extra: Partial<ConstructorParameters<typeof HttpClient>[0]> = {}) {
  return new HttpClient({ baseUrl: base, version: "1.2.3", auth: () => "nsk-1", ...extra });
}

describe("base URL and paths", () => {
  test("trailing slash trimmed; https required except loopback", () => {
    expect(normaliseBaseUrl("https://cp.example.com/api///")).toBe("https://cp.example.com/api");
    expect(normaliseBaseUrl("http://127.0.0.1:8080/")).toBe("http://127.0.0.1:8080");
    expect(normaliseBaseUrl("http://[::1]:8080")).toBe("http://[::1]:8080");
    expect(normaliseBaseUrl("http://localhost")).toBe("http://localhost");
    expect(() => normaliseBaseUrl("http://cp.example.com")).toThrow(/https/);
    expect(() => normaliseBaseUrl("ftp://127.0.0.1")).toThrow(/https/);
    expect(() => normaliseBaseUrl("https://user:pw@cp.example.com")).toThrow(/credentials/);
  });

  test("path parameters are one encoded segment; dot segments refused", () => {
    expect(cpPath`/v1/nodes/${"a/b c"}/secrets/${"k?#"}`).toBe("/v1/nodes/a%2Fb%20c/secrets/k%3F%23");
    expect(segment("n_123")).toBe("n_123");
    expect(() => segment("..")).toThrow();
    expect(() => segment("%2e")).toThrow();
    expect(() => segment("")).toThrow();
  });
});

describe("requests", () => {
  test("headers of protocol.md §1.1; bearer from the callback, re-read each call", async () => {
    seen = [];
    let nsk = "nsk-1";
    const c = client({ auth: () => nsk });
    const r1 = await c.request({ method: "GET", path: "/v1/json" });
    expect(r1.ok).toBe(true);
    if (r1.ok) expect(r1.body).toEqual({ hello: "world" });
    nsk = "nsk-2";
    await c.request({ method: "GET", path: "/v1/json" });
    const h = seen[0]!.headers;
    expect(h.get("user-agent")).toBe("plexd/1.2.3");
    expect(h.get("x-plexd-version")).toBe("1.2.3");
    expect(h.get("accept")).toBe("application/json");
    expect(h.get("accept-encoding")).toBe("gzip");
    expect(h.get("authorization")).toBe("Bearer nsk-1");
    expect(seen[1]!.headers.get("authorization")).toBe("Bearer nsk-2");
    for (const s of seen) expect(s.url).not.toContain("nsk");
  });

  test("small JSON body plain, > 1024 bytes gzip with Content-Encoding", async () => {
    seen = [];
    const c = client();
    await c.request({ method: "POST", path: "/v1/json", body: { json: { a: 1 } } });
    await c.request({ method: "POST", path: "/v1/json", body: { json: { big: "y".repeat(2000) } } });
    await c.request({ method: "POST", path: "/v1/json", body: { raw: "{}\n", contentType: "application/x-ndjson" }, gzip: "always" });
    expect(seen[0]!.headers.get("content-type")).toBe("application/json");
    expect(seen[0]!.headers.get("content-encoding")).toBeNull();
    expect(JSON.parse(new TextDecoder().decode(seen[0]!.body))).toEqual({ a: 1 });
    expect(seen[1]!.headers.get("content-encoding")).toBe("gzip");
    expect(JSON.parse(new TextDecoder().decode(Bun.gunzipSync(seen[1]!.body as Uint8Array<ArrayBuffer>))).big).toHaveLength(2000);
    expect(seen[2]!.headers.get("content-encoding")).toBe("gzip");
    expect(seen[2]!.headers.get("content-type")).toBe("application/x-ndjson");
    expect(new TextDecoder().decode(Bun.gunzipSync(seen[2]!.body as Uint8Array<ArrayBuffer>))).toBe("{}\n");
  });

  test("gzip response decoded; empty 2xx body is undefined", async () => {
    const c = client();
    const r = await c.request({ method: "GET", path: "/v1/gzip" });
    expect(r.ok && r.body).toEqual({ zipped: true });
    const e = await c.request({ method: "POST", path: "/v1/empty" });
    expect(e.ok).toBe(true);
    if (e.ok) {
      expect(e.status).toBe(204);
      expect(e.body).toBeUndefined();
    }
  });

  test("decompressed body over 10 MiB → too_large (transient, like 5xx)", async () => {
    const c = client();
    for (const path of ["/v1/bomb", "/v1/big-plain"]) {
      const r = await c.request({ method: "GET", path });
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.error.kind).toBe("too_large");
        expect(r.error.transient).toBe(true);
      }
    }
  });

  test("426 carries min_version", async () => {
    const r = await client().request({ method: "GET", path: "/v1/426" });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.kind).toBe("http");
      expect(r.error.status).toBe(426);
      expect(r.error.minVersion).toBe("9.9.9");
      expect(r.error.message).toContain("agent version 1.2.3 below min_version 9.9.9");
      expect(r.error.transient).toBe(false);
    }
  });

  test("Retry-After as seconds (429) and as HTTP-date (503)", async () => {
    const c = client();
    const a = await c.request({ method: "GET", path: "/v1/429" });
    expect(!a.ok && a.error.retryAfterMs).toBe(7000);
    const b = await c.request({ method: "GET", path: "/v1/503-date" });
    expect(b.ok).toBe(false);
    if (!b.ok) {
      expect(b.error.status).toBe(503);
      expect(b.error.retryAfterMs!).toBeGreaterThan(110_000);
      expect(b.error.retryAfterMs!).toBeLessThanOrEqual(121_000);
      expect(b.error.transient).toBe(true);
    }
  });

  test("error bodies are read at most 4096 bytes", async () => {
    const r = await client().request({ method: "GET", path: "/v1/big-error" });
    expect(!r.ok && r.error.bodySnippet?.length).toBe(4096);
    expect(!r.ok && r.error.status).toBe(500);
  });

  test("per-call timeout → timeout; caller abort → aborted", async () => {
    const c = client();
    const t0 = Date.now();
    const r = await c.request({ method: "GET", path: "/v1/slow", timeoutMs: 200 });
    expect(Date.now() - t0).toBeLessThan(1200);
    expect(!r.ok && r.error.kind).toBe("timeout");
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const a = await c.request({ method: "GET", path: "/v1/slow", signal: ac.signal });
    expect(!a.ok && a.error.kind).toBe("aborted");
  });

  test("connection refused → network", async () => {
    const c = new HttpClient({ baseUrl: "http://127.0.0.1:1" });
    const r = await c.request({ method: "GET", path: "/v1/ping" });
    expect(!r.ok && r.error.kind).toBe("network");
    expect(!r.ok && r.error.transient).toBe(true);
  });

  test("Date header skew > 60 s is reported", async () => {
    const reports: [number, boolean][] = [];
    const c = client({ onClockSkew: (s, skewed) => reports.push([s, skewed]) });
    await c.request({ method: "GET", path: "/v1/json" });
    await c.request({ method: "GET", path: "/v1/skew" });
    expect(reports[0]![1]).toBe(false);
    expect(reports[1]![1]).toBe(true);
    expect(reports[1]![0]).toBeGreaterThan(4 * 60_000);
  });

  test("redirects are not followed (bearer must not travel)", async () => {
    const r = await client().request({ method: "GET", path: "/v1/redirect" });
    expect(!r.ok && r.error.status).toBe(302);
  });
});

describe("TLS", () => {
  let dir: string;
  let tlsServer: ReturnType<typeof Bun.serve> | undefined;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "plexd-http-tls-"));
    const p = Bun.spawn(
      ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "key.pem", "-out", "cert.pem", "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
      { cwd: dir, stdout: "ignore", stderr: "ignore" },
    );
    if ((await p.exited) !== 0) return;
    tlsServer = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      tls: { cert: Bun.file(join(dir, "cert.pem")), key: Bun.file(join(dir, "key.pem")) },
      fetch: () => Response.json({ tls: true }),
    });
  });
  afterAll(() => {
    tlsServer?.stop(true);
    rmSync(dir, { recursive: true, force: true });
  });

  test("unknown CA → tls; ca_file → ok; insecure skip → ok", async () => {
    expect(tlsServer).toBeDefined();
    const url = `https://127.0.0.1:${tlsServer!.port}`;
    const bad = await new HttpClient({ baseUrl: url }).request({ method: "GET", path: "/v1/x" });
    expect(!bad.ok && bad.error.kind).toBe("tls");
    const good = await new HttpClient({ baseUrl: url, caFile: join(dir, "cert.pem") }).request({ method: "GET", path: "/v1/x" });
    expect(good.ok && good.body).toEqual({ tls: true });
    const insecure = await new HttpClient({ baseUrl: url, tlsInsecureSkipVerify: true }).request({ method: "GET", path: "/v1/x" });
    expect(insecure.ok).toBe(true);
  });
});
