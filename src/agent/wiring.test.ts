/**
 * The supervisor's wiring of policy enforcement, NAT discovery, the outbox, the watchdog, reload
 * and purge — on the fake kernel, the fake nftables target and a scripted STUN transport, with
 * a fake CP on loopback.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildConfig, type Config } from "../config/index.ts";
import type { Policy } from "../controlplane/schemas.ts";
import { generateKeyPair } from "../identity/keys.ts";
import { FakeKernel } from "../kernel/fake.ts";
import { createLogger, nullLogger } from "../log/index.ts";
import { MeshController } from "../mesh/controller.ts";
import { FakeClock, FakeTransport, txidOf } from "../nat/fake-transport.test-util.ts";
import { encodeBindingSuccess } from "../nat/stun-codec.ts";
import { FakeFirewall, FakeNftError } from "../policy/fake-target.ts";
import { callDaemon } from "./control-socket-client.ts";
import { AgentFirewall } from "./firewall.ts";
import { createHandlers } from "./handlers.ts";
import { NodeStateStore } from "./node-state.ts";
import { Reconciler } from "./reconcile.ts";
import { SigningKeyStore } from "./signing.ts";
import { Supervisor, type SupervisorOptions } from "./supervisor.ts";
import { fakeApi, fakeIdentity } from "./testing.ts";

const SIGN = "ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=";
const peer = { id: "n_peer", public_key: generateKeyPair().publicKey, mesh_ip: "10.100.0.9", endpoint: "192.0.2.9:51820", allowed_ips: ["10.100.0.9/32"], psk: "" };
const sshPolicy: Policy = { id: "pol_ssh", rules: [{ src: "n_peer", dst: "n_self", port: 22, protocol: "tcp", action: "allow" }] };

let dir: string;
let server: ReturnType<typeof Bun.serve>;
let cp: {
  calls: string[];
  heartbeats: any[];
  endpoints: any[];
  drift: any[];
  violations: any[];
  registrations: any[];
  capabilities: any[];
  policies: Policy[];
  peerEndpoints: Array<{ peer_id: string; endpoint: string }>;
};

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "plexd-wiring-"));
  cp = { calls: [], heartbeats: [], endpoints: [], drift: [], violations: [], registrations: [], capabilities: [], policies: [], peerEndpoints: [] };
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    fetch: async (req) => {
      const path = new URL(req.url).pathname;
      cp.calls.push(`${req.method} ${path}`);
      // Bodies over 1 KiB arrive gzip-compressed (protocol.md §1).
      const raw = req.method === "GET" ? undefined : new Uint8Array(await req.arrayBuffer());
      const text = raw && (req.headers.get("content-encoding") === "gzip" ? Bun.gunzipSync(raw) : raw);
      let body: any;
      try {
        body = text && text.length > 0 ? JSON.parse(new TextDecoder().decode(text)) : undefined;
      } catch {
        body = undefined;
      }
      if (path === "/v1/register") cp.registrations.push(body);
      if (path.endsWith("/capabilities") && req.method === "PUT") {
        cp.capabilities.push(body);
        return Response.json({});
      }
      if (path === "/v1/register")
        return Response.json({ node_id: "n_self", mesh_ip: "10.100.0.1", signing_public_key: SIGN, node_secret_key: "nsk-1", peers: [peer] }, { status: 201 });
      if (path.endsWith("/heartbeat")) {
        cp.heartbeats.push(body);
        return Response.json({});
      }
      if (path.endsWith("/state")) {
        // A consistent CP: the peer's endpoint in the state is the one PUT /endpoint hands out.
        const ep = cp.peerEndpoints.find((e) => e.peer_id === peer.id)?.endpoint ?? peer.endpoint;
        return Response.json({ peers: [{ ...peer, endpoint: ep }], policies: cp.policies });
      }
      if (path.endsWith("/drift")) {
        cp.drift.push(body);
        return Response.json({});
      }
      if (path.endsWith("/endpoint")) {
        cp.endpoints.push(body);
        return Response.json({ peer_endpoints: cp.peerEndpoints });
      }
      if (path.endsWith("/integrity/violations")) {
        cp.violations.push(body);
        return Response.json({}, { status: 202 });
      }
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

/** A config; each extra line `key: value` replaces the default line of that top-level key. */
function config(extra: string[] = []): Config {
  const lines = new Map<string, string>([
    ["api", `api: http://127.0.0.1:${server?.port ?? 1}`],
    ["data_dir", `data_dir: ${join(dir, "data")}`],
    ["mesh", "mesh: {interface: plexdt0, listen_port: 51820}"],
    ["token", `token: {file: ${join(dir, "token")}, metadata: false}`],
    ["policy", "policy: {default: allow}"],
    ["nat_traversal", "nat_traversal: {enabled: false}"],
    ["heartbeat", "heartbeat: {interval: 5s}"],
    ["shutdown", "shutdown: {drain_timeout: 1s}"],
  ]);
  for (const l of extra) lines.set(l.slice(0, l.indexOf(":")), l);
  return buildConfig({ path: "/x", text: [...lines.values()].join("\n") }).config;
}

