/**
 * Registration against the REAL reference control plane process (src/cp/main.ts), through the
 * agent's own client stack: HttpClient → CpApi → register() → identity files.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CpApi } from "../../src/controlplane/api.ts";
import { HttpClient } from "../../src/controlplane/http.ts";
import type { CapabilitiesPayload } from "../../src/controlplane/types.ts";
import { IdentityFiles, loadIdentity } from "../../src/identity/files.ts";
import { RegistrationError, register } from "../../src/identity/register.ts";
import { resolveToken } from "../../src/identity/token.ts";
import { createLogger } from "../../src/log/index.ts";
import { admin, startCp, type CpProc } from "./cp-harness.ts";

const RUN = Math.random().toString(36).slice(2, 8);
let cp: CpProc;
let tlsCp: CpProc | undefined;
let tmp: string;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), `plexd-register-cp-${RUN}-`));
  cp = await startCp();
});
afterAll(async () => {
  await cp?.cleanup(); // SIGTERM by PID, then SIGKILL; removes the CP temp dir
  await tlsCp?.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

// > 1024 bytes once serialised, so the register body goes out gzip-compressed.
const capabilities: CapabilitiesPayload = {
  binary: { version: "0.1.0", checksum: "sha256:" + "ab".repeat(32) },
  builtin_actions: Array.from({ length: 11 }, (_, i) => ({
    name: `builtin.action_${i}`,
    description: "a built-in action with a reasonably long description text",
    parameters: [{ name: "p", type: "string" as const, required: false, description: "parameter" }],
  })),
  hooks: [],
};

async function newToken(target: CpProc = cp): Promise<string> {
  const r = await admin(target, "POST", "/admin/tokens", { ttl: "10m" });
  expect(r.status).toBe(201);
  return r.json.token as string;
}

function client(nsk: () => string | undefined = () => undefined, target: CpProc = cp) {
  const http = new HttpClient({ baseUrl: target.url, auth: nsk, ...(target.caFile ? { caFile: target.caFile } : {}) });
  return new CpApi({ http });
}

const lines: string[] = [];
const logger = createLogger({ write: (l) => lines.push(l), format: "text", level: "debug" });
const quickRetry = { sleep: async () => {} };

describe("registration against the reference CP", () => {
  let dataDir: string;
  let token: string;
  let tokenFile: string;

  test("registers from a token file, persists the identity, deletes the file; the NSK works", async () => {
    dataDir = join(tmp, "node-a");
    token = await newToken();
    tokenFile = join(tmp, "bootstrap-token");
    writeFileSync(tokenFile, token + "\n");
    const resolved = await resolveToken({ file: tokenFile, envName: "PLEXD_TEST_UNSET_" + RUN, env: {} });
    expect(resolved?.source).toBe("file");

    const reg = await register({
      dataDir,
      api: client(),
      token: resolved!,
      capabilities,
      hostname: `reg-a-${RUN}`,
      metadata: { rack: "r1" },
      natFallback: "relay",
      logger,
      retry: quickRetry,
    });
    expect(reg.identity.nodeId).toMatch(/^n_[0-9a-f]{16}$/);
    expect(reg.identity.meshIp).toMatch(/^10\.100\.\d+\.\d+$/);
    expect(reg.tokenFileDeleted).toBe(true);
    expect(existsSync(tokenFile)).toBe(false);

    for (const f of Object.values(IdentityFiles)) expect(statSync(join(dataDir, f)).mode & 0o777).toBe(0o600);
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    expect(JSON.parse(readFileSync(join(dataDir, "identity.json"), "utf8"))).toEqual({
      node_id: reg.identity.nodeId,
      mesh_ip: reg.identity.meshIp,
      signing_public_key: reg.identity.signingPublicKey,
    });
    expect(readFileSync(join(dataDir, "node_secret_key"), "utf8")).toBe(reg.identity.nodeSecretKey);
    const loaded = loadIdentity(dataDir);
    expect(loaded.registered && loaded.identity).toEqual(reg.identity);

    // The CP stored what we sent.
    const shown = await admin(cp, "GET", `/admin/nodes/${reg.identity.nodeId}`);
    expect(shown.status).toBe(200);
    expect(JSON.stringify(shown.json)).toContain(reg.identity.publicKey);
    expect(JSON.stringify(shown.json)).toContain(`reg-a-${RUN}`);

    // Bearer := NSK: node-scoped calls succeed with it.
    const api = client(() => reg.identity.nodeSecretKey);
    const state = await api.getState(reg.identity.nodeId);
    expect(state.ok).toBe(true);
    const hb = await api.heartbeat(reg.identity.nodeId, {
      node_id: reg.identity.nodeId,
      timestamp: new Date().toISOString(),
      status: "healthy",
      uptime: "1s",
      binary_checksum: capabilities.binary.checksum,
      mesh: { interface: "plexd0", peer_count: 0, listen_port: 51820 },
    });
    expect(hb.ok).toBe(true);
    expect(lines.join("\n")).not.toContain(token);
    expect(lines.join("\n")).not.toContain(reg.identity.nodeSecretKey);
  });

  test("a second use of the same token is rejected: exit 1, nothing persisted", async () => {
    const dir2 = join(tmp, "node-b");
    let err: unknown;
    try {
      await register({ dataDir: dir2, api: client(), token: { token, source: "env" }, capabilities, hostname: `reg-b-${RUN}`, logger, retry: quickRetry });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RegistrationError);
    const e = err as RegistrationError;
    expect(e.code).toBe("token_rejected");
    expect(e.status).toBe(401);
    expect(e.exitCode).toBe(1);
    expect(e.message).toBe("bootstrap token invalid, expired or already used");
    expect(existsSync(join(dir2, "identity.json"))).toBe(false);
    expect(existsSync(join(dir2, "private_key"))).toBe(false);
  });

  test("hostname held by another key → 409 hostname_conflict", async () => {
    const dir3 = join(tmp, "node-c");
    const e = await register({ dataDir: dir3, api: client(), token: { token: await newToken(), source: "env" }, capabilities, hostname: `reg-a-${RUN}`, retry: quickRetry }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RegistrationError);
    expect((e as RegistrationError).code).toBe("hostname_conflict");
    expect((e as RegistrationError).exitCode).toBe(1);
  });

  test("re-registration with the existing key keeps node id and mesh IP, replaces the NSK", async () => {
    const before = loadIdentity(dataDir);
    if (!before.registered) throw new Error("identity missing");
    const again = await register({
      dataDir,
      api: client(),
      token: { token: await newToken(), source: "explicit" },
      capabilities,
      hostname: `reg-a-${RUN}`,
      reusePrivateKey: before.identity.privateKey,
      retry: quickRetry,
    });
    expect(again.identity.nodeId).toBe(before.identity.nodeId);
    expect(again.identity.meshIp).toBe(before.identity.meshIp);
    expect(again.identity.publicKey).toBe(before.identity.publicKey);
    expect(again.identity.nodeSecretKey).not.toBe(before.identity.nodeSecretKey);
    // The old NSK stops working, the new one works.
    expect((await client(() => before.identity.nodeSecretKey).getState(again.identity.nodeId)).ok).toBe(false);
    expect((await client(() => again.identity.nodeSecretKey).getState(again.identity.nodeId)).ok).toBe(true);
  });

  test("over TLS with api.ca_file", async () => {
    tlsCp = await startCp({ tls: true });
    expect(tlsCp.url.startsWith("https://")).toBe(true);
    const reg = await register({
      dataDir: join(tmp, "node-tls"),
      api: client(undefined, tlsCp),
      token: { token: await newToken(tlsCp), source: "env" },
      capabilities,
      hostname: `reg-tls-${RUN}`,
      retry: quickRetry,
    });
    expect(reg.identity.nodeId).toMatch(/^n_/);
  });
});
