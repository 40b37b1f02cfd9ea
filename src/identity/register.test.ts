import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CpApi } from "../controlplane/api.ts";
import { HttpClient } from "../controlplane/http.ts";
import type { CapabilitiesPayload } from "../controlplane/types.ts";
import { createLogger } from "../log/index.ts";
import { loadIdentity } from "./files.ts";
import { generateKeyPair } from "./keys.ts";
import { RegistrationError, register, type RegisterOptions } from "./register.ts";

const SK = "ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=";
const PEER_KEY = "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=";
const caps: CapabilitiesPayload = { binary: { version: "1.2.3", checksum: "sha256:" + "0".repeat(64) }, builtin_actions: [], hooks: [] };
const okBody = {
  node_id: "n_0001",
  mesh_ip: "10.100.0.9",
  signing_public_key: SK,
  node_secret_key: "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=",
  peers: [
    { id: "n_0002", public_key: PEER_KEY, mesh_ip: "10.100.0.2", allowed_ips: ["10.100.0.2/32"], endpoint: "192.0.2.1:51820" },
    { id: "n_evil", public_key: PEER_KEY, mesh_ip: "10.100.0.3", allowed_ips: ["0.0.0.0/0"] },
  ],
  unknown_field: true,
};

let server: ReturnType<typeof Bun.serve>;
let root: string;
let dir: string;
let requests: { headers: Headers; url: string; body: Record<string, unknown> }[] = [];
/** Responses for successive requests; the last one repeats. */
let script: (() => Response | Promise<Response>)[] = [];
let lines: string[] = [];

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "plexd-register-test-"));
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    async fetch(req) {
      const raw = new Uint8Array(await req.arrayBuffer());
      const text = new TextDecoder().decode(req.headers.get("content-encoding") === "gzip" ? Bun.gunzipSync(raw) : raw);
      requests.push({ headers: req.headers, url: req.url, body: JSON.parse(text) });
      const next = script.length > 1 ? script.shift()! : script[0]!;
      return next();
    },
  });
});
afterAll(() => {
  server.stop(true);
  rmSync(root, { recursive: true, force: true });
});
beforeEach(() => {
  dir = mkdtempSync(join(root, "data-"));
  requests = [];
  lines = [];
  script = [() => Response.json(okBody, { status: 201 })];
});

function opts(extra: Partial<RegisterOptions> = {}): RegisterOptions {
  const http = new HttpClient({ baseUrl: `http://127.0.0.1:${server.port}`, requestTimeoutMs: 300 });
  let t = 0;
  return {
    dataDir: dir,
    api: new CpApi({ http }),
    token: { token: "plxb_token-1", source: "env" },
    capabilities: caps,
    host: { hostname: "kernel-host", arch: "amd64", kernel: "6.1.0-test" },
    logger: createLogger({ write: (l) => lines.push(l), format: "text", level: "debug" }),
    retry: { now: () => t, sleep: async (ms) => void (t += ms), random: () => 0.5 },
    ...extra,
  };
}

async function failure(p: Promise<unknown>): Promise<RegistrationError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(RegistrationError);
    return e as RegistrationError;
  }
  throw new Error("expected a RegistrationError");
}