/** STUN that answers with one fixed mapping from every server (a full-cone NAT). */
function stunAnswering(mapping: [string, number] | null) {
  const clock = new FakeClock();
  return {
    localAddresses: () => new Set(["192.168.1.2"]),
    openTransport: async () => ({
      transport: new FakeTransport(clock, (s) =>
        mapping ? [{ delayMs: 5, d: { srcIp: s.dstIp, srcPort: s.dstPort, payload: encodeBindingSuccess(txidOf(s), mapping[0], mapping[1]) } }] : [],
      ),
    }),
  };
}

interface Started {
  sup: Supervisor;
  kernel: FakeKernel;
  fw: FakeFirewall;
  lines: string[];
  socket: string;
  done: Promise<number>;
}

function start(cfg: Config, over: Partial<SupervisorOptions> = {}): Started {
  writeFileSync(join(dir, "token"), "plxb_test_token");
  const lines: string[] = [];
  const log = createLogger({ level: "info", format: "text", write: (l) => lines.push(l) });
  const kernel = new FakeKernel();
  const fw = new FakeFirewall();
  const socket = join(dir, "plexd.sock");
  const binary = join(dir, "binary");
  if (!existsSync(binary)) writeFileSync(binary, "plexd v1");
  const sup = new Supervisor({
    config: cfg,
    env: {},
    log,
    socketPath: socket,
    loadAddon: () => null,
    createKernel: async () => kernel,
    binaryPath: binary,
    firewallTarget: () => fw,
    firewalld: null,
    systemctl: null,
    ...over,
  });
  return { sup, kernel, fw, lines, socket, done: sup.run() };
}

