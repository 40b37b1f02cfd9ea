import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Peer } from "../controlplane/schemas.ts";
import type { Envelope } from "../events/envelope.ts";
import { generateKeyPair } from "../identity/keys.ts";
import { HandlerError } from "../journal/index.ts";
import { FakeKernel } from "../kernel/fake.ts";
import { nullLogger } from "../log/index.ts";
import { MeshController } from "../mesh/controller.ts";
import { createHandlers } from "./handlers.ts";
import { HeartbeatLoop, heartbeatBody } from "./heartbeat.ts";
import { NodeContext } from "./node-context.ts";
import { NodeStateStore } from "./node-state.ts";
import { Reconciler, policyCorrections } from "./reconcile.ts";
import { KeyRotator, NEXT_KEY_FILE } from "./rotation.ts";
import { keysFromRotationEvent, SigningKeyStore } from "./signing.ts";
import { fakeApi, fakeIdentity } from "./testing.ts";
import { CpApi, HttpClient } from "../controlplane/index.ts";

const ENV = {} as Envelope;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mkPeer = (id: string, ip: string, extra: Partial<Peer> = {}): Peer => ({
  id,
  public_key: generateKeyPair().publicKey,
  mesh_ip: ip,
  endpoint: "",
  allowed_ips: [`${ip}/32`],
  psk: "",
  ...extra,
});
const SIGN_A = "ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=";
const SIGN_B = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";

let dir: string;
let kernel: FakeKernel;
let ctx: NodeContext;
let mesh: MeshController;
let signing: SigningKeyStore;
let nodeState: NodeStateStore;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "plexd-agent-"));
  kernel = new FakeKernel();
  ctx = new NodeContext(fakeIdentity());
  mesh = new MeshController({
    kernel,
    dataDir: dir,
    settings: () => ({ ifname: "plexdt0", listenPort: 51820, mtu: 1420, keepaliveSec: 25, policyDefault: "allow", policyEnabled: true }),
    self: () => ({ ...ctx.identity }),
  });
  signing = new SigningKeyStore({ dataDir: dir, initial: { current: SIGN_A, previous: null, transition_expires: null } });
  nodeState = new NodeStateStore(dir);
});
afterEach(() => {
  signing.close();
  rmSync(dir, { recursive: true, force: true });
});

function handlers(extra: { reconciles?: string[]; rotations?: string[] } = {}) {
  return createHandlers({
    mesh,
    signing,
    nodeState,
    triggerReconcile: (r) => extra.reconciles?.push(r),
    rotateKeys: (r) => extra.rotations?.push(r),
    log: nullLogger,
  });
}
const run = (h: ReturnType<typeof handlers>, type: string, payload: unknown, dryRun = false) =>
  h[type]!(ENV, payload, { seq: 1, replay: false, dryRun, attempt: dryRun ? 0 : 1, recovered: false });