describe("register", () => {
  test("success: body, bearer, persisted identity, filtered peers, token file deleted", async () => {
    const tokenFile = join(root, "bootstrap-token");
    writeFileSync(tokenFile, "plxb_token-1\n");
    const r = await register(
      opts({ token: { token: "plxb_token-1", source: "file", path: tokenFile }, metadata: { arch: "override", rack: "r1" }, natFallback: "relay" }),
    );
    expect(requests).toHaveLength(1);
    const req = requests[0]!;
    expect(new URL(req.url).pathname).toBe("/v1/register");
    expect(req.url).not.toContain("plxb_");
    expect(req.headers.get("authorization")).toBe("Bearer plxb_token-1");
    expect(req.body.token).toBe("plxb_token-1");
    expect(req.body.hostname).toBe("kernel-host");
    expect(req.body.metadata).toEqual({ os: "linux", arch: "override", kernel: "6.1.0-test", nat_fallback: "relay", rack: "r1" });
    expect(req.body.capabilities).toEqual(caps);
    expect(req.body.public_key).toBe(r.identity.publicKey);

    expect(r.identity.nodeId).toBe("n_0001");
    expect(r.peers.map((p) => p.id)).toEqual(["n_0002"]);
    expect(r.rejectedPeers.map((p) => p.id)).toEqual(["n_evil"]);
    expect(r.tokenFileDeleted).toBe(true);
    expect(existsSync(tokenFile)).toBe(false);
    const loaded = loadIdentity(dir);
    expect(loaded.registered && loaded.identity).toEqual(r.identity);
    expect(lines.join("\n")).not.toContain("plxb_token-1");
  });

  test("config hostname wins; re-registration reuses the existing key", async () => {
    const kp = generateKeyPair();
    const r = await register(opts({ hostname: "configured", reusePrivateKey: kp.privateKey }));
    expect(requests[0]!.body.hostname).toBe("configured");
    expect(requests[0]!.body.public_key).toBe(kp.publicKey);
    expect(r.identity.privateKey).toBe(kp.privateKey);
    expect(readFileSync(join(dir, "private_key"), "utf8")).toBe(kp.privateKey);
  });

  test("invalid token fails without contacting the CP", async () => {
    const e = await failure(register(opts({ token: { token: "bad\u0001", source: "env" } })));
    expect(e.code).toBe("invalid_token");
    expect(e.exitCode).toBe(1);
    expect(requests).toHaveLength(0);
  });

  test.each([
    [400, "invalid_payload", "invalid registration payload: bad body"],
    [401, "token_rejected", "bootstrap token invalid, expired or already used"],
    [403, "forbidden", "forbidden"],
    [404, "not_found", "not found"],
    [409, "hostname_conflict", "hostname already registered in tenant"],
  ] as const)("%d → exit 1 %s, no retry, nothing persisted", async (status, code, msg) => {
    script = [() => Response.json({ error: "x", message: "bad body" }, { status })];
    const e = await failure(register(opts()));
    expect(e.code).toBe(code);
    expect(e.message).toContain(msg);
    expect(e.exitCode).toBe(1);
    expect(requests).toHaveLength(1);
    expect(existsSync(join(dir, "identity.json"))).toBe(false);
    expect(existsSync(join(dir, "private_key"))).toBe(false);
  });

  test("426 → exit 1 with min_version", async () => {
    script = [() => Response.json({ error: "upgrade_required", min_version: "2.0.0", message: "old" }, { status: 426 })];
    const e = await failure(register(opts()));
    expect(e.code).toBe("upgrade_required");
    expect(e.minVersion).toBe("2.0.0");
    expect(e.message).toContain("2.0.0");
  });

  test("timeout, then 401 → token possibly consumed", async () => {
    script = [
      async () => {
        await Bun.sleep(800); // client gives up at 300 ms
        return Response.json(okBody, { status: 201 });
      },
      () => Response.json({ error: "unauthorized", message: "token already used" }, { status: 401 }),
    ];
    const e = await failure(register(opts()));
    expect(e.code).toBe("token_possibly_consumed");
    expect(e.message).toBe("bootstrap token possibly consumed by an earlier attempt; registration outcome unknown");
    expect(e.exitCode).toBe(1);
    expect(requests).toHaveLength(2);
  });

  test("5xx/429 retried, then success", async () => {
    script = [
      () => new Response("", { status: 503 }),
      () => new Response("", { status: 429, headers: { "retry-after": "3" } }),
      () => Response.json(okBody, { status: 201 }),
    ];
    const r = await register(opts());
    expect(r.identity.meshIp).toBe("10.100.0.9");
    expect(requests).toHaveLength(3);
    // every attempt sends the same key and token
    expect(new Set(requests.map((q) => q.body.public_key)).size).toBe(1);
  });

  test("CP unreachable for the whole budget → exit 69", async () => {
    const http = new HttpClient({ baseUrl: "http://127.0.0.1:1" });
    const e = await failure(register(opts({ api: new CpApi({ http }), maxRetryDurationMs: 20_000 })));
    expect(e.code).toBe("unreachable");
    expect(e.exitCode).toBe(69);
  });

  test.each([
    ["mesh_ip outside the range", { ...okBody, mesh_ip: "10.99.0.1" }],
    ["mesh_ip broadcast", { ...okBody, mesh_ip: "10.100.255.255" }],
    ["missing node_secret_key", { ...okBody, node_secret_key: undefined }],
    ["bad signing key", { ...okBody, signing_public_key: "abc" }],
    ["not JSON", "oops"],
  ])("invalid response (%s) → exit 1, nothing persisted, token file kept", async (_n, body) => {
    const tokenFile = join(root, "kept-token");
    writeFileSync(tokenFile, "plxb_token-1");
    script = [() => (typeof body === "string" ? new Response(body, { status: 201 }) : Response.json(body, { status: 201 }))];
    const e = await failure(register(opts({ token: { token: "plxb_token-1", source: "file", path: tokenFile } })));
    expect(e.code).toBe("invalid_response");
    expect(e.exitCode).toBe(1);
    expect(requests).toHaveLength(1);
    expect(existsSync(join(dir, "identity.json"))).toBe(false);
    expect(existsSync(join(dir, "private_key"))).toBe(false);
    expect(existsSync(tokenFile)).toBe(true);
  });

  test("token file that cannot be deleted → warn, registration still succeeds", async () => {
    const r = await register(opts({ token: { token: "plxb_token-1", source: "explicit_file", path: join(root, "gone", "token") } }));
    expect(r.tokenFileDeleted).toBe(false);
    expect(lines.some((l) => l.includes("warn") && l.includes("could not delete"))).toBe(true);
  });
});
