/**
 * Capabilities against the REAL reference CP (src/cp/main.ts on loopback): the supervisor (fake
 * kernel, in-process) scans its hooks, registers with them in the body, and a hook changed while
 * the agent was down reaches the CP by `PUT …/capabilities` on the next start. Checked from the
 * CP's side through the admin API (`plexd-cp admin nodes show`).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildConfig } from "../../src/config/index.ts";
import { FakeKernel } from "../../src/kernel/fake.ts";
import { createLogger } from "../../src/log/index.ts";
import { Supervisor } from "../../src/agent/supervisor.ts";
import { admin, startCp, type CpProc } from "./cp-harness.ts";

const RUN = Math.random().toString(36).slice(2, 8);
let cp: CpProc;
let tmp: string;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), `plexd-caps-${RUN}-`));
  cp = await startCp();
});
afterAll(async () => {
  await cp?.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const v = await fn();
    if (v) return v;
    await Bun.sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

test("registration carries the hooks; a changed hook is PUT on the next start; the CP stores both", async () => {
  const hooksDir = join(tmp, "hooks.d");
  mkdirSync(hooksDir, { mode: 0o755 });
  chmodSync(hooksDir, 0o755);
  const hook = join(hooksDir, "backup.sh");
  writeFileSync(hook, "#!/bin/sh\necho one\n");
  chmodSync(hook, 0o755);
  const tokenFile = join(tmp, "token");
  const t = await admin(cp, "POST", "/admin/tokens", { ttl: "10m" });
  expect(t.status).toBe(201);
  writeFileSync(tokenFile, t.json.token);
  writeFileSync(join(tmp, "binary"), "plexd build");
  const { config } = buildConfig({
    path: "/x",
    text: [
      `api: ${cp.url}`,
      `data_dir: ${join(tmp, "data")}`,
      `hostname: caps-${RUN}`,
      `mesh: {interface: plexdc${RUN.slice(0, 4)}}`,
      `token: {file: ${tokenFile}, metadata: false}`,
      "nat_traversal: {enabled: false}",
      "shutdown: {drain_timeout: 1s}",
      `hooks: {dir: ${hooksDir}, definitions: [{name: backup, path: backup.sh, description: "nightly", sandbox: none, parameters: [{name: target, type: string, required: true, description: where}]}]}`,
    ].join("\n"),
  });
  const run = () => {
    const sup = new Supervisor({
      config,
      env: {},
      log: createLogger({ level: "warn", format: "text", write: () => {} }),
      socketPath: join(tmp, "plexd.sock"),
      loadAddon: () => null,
      createKernel: async () => new FakeKernel(),
      binaryPath: join(tmp, "binary"),
      firewallTarget: () => null,
      firewalld: null,
      systemctl: null,
      hookOwnerUid: process.getuid!(),
    });
    return { sup, done: sup.run() };
  };

  const a = run();
  await until("connected", async () => a.sup.phase === "connected");
  const nodeId = a.sup.ctx.identity.nodeId;
  const shown = await admin(cp, "GET", `/admin/nodes/${nodeId}`);
  expect(shown.status).toBe(200);
  const caps = shown.json.capabilities;
  expect(caps.binary.checksum).toBe(`sha256:${sha("plexd build")}`);
  expect(caps.builtin_actions).toHaveLength(11);
  expect(caps.hooks).toEqual([
    {
      name: "backup",
      description: "nightly",
      source: "script",
      checksum: `sha256:${sha("#!/bin/sh\necho one\n")}`,
      parameters: [{ name: "target", type: "string", required: true, description: "where" }],
      timeout: "30s",
      sandbox: "none",
    },
  ]);
  a.sup.requestStop();
  expect(await a.done).toBe(0);

  writeFileSync(hook, "#!/bin/sh\necho two\n");
  const b = run();
  const updated = await until("new checksum at the CP", async () => {
    const r = await admin(cp, "GET", `/admin/nodes/${nodeId}`);
    const h = r.json?.capabilities?.hooks?.[0];
    return h?.checksum === `sha256:${sha("#!/bin/sh\necho two\n")}` ? r.json.capabilities : undefined;
  });
  expect(updated.hooks).toHaveLength(1);
  const rows = b.sup.db!.query("SELECT kind, status FROM outbox WHERE kind = 'capabilities'").all();
  await until("outbox delivered", async () => b.sup.db!.query("SELECT status FROM outbox WHERE kind = 'capabilities' AND status = 'delivered'").get() !== null);
  expect(rows.length).toBe(1);
  b.sup.requestStop();
  expect(await b.done).toBe(0);
}, 60_000);