describe("event handlers", () => {
  test("peer_added: dry run lists the change and writes nothing; real run applies; repeat is a no-op", async () => {
    const h = handlers();
    const p = mkPeer("n_a", "10.100.0.2");
    const planned = await run(h, "peer_added", p, true);
    expect(planned).toContain("peer_added peer n_a");
    expect(await kernel.readDevice("plexdt0")).toBeNull();
    expect(existsSync(join(dir, "cache/peers.json"))).toBe(false);
    const applied = await run(h, "peer_added", p);
    expect(applied).toContain("peer_added peer n_a");
    expect((await kernel.readDevice("plexdt0"))!.peers.map((x) => x.publicKey)).toEqual([p.public_key]);
    expect(await run(h, "peer_added", p)).toEqual([]);
    await mesh.flush(); // the peers cache is written behind the event (debounced)
    expect(JSON.parse(readFileSync(join(dir, "cache/peers.json"), "utf8"))).toEqual([p]);
  });

  test("peer_removed, peer_key_rotated (endpoint kept), peer_endpoint_changed", async () => {
    const h = handlers();
    const a = mkPeer("n_a", "10.100.0.2", { endpoint: "192.0.2.9:51820" });
    const b = mkPeer("n_b", "10.100.0.3");
    await run(h, "peer_added", a);
    await run(h, "peer_added", b);
    const rotated = { ...a, public_key: generateKeyPair().publicKey, endpoint: "" };
    const r = await run(h, "peer_key_rotated", rotated);
    expect(r).toContain("peer_removed peer n_a");
    expect(r).toContain("peer_added peer n_a");
    let dev = await kernel.readDevice("plexdt0");
    expect(dev!.peers.find((x) => x.publicKey === rotated.public_key)?.endpoint).toBe("192.0.2.9:51820");
    expect(await run(h, "peer_endpoint_changed", { peer_id: "n_b", endpoint: "192.0.2.7:1234" })).toEqual(["peer_updated peer n_b: endpoint,keepalive"]); // keepalive turns on with the first endpoint
    expect(await run(h, "peer_endpoint_changed", { peer_id: "n_ghost", endpoint: "192.0.2.7:1234" })).toEqual([]);
    expect(await run(h, "peer_removed", { peer_id: "n_b" }, true)).toEqual(["peer_removed peer n_b"]);
    expect(await run(h, "peer_removed", { peer_id: "n_b" })).toEqual(["peer_removed peer n_b"]);
    expect(await run(h, "peer_removed", { peer_id: "n_b" })).toEqual([]);
    dev = await kernel.readDevice("plexdt0");
    expect(dev!.peers).toHaveLength(1);
  });

  test("invalid payloads are permanent errors; kernel failures retryable", async () => {
    const h = handlers();
    const bad = await run(h, "peer_added", { id: "n_x", public_key: "nope" }).catch((e) => e);
    expect(bad).toBeInstanceOf(HandlerError);
    expect((bad as HandlerError).retryable).toBe(false);
    kernel.failNext("applyDevice", { code: "EBUSY" });
    const busy = await run(h, "peer_added", mkPeer("n_a", "10.100.0.2")).catch((e) => e);
    expect(busy).toBeInstanceOf(HandlerError);
    expect((busy as HandlerError).retryable).toBe(true);
  });

  test("policy_updated applies policies and always triggers reconcile", async () => {
    const reconciles: string[] = [];
    const h = handlers({ reconciles });
    const pol = { id: "p1", rules: [{ src: "*", dst: "*", action: "allow" }] };
    expect(await run(h, "policy_updated", { policies: [pol] }, true)).toContain("reconcile");
    expect(reconciles).toEqual([]);
    await run(h, "policy_updated", { policies: [pol] });
    expect(mesh.policies.map((p) => p.id)).toEqual(["p1"]);
    await run(h, "policy_updated", {});
    expect(reconciles).toEqual(["policy_updated", "policy_updated"]);
  });

  test("signing_key_rotated: shape A and shape B persist both files", async () => {
    const h = handlers();
    const exp = new Date(Date.now() + 3_600_000).toISOString();
    expect(await run(h, "signing_key_rotated", { current: SIGN_B, previous: SIGN_A, transition_expires: exp }, true)).toEqual(["signing_keys_updated signing keys rotated"]);
    expect(existsSync(join(dir, "signing_keys.json"))).toBe(false);
    await run(h, "signing_key_rotated", { current: SIGN_B, previous: SIGN_A, transition_expires: exp });
    expect(readFileSync(join(dir, "signing_public_key"), "utf8")).toBe(SIGN_B);
    expect(signing.trusted()!.previous).toBeDefined();
    const b = keysFromRotationEvent({ new_signing_public_key: SIGN_A, valid_from: new Date(Date.now() - 1000).toISOString(), transition_period: "1h" }, signing.keys, Date.now());
    expect(typeof b).toBe("object");
    expect(b).toMatchObject({ current: SIGN_A, previous: SIGN_B });
    const err = await run(h, "signing_key_rotated", { nonsense: 1 }).catch((e) => e);
    expect((err as HandlerError).retryable).toBe(false);
  });

  test("node_state_updated / node_secrets_updated persist under state/", async () => {
    const h = handlers();
    const entry = { key: "cfg/app", content_type: "application/json", payload: { a: 1 }, version: 3, updated_at: new Date().toISOString() };
    expect(await run(h, "node_state_updated", { metadata: { role: "web" }, data: [entry] })).toEqual(["metadata_updated metadata updated", "data_updated data updated"]);
    expect(await run(h, "node_state_updated", { metadata: { role: "web" }, data: [entry] })).toEqual([]);
    expect(statSync(join(dir, "state/data/cfg%2Fapp.json")).mode & 0o777).toBe(0o600);
    expect(await run(h, "node_secrets_updated", { secret_refs: [{ key: "db", version: 1 }] })).toEqual(["secret_refs_updated secret refs updated"]);
    expect(JSON.parse(readFileSync(join(dir, "state/secrets.json"), "utf8"))).toEqual([{ key: "db", version: 1 }]);
  });

  test("rotate_keys hands over to the rotator", async () => {
    const rotations: string[] = [];
    const h = handlers({ rotations });
    expect(await run(h, "rotate_keys", {}, true)).toHaveLength(1);
    expect(rotations).toEqual([]);
    await run(h, "rotate_keys", {});
    expect(rotations).toEqual(["event"]);
  });
});

