/**
 * `peer_added` apply latency with 100 / 1,000 / 10,000 existing peers, through the agent's own
 * handler path: `createHandlers(...).peer_added` (src/agent/handlers.ts) → `MeshController.upsertPeer`
 * = the event fast path (docs/decisions.md "Mesh apply fast path"): the peer's delta against the
 * model of what was applied → one `kernel.applyPeers` write; the peers cache is written behind it
 * (debounced, asynchronous). The first event on a rig would take the whole-mesh apply; the bulk
 * load before the timed iterations is such an apply, so every timed event is a fast-path one.
 *
 * The breakdown rows show the costs that are now paid only by the whole-mesh apply (configure,
 * reconcile every 60 s, policy changes): computeDesired, a synchronous cache write,
 * `kernel.applyDevice` = read → diff → set → read-back verify.
 *
 *  - FAKE kernel (src/kernel/fake.ts): one controller per level, iterations interleaved across
 *    levels. Baseline = the 100-peer latency; ratios 1,000/100 and 10,000/100 (target: flat)
 *    and absolute median (target ≤ 1 ms).
 *  - UAPI backend (real wireguard-go, createKernel backend "userspace" + the native addon for
 *    links/addresses/routes): root only. The bench re-runs itself inside a throw-away network
 *    namespace (`ip netns exec`, unique interface name) so rtnetlink sees wireguard-go's TUN.
 *    Levels run one after another on one device (100 is repeated at the end to show drift);
 *    each iteration also times a raw single-peer UAPI `set=1` over the socket — the floor —
 *    interleaved with the handler. Then a breakdown of applyDevice: get (socket) / parse /
 *    diff / set / verify, and the handler's non-kernel work.
 *
 *   node_modules/.bin/bun bench/agent-peer-added.ts [--iters 15] [--levels 100,1000,10000] [--no-uapi]
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHandlers } from "../src/agent/handlers.ts";
import type { NodeStateStore } from "../src/agent/node-state.ts";
import type { SigningKeyStore } from "../src/agent/signing.ts";
import type { Peer } from "../src/controlplane/schemas.ts";
import type { Envelope } from "../src/events/envelope.ts";
import type { EventHandler, HandlerContext } from "../src/journal/index.ts";
import { nullLogger } from "../src/log/index.ts";
import { writePeersCache } from "../src/mesh/cache.ts";
import { MeshController } from "../src/mesh/controller.ts";
import type { MeshSettings } from "../src/mesh/desired.ts";
import { createKernel, diffDevice, FakeKernel, keepRoamedEndpoint, type Kernel } from "../src/kernel/index.ts";
import { base64ToHex, generateKeyPair } from "../src/kernel/keys.ts";
import { buildGet, parseGet } from "../src/kernel/uapi-codec.ts";
import { DEFAULT_SOCKET_DIR, UapiClient } from "../src/kernel/uapi.ts";
import { applyWithDriver, type WgDriver } from "../src/kernel/wg-apply.ts";
import type { DesiredDevice, WgDevice, WgSet } from "../src/kernel/types.ts";
import { BUN, childrenOf, commOf, flag, hasFlag, killPid, median, ms, Proc, quantile, sampleProc, sh, suffix } from "./lib.ts";

const ITERS = Number(flag("iters", "15"));
const LEVELS = flag("levels", "100,1000,10000").split(",").map(Number);
const CHILD = hasFlag("child-uapi");

// ---------------------------------------------------------------------------------------------
// Shared: peers, a controller + handlers around a kernel

let peerSeq = 0;
/** A CP-shaped peer (the `peer_added` payload). Unique key, id and mesh IP per call. */
function newPeer(): Peer {
  const i = peerSeq++;
  const ip = `10.100.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
  return { id: `n_${i.toString(16).padStart(16, "0")}`, public_key: randomBytes(32).toString("base64"), mesh_ip: ip, endpoint: `127.0.0.1:${20000 + (i % 20000)}`, allowed_ips: [`${ip}/32`], psk: "" };
}

const ctx: HandlerContext = { seq: 1, replay: false, dryRun: false, attempt: 1, recovered: false };
const env = (p: Peer): Envelope => ({ eventType: "peer_added", eventId: `evt_${p.id}`, issuedAt: "", issuedAtMs: 0, nonce: p.id, signature: "", payloadText: JSON.stringify(p) });

interface Rig {
  n: number;
  kernel: Kernel;
  mesh: MeshController;
  peerAdded: EventHandler;
  dataDir: string;
}

const temps: string[] = [];
const self = { nodeId: "n_self", meshIp: "10.100.250.250", ...generateKeyPair() };

function makeRig(kernel: Kernel, ifname: string, listenPort: number, n: number): Rig {
  const dataDir = mkdtempSync(join(tmpdir(), `plexd-bench-peer-${process.pid}-`));
  temps.push(dataDir);
  // keepalive 0: wireguard-go never initiates handshakes on its own (no traffic leaves the netns).
  const settings: MeshSettings = { ifname, listenPort, mtu: 1420, keepaliveSec: 0, policyDefault: "allow", policyEnabled: true };
  const mesh = new MeshController({ kernel, dataDir, settings: () => settings, self: () => self, logger: nullLogger });
  const handlers = createHandlers({
    mesh,
    signing: {} as SigningKeyStore, // only used by signing_key_rotated
    nodeState: {} as NodeStateStore, // only used by node_state_updated / node_secrets_updated
    triggerReconcile: () => {},
    rotateKeys: () => {},
    log: nullLogger,
  });
  return { n, kernel, mesh, peerAdded: handlers.peer_added!, dataDir };
}

/** Sets the rig to `n` peers (bulk apply, not measured). */
async function loadPeers(r: Rig, n: number): Promise<void> {
  const peers = Array.from({ length: n }, newPeer);
  r.mesh.commit({ peers });
  const out = await r.mesh.apply();
  if (out.errors.length > 0) throw new Error(`initial apply (${n} peers): ${JSON.stringify(out.errors)}`);
  r.n = n;
}

/** One timed `peer_added` through the handler; checks the peer really was added. */
async function handlerOnce(r: Rig): Promise<number> {
  const p = newPeer();
  const t0 = performance.now();
  const changes = await r.peerAdded(env(p), p, ctx);
  const t = performance.now() - t0;
  if (!Array.isArray(changes) || !changes.some((c) => c.startsWith("peer_added"))) throw new Error(`peer_added made no change: ${JSON.stringify(changes)}`);
  return t;
}

/** Times of the handler's non-kernel steps at the rig's current size (median of `reps`). */
async function handlerSteps(r: Rig, reps = 5): Promise<Record<string, number>> {
  const t: Record<string, number[]> = { filter: [], cache: [], desired: [] };
  for (let i = 0; i < reps; i++) {
    const p = newPeer();
    let t0 = performance.now();
    const next = r.mesh.peers.filter((x) => x.id !== p.id && x.public_key !== p.public_key).concat(p);
    t.filter!.push(performance.now() - t0);
    t0 = performance.now();
    writePeersCache(join(r.dataDir, "scratch"), next);
    t.cache!.push(performance.now() - t0);
    t0 = performance.now();
    r.mesh.desired(next);
    t.desired!.push(performance.now() - t0);
  }
  return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, median(v)]));
}

function ratioText(x: number, base: number): string {
  return `${(x / base).toFixed(2)}x`;
}

// ---------------------------------------------------------------------------------------------
// FAKE kernel (in process)

async function fakeBench(): Promise<void> {
  const rigs: Rig[] = [];
  for (const [i, n] of LEVELS.entries()) {
    const k = new FakeKernel();
    const r = makeRig(k, `pxfake${i}`, 51820, 0);
    await loadPeers(r, n);
    rigs.push(r);
  }
  for (const r of rigs) for (let w = 0; w < 3; w++) await handlerOnce(r); // warm-up
  const lat = new Map<Rig, number[]>(rigs.map((r) => [r, []]));
  for (let it = 0; it < ITERS; it++) {
    for (let j = 0; j < rigs.length; j++) {
      const r = rigs[(j + it) % rigs.length]!;
      lat.get(r)!.push(await handlerOnce(r));
    }
  }
  const base = median(lat.get(rigs[0]!)!);
  console.log(`\n== FAKE kernel: peer_added through handlers.ts → MeshController (median of ${ITERS}, levels interleaved) ==`);
  console.log(["existing peers", "median", "p90", `ratio to ${LEVELS[0]}`, "target ≤ 1 ms"].join("\t"));
  for (const r of rigs) {
    const xs = lat.get(r)!;
    const m = median(xs);
    console.log([r.n, ms(m), ms(quantile(xs, 0.9)), ratioText(m, base), m <= 1 ? "OK" : "OVER"].join("\t"));
  }
  console.log("whole-mesh path, NOT per event any more (median of 5): list filter / sync peers cache write (compact JSON+fsync) / computeDesired / kernel.applyDevice(+1 peer) [read / diff]");
  for (const r of rigs) {
    const s = await handlerSteps(r);
    const k = r.kernel as FakeKernel;
    const a: number[] = [];
    const rd: number[] = [];
    const df: number[] = [];
    for (let i = 0; i < 5; i++) {
      const d = r.mesh.desired().device;
      const plus: DesiredDevice = { ...d, peers: [...d.peers, { publicKey: randomBytes(32).toString("base64"), allowedIps: ["10.100.251.1/32"] }] };
      let t0 = performance.now();
      const actual = await k.readDevice(d.ifname);
      rd.push(performance.now() - t0);
      t0 = performance.now();
      diffDevice(actual, plus, { keepEndpoint: keepRoamedEndpoint() });
      df.push(performance.now() - t0);
      t0 = performance.now();
      await k.applyDevice(plus, { keepEndpoint: keepRoamedEndpoint() });
      a.push(performance.now() - t0);
      await k.applyDevice(d); // back (not timed)
    }
    console.log(`${r.n}\tfilter ${ms(s.filter!)}\tcache ${ms(s.cache!)}\tdesired ${ms(s.desired!)}\tapplyDevice ${ms(median(a))} [read ${ms(median(rd))} / diff ${ms(median(df))}]`);
  }
}

// ---------------------------------------------------------------------------------------------
// UAPI backend (inside the netns; this process is the child)

/** Raw UAPI request over the Unix socket, no codec: the floor for "add one peer". */
function rawUapi(path: string, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let reply = "";
    const s = createConnection({ path });
    s.setEncoding("utf8");
    s.on("connect", () => s.write(text));
    s.on("data", (c: string) => {
      reply += c;
      if (reply.endsWith("\n\n")) {
        s.destroy();
        if (!reply.startsWith("errno=0")) reject(new Error(`raw UAPI: ${reply.trim()}`));
        else resolve(reply);
      }
    });
    s.on("error", reject);
  });
}

async function rawFloorOnce(sock: string): Promise<number> {
  const hex = base64ToHex(randomBytes(32).toString("base64"));
  const t0 = performance.now();
  await rawUapi(sock, `set=1\npublic_key=${hex}\nallowed_ip=10.100.252.1/32\n\n`);
  const t = performance.now() - t0;
  await rawUapi(sock, `set=1\npublic_key=${hex}\nremove=true\n\n`);
  return t;
}

/** Times applyDevice's phases with a driver wrapping the UAPI client. */
async function uapiBreakdown(uapi: UapiClient, r: Rig, reps = 5): Promise<Record<string, number>> {
  const acc: Record<string, number[]> = { total: [], getIo: [], parse: [], set: [], verifyGet: [], diffs: [] };
  for (let i = 0; i < reps; i++) {
    const gets: { io: number; parse: number }[] = [];
    let setMs = 0;
    const driver: WgDriver = {
      get: async (ifname: string): Promise<WgDevice | null> => {
        const t0 = performance.now();
        const text = await uapi.request(ifname, buildGet());
        const t1 = performance.now();
        const dev = parseGet(text, ifname);
        gets.push({ io: t1 - t0, parse: performance.now() - t1 });
        return dev;
      },
      set: async (ifname: string, s: WgSet) => {
        const t0 = performance.now();
        await uapi.set(ifname, s);
        setMs += performance.now() - t0;
      },
    };
    const d = r.mesh.desired().device;
    const plus: DesiredDevice = { ...d, peers: [...d.peers, { publicKey: randomBytes(32).toString("base64"), allowedIps: ["10.100.251.1/32"] }] };
    const t0 = performance.now();
    const ch = await applyWithDriver(driver, plus, { keepEndpoint: keepRoamedEndpoint() });
    const total = performance.now() - t0;
    if (ch.added.length !== 1 || gets.length !== 2) throw new Error(`breakdown: added ${ch.added.length}, gets ${gets.length}`);
    acc.total!.push(total);
    acc.getIo!.push(gets[0]!.io);
    acc.parse!.push(gets[0]!.parse + gets[1]!.parse);
    acc.verifyGet!.push(gets[1]!.io);
    acc.set!.push(setMs);
    acc.diffs!.push(total - gets[0]!.io - gets[1]!.io - gets[0]!.parse - gets[1]!.parse - setMs);
    await applyWithDriver(uapi, d); // remove it again (not timed)
  }
  return Object.fromEntries(Object.entries(acc).map(([k, v]) => [k, median(v)]));
}

async function uapiChild(): Promise<void> {
  const ifname = flag("ifname", "");
  const { loadAddon } = await import("../src/kernel/addon.ts");
  const kernel = await createKernel({ backend: "userspace", addon: loadAddon() });
  const uapi = new UapiClient();
  const sock = uapi.socketPath(ifname);
  try {
    const rig = makeRig(kernel, ifname, 51820, 0);
    await loadPeers(rig, 1); // creates the interface (wireguard-go under the supervisor)
    const wg = childrenOf(process.pid).filter((p) => commOf(p) === "wireguard-go");
    console.log(JSON.stringify({ wgpids: wg })); // the parent kills these by PID whatever happens
    const sequence = [...LEVELS, LEVELS[0]!];
    const rows: string[] = [];
    let base = Number.NaN;
    let floorAll: number[] = [];
    for (const [li, n] of sequence.entries()) {
      const tl = performance.now();
      await loadPeers(rig, n);
      const loadMs = performance.now() - tl;
      for (let w = 0; w < 2; w++) {
        await handlerOnce(rig);
        await rawFloorOnce(sock);
      }
      const h: number[] = [];
      const f: number[] = [];
      for (let it = 0; it < ITERS; it++) {
        if (it % 2 === 0) {
          f.push(await rawFloorOnce(sock));
          h.push(await handlerOnce(rig));
        } else {
          h.push(await handlerOnce(rig));
          f.push(await rawFloorOnce(sock));
        }
      }
      floorAll = floorAll.concat(f);
      const m = median(h);
      if (li === 0) base = m;
      const bd = await uapiBreakdown(uapi, rig);
      const st = await handlerSteps(rig);
      const rss = wgRssKiB(wg[0]);
      rows.push(
        [
          `${n}${li === sequence.length - 1 ? " (again)" : ""}`,
          ms(m),
          ms(quantile(h, 0.9)),
          ratioText(m, base),
          ms(median(f)),
          ratioText(m, median(f)),
          `applyDevice ${ms(bd.total!)} = get ${ms(bd.getIo!)} + parse×2 ${ms(bd.parse!)} + diff×2 ${ms(bd.diffs!)} + set ${ms(bd.set!)} + verify-get ${ms(bd.verifyGet!)}`,
          `whole-mesh path only: filter ${ms(st.filter!)}, cache ${ms(st.cache!)}, desired ${ms(st.desired!)}`,
          `bulk load ${ms(loadMs)}, wg-go RSS ${(rss / 1024).toFixed(0)} MiB`,
        ].join("\t"),
      );
    }
    console.log(`\n== UAPI backend (wireguard-go ${ifname}): peer_added through handlers.ts → MeshController → applyDevice (median of ${ITERS}) ==`);
    console.log(["existing peers", "median", "p90", `ratio to ${LEVELS[0]}`, "raw set=1 floor (new connection)", "ratio to floor", "whole-mesh applyDevice breakdown (reconcile path, median of 5)", "", ""].join("\t"));
    for (const r of rows) console.log(r);
    console.log(`raw single-peer set=1 floor over all levels: median ${ms(median(floorAll))}, p90 ${ms(quantile(floorAll, 0.9))}`);
  } finally {
    await kernel.close();
  }
}

function wgRssKiB(pid: number | undefined): number {
  return pid === undefined ? 0 : (sampleProc(pid)?.rssKiB ?? 0);
}

// ---------------------------------------------------------------------------------------------
// Parent: fake in process, then the UAPI child inside a throw-away namespace

async function uapiParent(): Promise<void> {
  if (process.getuid?.() !== 0 || !Bun.which("wireguard-go") || !Bun.which("ip")) {
    console.log("\n== UAPI backend: skipped (needs root, ip and wireguard-go) ==");
    return;
  }
  const sfx = suffix();
  const ns = `pxbpa-${sfx}`;
  const ifname = `pxbpa${sfx}`;
  const wgPids: number[] = [];
  let child: Proc | undefined;
  try {
    sh(["ip", "netns", "add", ns]);
    sh(["ip", "-n", ns, "link", "set", "lo", "up"]);
    child = new Proc(
      Bun.spawn(["ip", "netns", "exec", ns, BUN, import.meta.path, "--child-uapi", "--ifname", ifname, "--iters", String(ITERS), "--levels", LEVELS.join(",")], {
        stdout: "pipe",
        stderr: "pipe",
      }),
    );
    // Record wireguard-go PIDs as soon as the child reports them.
    const watch = setInterval(() => {
      const m = /\{"wgpids":\[([\d,]*)\]\}/.exec(child!.out);
      if (m && wgPids.length === 0 && m[1]) wgPids.push(...m[1].split(",").map(Number));
    }, 50);
    const code = await child.exited;
    clearInterval(watch);
    await Bun.sleep(50);
    process.stdout.write(child.out.replace(/^\{"wgpids".*\n/m, ""));
    if (code !== 0) {
      console.error(child.err);
      throw new Error(`UAPI child exited ${code}`);
    }
  } finally {
    if (child) await child.kill(3_000);
    for (const pid of wgPids) killPid(pid, "SIGKILL");
    sh(["ip", "netns", "del", ns], true);
    const s = join(DEFAULT_SOCKET_DIR, `${ifname}.sock`);
    if (existsSync(s)) rmSync(s, { force: true });
  }
}

try {
  if (CHILD) await uapiChild();
  else {
    console.log(`agent-peer-added: levels ${LEVELS.join(", ")}; ${ITERS} iterations each`);
    await fakeBench();
    if (!hasFlag("no-uapi")) await uapiParent();
  }
} finally {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
}
