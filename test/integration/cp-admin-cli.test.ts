import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join, resolve } from "node:path";
import { writeFileSync } from "node:fs";
import { call, newPublicKey, startCp, type CpProc } from "./cp-harness.ts";

const ROOT = resolve(import.meta.dir, "../..");
let cp: CpProc;
beforeAll(async () => {
  cp = await startCp({ tls: true });
});
afterAll(async () => {
  await cp?.cleanup();
});

async function cli(...args: string[]): Promise<{ code: number; out: any; err: string }> {
  const p = Bun.spawn(
    [join(ROOT, "node_modules/.bin/bun"), join(ROOT, "src/cp/main.ts"), "admin", "--url", cp.url, "--token-file", join(cp.dir, "admin-token"), "--ca-file", cp.caFile as string, ...args],
    { stdout: "pipe", stderr: "pipe", cwd: ROOT },
  );
  const [code, out, err] = await Promise.all([p.exited, new Response(p.stdout).text(), new Response(p.stderr).text()]);
  let parsed: any;
  try {
    parsed = JSON.parse(out);
  } catch {
    parsed = out;
  }
  return { code, out: parsed, err };
}

describe("plexd-cp admin", () => {
  test("full round: token, register, nodes, policy, action, metadata, data, secret, keys, signing, artifact, events", async () => {
    const t = await cli("token", "create", "--ttl", "5m");
    expect(t.code).toBe(0);
    expect(t.out.token).toStartWith("plxb_");
    const reg = await call(cp, "POST", "/v1/register", { token: t.out.token, body: { token: t.out.token, public_key: newPublicKey(), hostname: "cli-node" } });
    expect(reg.status).toBe(201);
    const id = reg.json.node_id as string;

    expect((await cli("nodes", "list")).out.nodes.map((n: any) => n.id)).toContain(id);
    const pol = join(cp.dir, "policy.json");
    writeFileSync(pol, JSON.stringify({ policies: [{ id: "p", rules: [{ src: "*", dst: "*", port: 22, protocol: "tcp", action: "allow" }] }] }));
    expect((await cli("policy", "set", pol)).code).toBe(0);
    const act = await cli("action", "send", id, "service.restart", "--param", "unit=x.service", "--param", "force=true");
    expect(act.out.execution_id).toStartWith("exec_");
    expect((await cli("metadata", "set", id, "role=web", "zone=eu")).out.metadata).toEqual({ role: "web", zone: "eu" });
    expect((await cli("data", "set", id, "cfg", '{"a":1}')).out.version).toBe(1);
    expect((await cli("secret", "set", id, "pw", "hunter2")).out).toEqual({ key: "pw", version: 1 });
    expect((await cli("keys", "rotate", id)).code).toBe(0);
    const sig = await cli("signing", "rotate", "--transition", "2h");
    expect(sig.out.previous).toBe(reg.json.signing_public_key);
    const file = join(cp.dir, "bin");
    writeFileSync(file, "binary-bytes");
    const art = await cli("artifact", "upload", "2.0.0", "arm64", file);
    expect(art.out.sha256).toMatch(/^sha256:[0-9a-f]{64}$/);
    const evs = await cli("events", id);
    const types = evs.out.events.map((e: any) => e.event_type);
    for (const want of ["policy_updated", "action_request", "node_state_updated", "node_secrets_updated", "rotate_keys", "signing_key_rotated"]) {
      expect(types).toContain(want);
    }
    const ar = evs.out.events.find((e: any) => e.event_type === "action_request");
    expect(JSON.parse(ar.data).payload.parameters).toEqual({ unit: "x.service", force: "true" });
    expect((await cli("nodes", "remove", id)).out.removed).toBe(true);
  });

  test("errors: unknown node exits 1, usage error exits 2, wrong token exits 1", async () => {
    expect((await cli("nodes", "remove", "n_nope")).code).toBe(1);
    expect((await cli("frobnicate")).code).toBe(2);
    const bad = join(cp.dir, "bad-token");
    writeFileSync(bad, "wrong-token-wrong-token");
    const p = Bun.spawn([join(ROOT, "node_modules/.bin/bun"), join(ROOT, "src/cp/main.ts"), "admin", "--url", cp.url, "--token-file", bad, "--ca-file", cp.caFile as string, "nodes", "list"], { stdout: "pipe", stderr: "pipe" });
    expect(await p.exited).toBe(1);
  });
});