describe("reconcile", () => {
  test("diff against the kernel → apply → drift corrections posted", async () => {
    const a = mkPeer("n_a", "10.100.0.2");
    const b = mkPeer("n_b", "10.100.0.3");
    const state = { peers: [a, b], policies: [{ id: "p1", rules: [] }], metadata: { k: "v" }, data: [], secret_refs: [] };
    const { api, requests } = fakeApi({
      "GET /v1/nodes/n_self/state": () => ({ status: 200, body: state }),
      "POST /v1/nodes/n_self/drift": () => ({ status: 200 }),
    });
    const rec = new Reconciler({
      api,
      nodeId: () => "n_self",
      mesh,
      nodeState,
      signing,
      paused: () => false,
      onSuccess: () => {},
      on401: () => {},
      onFailure: () => {},
      log: nullLogger,
    });
    const first = await rec.cycle("test");
    expect(first.ok).toBe(true);
    expect(first.corrections.map((c) => c.type)).toEqual(expect.arrayContaining(["policy_added", "peer_added", "metadata_updated"]));
    // Steady state: nothing to correct, no drift POST.
    const posts = () => requests.filter((r) => r.path.endsWith("/drift")).length;
    expect(posts()).toBe(1);
    const second = await rec.cycle("test");
    expect(second.corrections).toEqual([]);
    expect(posts()).toBe(1);
    // Drift behind our back: a peer vanishes from the kernel.
    kernel.mutateDevice("plexdt0", (d) => {
      d.peers = d.peers.filter((p) => p.publicKey !== a.public_key);
    });
    const third = await rec.cycle("test");
    expect(third.corrections).toEqual([{ type: "peer_added", detail: "peer n_a" }]);
    const last = requests.filter((r) => r.path.endsWith("/drift")).at(-1)!;
    expect(last.body).toEqual({ timestamp: expect.stringMatching(/Z$/), corrections: [{ type: "peer_added", detail: "peer n_a" }] });
  });

  test("a failed state fetch changes nothing; 401 goes to the auth flow", async () => {
    let status = 503;
    const unauthorized: string[] = [];
    const { api } = fakeApi({ "GET /v1/nodes/n_self/state": () => ({ status }) });
    mesh.commit({ peers: [mkPeer("n_a", "10.100.0.2")] });
    await mesh.apply();
    const rec = new Reconciler({ api, nodeId: () => "n_self", mesh, nodeState, signing, paused: () => false, onSuccess: () => {}, on401: () => unauthorized.push("x"), onFailure: () => {}, log: nullLogger });
    expect((await rec.cycle("t")).ok).toBe(false);
    expect((await kernel.readDevice("plexdt0"))!.peers).toHaveLength(1);
    status = 401;
    await rec.cycle("t");
    expect(unauthorized).toEqual(["x"]);
  });

  test("signing keys from state need continuity", async () => {
    const good = signing.adoptFromState({ current: SIGN_B, previous: SIGN_A, transition_expires: new Date(Date.now() + 60_000).toISOString() }, true);
    expect("rejected" in good).toBe(false);
    const s2 = new SigningKeyStore({ dataDir: dir, initial: { current: SIGN_A, previous: null, transition_expires: null } });
    const bad = s2.adoptFromState({ current: SIGN_B, previous: null, transition_expires: null });
    expect("rejected" in bad).toBe(true);
    expect(s2.continuityBroken).toBe(true);
    s2.close();
  });

  test("policy corrections", () => {
    const p = (id: string, dst = "*") => ({ id, rules: [{ src: "*", dst, port: 0, protocol: "" as const, action: "allow" as const }] });
    expect(policyCorrections([p("a"), p("b")], [p("b", "n_x"), p("c")])).toEqual([
      { type: "policy_added", detail: "policy b (rules changed)" },
      { type: "policy_added", detail: "policy c" },
      { type: "policy_removed", detail: "policy a" },
    ]);
  });
});