async function until(what: string, fn: () => boolean | Promise<boolean>, ms = 8_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await Bun.sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("supervisor wiring", () => {
  test("policy: table inet plexd with the mesh chains from the start, state policies enforced, drift restored and reported, GET /v1/policies", async () => {
    cp.policies = [sshPolicy];
    const s = start(config());
    await until("connected + state applied", () => s.sup.phase === "connected" && s.fw.state.rules.length > 0 && cp.calls.some((c) => c.endsWith("/state")));
    expect(s.fw.state.exists).toBe(true);
    expect(s.fw.state.chains.map((c) => c.name).sort()).toEqual(["forward", "input", "mesh_fwd", "mesh_in", "mesh_out", "output"]);
    await until("ssh rule elements", () => s.fw.state.sets.some((x) => x.elements.length > 0));
    const st = await callDaemon(s.socket, "GET", "/v1/policies");
    expect(st.kind).toBe("ok");
    const body = (st as { body: any }).body;
    expect(body.rules).toEqual([expect.objectContaining({ policy: "pol_ssh", status: "active" })]);
    expect(body.firewall.exists).toBe(true);

    // Someone deletes a set's elements behind our back; the next cycle reads back and repairs.
    const before = s.fw.state.sets.reduce((n, x) => n + x.elements.length, 0);
    for (const x of s.fw.state.sets) x.elements = [];
    cp.drift.length = 0;
    s.sup.scheduler!.trigger("test");
    await until("drift report", () => cp.drift.length > 0);
    expect(cp.drift[0].corrections).toContainEqual({ type: "firewall_restored", detail: "table inet plexd differed from desired ruleset" });
    expect(s.fw.state.sets.reduce((n, x) => n + x.elements.length, 0)).toBe(before);
    expect((await s.sup.status()).firewall).toMatchObject({ enabled: true, last_error: null });

    s.sup.requestStop();
    expect(await s.done).toBe(0);
    // Stop leaves the table (fail closed while the agent is down).
    expect(s.fw.state.exists).toBe(true);
  }, 20_000);

  test("offline-first: a restart with the CP unreachable applies the firewall from cache/policies.json", async () => {
    const { persistIdentity } = await import("../identity/index.ts");
    const { writePeersCache, writePoliciesCache } = await import("../mesh/cache.ts");
    const k = generateKeyPair();
    persistIdentity(join(dir, "data"), { nodeId: "n_self", meshIp: "10.100.0.1", privateKey: k.privateKey, nodeSecretKey: "nsk", signingPublicKey: SIGN });
    writePeersCache(join(dir, "data"), [peer]);
    writePoliciesCache(join(dir, "data"), [sshPolicy]);
    const s = start(config(["api: http://127.0.0.1:1", "policy: {default: deny}"]));
    await until("connected", () => s.sup.phase === "connected");
    expect(s.fw.state.sets.reduce((n, x) => n + x.elements.length, 0)).toBeGreaterThan(0);
    expect((await s.kernel.readDevice("plexdt0"))!.peers.map((p) => p.publicKey)).toEqual([peer.public_key]);
    s.sup.requestStop();
    expect(await s.done).toBe(0);
  }, 20_000);

  test("policy.enabled false: no enforcement, GET /v1/policies answers policy_disabled, a leftover table is removed", async () => {
    const s = start(config(["policy: {enabled: false, default: allow}"]));
    s.fw.state.exists = true;
    await until("connected", () => s.sup.phase === "connected");
    expect(s.fw.state.exists).toBe(false);
    const st = await callDaemon(s.socket, "GET", "/v1/policies");
    expect(st).toMatchObject({ kind: "error", code: "policy_disabled" });
    s.sup.requestStop();
    expect(await s.done).toBe(0);
  }, 20_000);

  test("NAT: discovered in nat_discovery, reported, peer endpoint hole-punched, in heartbeat and status", async () => {
    cp.peerEndpoints = [{ peer_id: "n_peer", endpoint: "198.51.100.12:40000" }];
    const s = start(config(["nat_traversal: {enabled: true, stun_servers: [203.0.113.10, '203.0.113.20:3478'], timeout: 1s}", "mesh: {interface: plexdt0, listen_port: 51820, persistent_keepalive: 0s}"]), {
      natOverrides: stunAnswering(["198.51.100.11", 51820]),
    });
    await until("heartbeat with nat", () => cp.heartbeats.some((h) => h.nat));
    const phases = s.lines.filter((l) => l.includes(" phase ")).map((l) => / to=(\w+)/.exec(l)![1]);
    expect(phases).toEqual(["registering", "configuring", "nat_discovery", "connected"]);
    expect(cp.endpoints[0]).toEqual({ public_endpoint: "198.51.100.11:51820", nat_type: "full_cone" });
    expect(cp.heartbeats.find((h) => h.nat).nat).toEqual({ public_endpoint: "198.51.100.11:51820", type: "full_cone" });
    // Hole punch: an update-only write of the endpoint with keepalive 0, then keepaliveFor(full_cone,
    // 0s) = 25 — at once, or HANDSHAKE_DEFER_MS later when our key is the greater (tie-break), when
    // a whole-mesh apply may have turned it on first.
    expect(s.kernel.calls.filter((c) => c === "updatePeers plexdt0").length).toBeGreaterThanOrEqual(1);
    const peer0 = async () => (await s.kernel.readDevice("plexdt0"))!.peers[0];
    for (let i = 0; i < 50 && (await peer0())?.persistentKeepalive !== 25; i++) await Bun.sleep(20);
    expect(await peer0()).toMatchObject({ endpoint: "198.51.100.12:40000", persistentKeepalive: 25 });
    const st = await s.sup.status();
    expect(st.nat).toEqual({ enabled: true, type: "full_cone", public_endpoint: "198.51.100.11:51820", mode: "raw", last_success_age_s: expect.any(Number), report_pending: false, last_error: null });
    expect(st.peers.list).toEqual([{ id: "n_peer", public_key: peer.public_key, endpoint: "198.51.100.12:40000", last_handshake: null }]);
    // The first reconcile applies the state (CP endpoint 192.0.2.9) — the NAT write was ours and
    // nothing handshook, so the device follows the CP; keepalive stays keepaliveFor's 25.
    await until("reconcile ran", () => cp.calls.some((c) => c.endsWith("/state")));
    expect(existsSync(join(dir, "data/cache/nat.json"))).toBe(true);
    s.sup.requestStop();
    expect(await s.done).toBe(0);
  }, 20_000);

  test("NAT: STUN unreachable → still connected, type unknown, nothing reported, no nat in the heartbeat", async () => {
    const s = start(config(["nat_traversal: {enabled: true, stun_servers: [203.0.113.10], timeout: 500ms}"]), { natOverrides: stunAnswering(null) });
    await until("connected + heartbeat", () => s.sup.phase === "connected" && cp.heartbeats.length > 0);
    expect(cp.endpoints).toEqual([]);
    expect(cp.heartbeats[0].nat).toBeUndefined();
    const st = await s.sup.status();
    expect(st.nat).toMatchObject({ enabled: true, type: "unknown", public_endpoint: null, report_pending: false });
    expect(st.nat.last_error).toContain("203.0.113.10");
    expect(st.health.problems).toContainEqual(expect.objectContaining({ indicator: "nat", severity: "degraded" }));
    s.sup.requestStop();
    expect(await s.done).toBe(0);
  }, 20_000);

  test("SIGHUP reload: log level applies live; non-R keys reported as restart_required and kept", async () => {
    let next = config();
    const s = start(config(), { reloadConfig: async () => next });
    await until("connected", () => s.sup.phase === "connected");
    s.sup.log.debug("before reload");
    next = config(["log_level: debug", "mesh: {interface: plexdt9, listen_port: 51820}", "heartbeat: {interval: 7s}"]);
    const plan = await s.sup.reload();
    expect(plan.applied.sort()).toEqual(["heartbeat.interval", "log_level"]);
    expect(plan.restartRequired).toEqual(["mesh.interface"]);
    s.sup.log.debug("after reload");
    expect(s.lines.some((l) => l.includes("before reload"))).toBe(false);
    expect(s.lines.some((l) => l.includes("after reload"))).toBe(true);
    expect(s.lines.some((l) => l.includes("restart") && l.includes("mesh.interface"))).toBe(true);
    expect(s.sup.config.mesh.interface).toBe("plexdt0");
    expect(s.sup.config.heartbeat.interval).toBe(7_000);
    // An invalid file changes nothing.
    next = undefined as unknown as Config;
    const broken = s.sup as unknown as { o: { reloadConfig: () => Promise<Config> } };
    const orig = broken.o.reloadConfig;
    Object.assign(s.sup.o, { reloadConfig: async () => Promise.reject(new Error("config.yaml:3: bad")) });
    await expect(s.sup.reload()).rejects.toThrow(/bad/);
    Object.assign(s.sup.o, { reloadConfig: orig });
    expect(s.sup.config.log_level).toBe("debug");
    s.sup.requestStop();
    expect(await s.done).toBe(0);
  }, 20_000);

  test("binary integrity mismatch → violation delivered through the durable outbox", async () => {
    const binary = join(dir, "binary");
    writeFileSync(binary, "plexd v1");
    const first = start(config());
    await until("connected", () => first.sup.phase === "connected");
    first.sup.requestStop();
    expect(await first.done).toBe(0);
    expect(cp.violations).toEqual([]);
    writeFileSync(binary, "plexd TAMPERED");
    const s = start(config());
    await until("violation at the CP", () => cp.violations.length > 0);
    expect(cp.violations[0]).toMatchObject({ type: "binary", path: binary, expected_checksum: expect.stringMatching(/^sha256:/), actual_checksum: expect.stringMatching(/^sha256:/) });
    expect(cp.violations[0].expected_checksum).not.toBe(cp.violations[0].actual_checksum);
    // The CP has the body before the outbox records the answer: wait for the row's status.
    const rows = () => s.sup.db!.query("SELECT kind, status FROM outbox WHERE kind = 'integrity_violation'").all();
    await until("violation row delivered", () => rows().some((r: any) => r.status === "delivered"));
    expect(rows()).toEqual([{ kind: "integrity_violation", status: "delivered" }]);
    // The binary changed, so the capabilities payload did too: announced once more (§6.6).
    await until("capabilities PUT", () => cp.capabilities.length > 0);
    expect(cp.capabilities[0].binary.checksum).toBe(`sha256:${createHash("sha256").update("plexd TAMPERED").digest("hex")}`);
    s.sup.requestStop();
    expect(await s.done).toBe(0);
  }, 20_000);

  test("hooks: scanned at start, registration carries them, baselines in checksums.json; a changed hook is announced once by PUT capabilities", async () => {
    const hooksDir = join(dir, "hooks.d");
    mkdirSync(hooksDir, { mode: 0o755 });
    chmodSync(hooksDir, 0o755);
    const hookFile = join(hooksDir, "backup.sh");
    writeFileSync(hookFile, "#!/bin/sh\necho v1\n");
    chmodSync(hookFile, 0o755);
    writeFileSync(join(hooksDir, "loose.sh"), "#!/bin/sh\n");
    chmodSync(join(hooksDir, "loose.sh"), 0o777);
    const hooksLine = `hooks: {dir: ${hooksDir}, definitions: [{name: backup, path: backup.sh, timeout: 45s, parameters: [{name: target, type: string, required: true}]}, {name: loose, path: loose.sh}]}`;
    const sha = (body: string) => createHash("sha256").update(body).digest("hex");
    const over = { hookOwnerUid: process.getuid!() };

    const first = start(config([hooksLine]), over);
    await until("connected", () => first.sup.phase === "connected" && cp.heartbeats.length > 0);
    expect(cp.registrations).toHaveLength(1);
    const caps = cp.registrations[0].capabilities;
    expect(caps.builtin_actions).toHaveLength(11);
    expect(caps.binary.checksum).toBe(`sha256:${sha("plexd v1")}`);
    expect(caps.hooks).toEqual([
      {
        name: "backup",
        description: "",
        source: "script",
        checksum: `sha256:${sha("#!/bin/sh\necho v1\n")}`,
        parameters: [{ name: "target", type: "string", required: true, description: "" }],
        timeout: "45s",
        sandbox: "namespaced",
      },
    ]);
    expect(first.lines.some((l) => l.includes("hook excluded") && l.includes("hook=loose") && l.includes("code=writable"))).toBe(true);
    // One file for every baseline: the binary and the valid hook.
    const baselines = JSON.parse(readFileSync(join(dir, "data/checksums.json"), "utf8"));
    expect(baselines).toEqual({ [join(dir, "binary")]: sha("plexd v1"), [hookFile]: sha("#!/bin/sh\necho v1\n") });
    expect(statSync(join(dir, "data/checksums.json")).mode & 0o777).toBe(0o600);
    first.sup.requestStop();
    expect(await first.done).toBe(0);
    // Registration announced the payload: nothing more to PUT.
    expect(cp.capabilities).toEqual([]);

    // The hook changes while the agent is down: the next start announces the new checksum.
    writeFileSync(hookFile, "#!/bin/sh\necho v2\n");
    const second = start(config([hooksLine]), over);
    await until("capabilities PUT", () => cp.capabilities.length > 0);
    expect(cp.capabilities[0].hooks.map((h: any) => h.checksum)).toEqual([`sha256:${sha("#!/bin/sh\necho v2\n")}`]);
    await until("delivered", () => second.sup.db!.query("SELECT status FROM outbox WHERE kind = 'capabilities'").all().some((r: any) => r.status === "delivered"));
    expect(JSON.parse(readFileSync(join(dir, "data/checksums.json"), "utf8"))[hookFile]).toBe(sha("#!/bin/sh\necho v2\n"));
    second.sup.requestStop();
    expect(await second.done).toBe(0);

    // Unchanged since the acknowledged PUT: no further announcement.
    const third = start(config([hooksLine]), over);
    await until("connected", () => third.sup.phase === "connected" && cp.heartbeats.length > 2);
    await Bun.sleep(100);
    expect(cp.capabilities).toHaveLength(1);
    expect(cp.registrations).toHaveLength(1);
    third.sup.requestStop();
    expect(await third.done).toBe(0);
  }, 30_000);

  test("reload that adds a hook definition rescans and announces it (hooks.definitions is R)", async () => {
    const hooksDir = join(dir, "hooks.d");
    mkdirSync(hooksDir, { mode: 0o755 });
    chmodSync(hooksDir, 0o755);
    writeFileSync(join(hooksDir, "h.sh"), "#!/bin/sh\n");
    chmodSync(join(hooksDir, "h.sh"), 0o755);
    const s = start(config([`hooks: {dir: ${hooksDir}}`]), { hookOwnerUid: process.getuid!() });
    await until("connected", () => s.sup.phase === "connected");
    expect(cp.registrations[0].capabilities.hooks).toEqual([]);
    const next = config([`hooks: {dir: ${hooksDir}, definitions: [{name: h, path: h.sh}]}`]);
    Object.assign(s.sup.o, { reloadConfig: async () => next });
    const plan = await s.sup.reload();
    expect(plan.applied).toContain("hooks.definitions");
    await until("capabilities PUT", () => cp.capabilities.length > 0);
    expect(cp.capabilities[0].hooks.map((h: any) => h.name)).toEqual(["h"]);
    s.sup.requestStop();
    expect(await s.done).toBe(0);
  }, 20_000);

  test("legacy profile: the registration's capabilities use bare checksums and source local", async () => {
    const hooksDir = join(dir, "hooks.d");
    mkdirSync(hooksDir, { mode: 0o755 });
    chmodSync(hooksDir, 0o755);
    writeFileSync(join(hooksDir, "h.sh"), "#!/bin/sh\n");
    chmodSync(join(hooksDir, "h.sh"), 0o700);
    const s = start(config([`hooks: {dir: ${hooksDir}, definitions: [{name: h, path: h.sh}]}`, "compat: {profile: legacy}"]), { hookOwnerUid: process.getuid!() });
    await until("registered", () => cp.registrations.length > 0 && s.sup.phase === "connected");
    const caps = cp.registrations[0].capabilities;
    expect(caps.binary.checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(caps.hooks).toEqual([expect.objectContaining({ name: "h", source: "local", checksum: expect.stringMatching(/^[0-9a-f]{64}$/), timeout: "30s" })]);
    s.sup.requestStop();
    expect(await s.done).toBe(0);
  }, 20_000);

  test("systemd watchdog: WATCHDOG=1 every WATCHDOG_USEC/2 while running, none after stop", async () => {
    const notes: string[] = [];
    const s = start(config(), { env: { WATCHDOG_USEC: "200000" }, notify: (n) => notes.push(n) });
    await until("connected", () => s.sup.phase === "connected");
    const n0 = notes.filter((n) => n === "WATCHDOG=1").length;
    await Bun.sleep(350);
    expect(notes.filter((n) => n === "WATCHDOG=1").length - n0).toBeGreaterThanOrEqual(2);
    expect(notes).toContain("READY=1");
    s.sup.requestStop();
    expect(await s.done).toBe(0);
    const n1 = notes.filter((n) => n === "WATCHDOG=1").length;
    await Bun.sleep(250);
    expect(notes.filter((n) => n === "WATCHDOG=1").length).toBe(n1);
  }, 20_000);

  test("deregister --purge: token file removed, data purged, `systemctl disable plexd.service`, table deleted", async () => {
    const ran: string[][] = [];
    const s = start(config(), { systemctl: async (args) => (ran.push(args), { code: 0, output: "" }) });
    await until("connected", () => s.sup.phase === "connected");
    expect(s.fw.state.exists).toBe(true);
    cp.calls.length = 0;
    writeFileSync(join(dir, "token"), "a token left behind");
    const r = await s.sup.deregister({ purge: true, force: true });
    expect(r.tornDown).toBe(true);
    expect(r.purged).toBe(true);
    expect(ran).toEqual([["disable", "plexd.service"]]);
    expect(existsSync(join(dir, "token"))).toBe(false);
    expect(existsSync(join(dir, "data/identity.json"))).toBe(false);
    expect(s.fw.state.exists).toBe(false);
    expect(await s.done).toBe(0);
  }, 20_000);
});

describe("reconcile and handlers with the enforcer (fake target)", () => {
  let kernel: FakeKernel;
  let fw: FakeFirewall;
  let firewall: AgentFirewall;
  let mesh: MeshController;
  let signing: SigningKeyStore;
  const ident = fakeIdentity("n_self", "10.100.0.1");

  beforeEach(() => {
    kernel = new FakeKernel();
    fw = new FakeFirewall();
    firewall = new AgentFirewall({ target: fw, config: () => config(["policy: {default: deny}"]), log: nullLogger, firewalld: null });
    mesh = new MeshController({
      kernel,
      dataDir: dir,
      firewall,
      settings: () => ({ ifname: "plexdt0", listenPort: 51820, mtu: 1420, keepaliveSec: 25, policyDefault: "deny", policyEnabled: true }),
      self: () => ({ ...ident }),
    });
    signing = new SigningKeyStore({ dataDir: dir, initial: { current: SIGN, previous: null, transition_expires: null } });
  });
  afterEach(() => signing.close());

  test("reconcile: enforcer applied after the device step; policy_added once (from the reconciler), firewall_restored from the read-back", async () => {
    const drift: any[] = [];
    const { api } = fakeApi({
      "GET /v1/nodes/n_self/state": () => ({ status: 200, body: { peers: [peer], policies: [sshPolicy] } }),
      "POST /v1/nodes/n_self/drift": (b) => (drift.push(b), { status: 200, body: {} }),
    });
    const rec = new Reconciler({
      api,
      nodeId: () => "n_self",
      mesh,
      nodeState: new NodeStateStore(dir),
      signing,
      paused: () => false,
      onSuccess: () => {},
      on401: () => {},
      onFailure: () => {},
      log: nullLogger,
      firewall,
    });
    const r1 = await rec.cycle("test");
    expect(r1.errors).toEqual([]);
    expect(kernel.calls.indexOf("applyDevice plexdt0")).toBeGreaterThanOrEqual(0);
    expect(fw.batches.length).toBeGreaterThan(0);
    expect(r1.corrections.filter((c) => c.type === "policy_added")).toEqual([{ type: "policy_added", detail: "policy pol_ssh" }]);
    expect(r1.corrections.some((c) => c.type === "firewall_restored")).toBe(false);
    // Drift behind our back, no generation change: only the read-back finds it.
    fw.state.rules = fw.state.rules.filter((x) => x.chain !== "mesh_in");
    const r2 = await rec.cycle("test");
    expect(r2.corrections).toEqual([{ type: "firewall_restored", detail: "table inet plexd differed from desired ruleset" }]);
    expect(drift.at(-1).corrections).toEqual([{ type: "firewall_restored", detail: "table inet plexd differed from desired ruleset" }]);
    // A failing firewall is a step error like the others.
    fw.apply = async () => {
      throw new FakeNftError("EPERM", "Operation not permitted");
    };
    const r3 = await rec.applyState({ peers: { peers: [peer], rejected: [] }, policies: [], metadata: {}, data: [], secret_refs: [] } as never, "test");
    expect(r3.errors.map((e) => e.step)).toEqual(["firewall"]);
    expect(firewall.health().lastError).toContain("not permitted");
  });

  test("policy_updated with policies: firewall applied immediately (no reconcile needed), then a reconcile is triggered", async () => {
    mesh.commit({ peers: [peer], policies: [] });
    await mesh.apply();
    const elements = () => fw.state.sets.reduce((n, x) => n + x.elements.length, 0);
    expect(elements()).toBe(0);
    const reconciles: string[] = [];
    const h = createHandlers({ mesh, signing, nodeState: new NodeStateStore(dir), triggerReconcile: (r) => reconciles.push(r), rotateKeys: () => {}, log: nullLogger });
    await h.policy_updated!({} as never, { policies: [sshPolicy] }, { seq: 1, replay: false, dryRun: false, attempt: 1, recovered: false });
    expect(elements()).toBeGreaterThan(0);
    expect(reconciles).toEqual(["policy_updated"]);
    // The peer became visible through the allow rule, in the same apply.
    expect((await kernel.readDevice("plexdt0"))!.peers.map((p) => p.publicKey)).toEqual([peer.public_key]);
  });
});