describe("heartbeat", () => {
  const facts = async () => ({ nodeId: "n_self", status: "healthy" as const, uptimeMs: 3_723_000, binaryChecksum: "sha256:" + "a".repeat(64), iface: "plexd0", listenPort: 51820, peerCount: 2 });

  test("body has every required field", async () => {
    const b = heartbeatBody(await facts(), Date.parse("2025-01-15T10:30:00Z"));
    expect(b).toEqual({
      node_id: "n_self",
      timestamp: "2025-01-15T10:30:00.000Z",
      status: "healthy",
      uptime: "1h2m3s",
      binary_checksum: "sha256:" + "a".repeat(64),
      mesh: { interface: "plexd0", peer_count: 2, listen_port: 51820 },
    });
  });

  test("stop() aborts a heartbeat the CP never answers instead of waiting for its timeout", async () => {
    let arrived!: () => void;
    const got = new Promise<void>((r) => (arrived = r));
    const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => (arrived(), new Promise<Response>(() => {})) });
    try {
      const api = new CpApi({ http: new HttpClient({ baseUrl: `http://127.0.0.1:${server.port}`, auth: () => "nsk" }) });
      const failures: string[] = [];
      const hb = new HeartbeatLoop({
        api,
        facts,
        intervalMs: () => 60_000,
        log: nullLogger,
        onSuccess: () => {},
        onReconcile: () => {},
        onRotateKeys: () => {},
        on401: () => {},
        onFailure: (e) => failures.push(e.kind),
      });
      hb.start();
      await got;
      // The heartbeat timeout is 10 s; stop() must not sit it out.
      const outcome = await Promise.race([hb.stop().then(() => "stopped"), Bun.sleep(5_000).then(() => "still waiting")]);
      expect(outcome).toBe("stopped");
      expect(failures).toEqual([]); // an aborted beat at stop is not a CP failure
    } finally {
      server.stop(true);
    }
  });

  test("directives trigger reconcile and rotation; 401 goes to the auth flow", async () => {
    let answer: { status: number; body?: unknown } = { status: 200, body: { reconcile: true, rotate_keys: true } };
    const { api, requests } = fakeApi({ "POST /v1/nodes/n_self/heartbeat": () => answer });
    const seen: string[] = [];
    const hb = new HeartbeatLoop({
      api,
      facts,
      intervalMs: () => 60_000,
      log: nullLogger,
      onSuccess: () => seen.push("ok"),
      onReconcile: () => seen.push("reconcile"),
      onRotateKeys: () => seen.push("rotate"),
      on401: () => seen.push("401"),
      onFailure: () => seen.push("fail"),
    });
    hb.start();
    await sleep(20);
    expect(seen).toEqual(["ok", "reconcile", "rotate"]);
    answer = { status: 401 };
    hb.beatNow();
    await sleep(20);
    answer = { status: 200, body: "not json" };
    hb.beatNow();
    await sleep(20);
    await hb.stop();
    expect(seen).toEqual(["ok", "reconcile", "rotate", "401", "ok"]);
    expect(requests).toHaveLength(3);
    expect((requests[0]!.body as { mesh: unknown }).mesh).toEqual({ interface: "plexd0", peer_count: 2, listen_port: 51820 });
  });
});

describe("key rotation", () => {
  test("success: one device update with the new key and updated peers, .next renamed", async () => {
    const a = mkPeer("n_a", "10.100.0.2", { psk: generateKeyPair().publicKey });
    mesh.commit({ peers: [a] });
    await mesh.apply();
    const newPsk = generateKeyPair().publicKey;
    let sentKey = "";
    const { api } = fakeApi({
      "POST /v1/keys/rotate": (body) => {
        sentKey = (body as { new_public_key: string }).new_public_key;
        expect(existsSync(join(dir, NEXT_KEY_FILE))).toBe(true);
        return { status: 200, body: { updated_peers: [{ ...a, psk: newPsk }] } };
      },
    });
    const rot = new KeyRotator({ dataDir: dir, api, ctx, mesh, log: nullLogger });
    expect(await rot.trigger("test")).toBe("rotated");
    expect(ctx.identity.publicKey).toBe(sentKey);
    const dev = await kernel.readDevice("plexdt0");
    expect(dev!.publicKey).toBe(sentKey);
    expect(dev!.peers[0]!.presharedKey).toBe(newPsk);
    expect(existsSync(join(dir, NEXT_KEY_FILE))).toBe(false);
    expect(readFileSync(join(dir, "private_key"), "utf8")).toBe(ctx.identity.privateKey);
    expect(await rot.trigger("again")).toBe("ignored"); // < 60 s after the last one
  });

  test("permanent failure keeps the old key and deletes .next; a crash leftover resumes with the same key", async () => {
    const old = ctx.identity.privateKey;
    const { api } = fakeApi({ "POST /v1/keys/rotate": () => ({ status: 409 }) });
    const rot = new KeyRotator({ dataDir: dir, api, ctx, mesh, log: nullLogger });
    expect(await rot.trigger("t")).toBe("failed");
    expect(ctx.identity.privateKey).toBe(old);
    expect(existsSync(join(dir, NEXT_KEY_FILE))).toBe(false);
    expect(rot.degradedUntil).toBeGreaterThan(Date.now());

    const pending = generateKeyPair();
    Bun.write(join(dir, NEXT_KEY_FILE), pending.privateKey);
    await sleep(10);
    let sent = "";
    const ok = fakeApi({ "POST /v1/keys/rotate": (b) => ((sent = (b as { new_public_key: string }).new_public_key), { status: 200, body: { updated_peers: [] } }) });
    const rot2 = new KeyRotator({ dataDir: dir, api: ok.api, ctx, mesh, log: nullLogger });
    expect(await rot2.resumeIfPending()).toBe("rotated");
    expect(sent).toBe(pending.publicKey);
  });
});
