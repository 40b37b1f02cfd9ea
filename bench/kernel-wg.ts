/**
 * Benchmark: the userspace backend's applyDevice (UAPI, with read-back verification) against
 * `wg setconf` / `wg syncconf` of the same configuration, both talking to wireguard-go.
 * "+1 peer" is measured both ways: `applyPeers` (the agent's event fast path, docs/decisions.md
 * "Mesh apply fast path": the one-peer delta, no read, no read-back — O(changed)) and
 * `applyDevice` of the whole desired device (read, diff, set, read-back — the reconcile path).
 * Root only: runs two wireguard-go processes inside a throw-away network namespace (the UAPI
 * socket directory is shared, so the test process reaches both) and removes everything after.
 *
 *   node_modules/.bin/bun run bench/kernel-wg.ts [--runs 3]
 */
import { randomBytes } from "node:crypto";
import { rmSync, writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createKernel } from "../src/kernel/index.ts";
import { generateKeyPair } from "../src/kernel/keys.ts";
import type { DesiredDevice, DesiredPeer } from "../src/kernel/types.ts";
import { WireguardGo } from "../src/kernel/wireguard-go.ts";

const runsArg = process.argv.indexOf("--runs");
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 3;
const WG_GO = Bun.which("wireguard-go");
const WG = Bun.which("wg");
if (process.getuid?.() !== 0 || !WG_GO || !WG) {
  console.error("kernel-wg bench needs root, wireguard-go and wg");
  process.exit(2);
}

const sfx = randomBytes(2).toString("hex");
const ns = `pxbench-${sfx}`;
const ifU = `wgb${sfx}u`; // driven by applyDevice
const ifW = `wgb${sfx}w`; // driven by wg setconf/syncconf
const tmp = mkdtempSync(join(tmpdir(), "plexd-bench-"));
const key = generateKeyPair();

function sh(argv: string[]): void {
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")} → ${r.exitCode}: ${r.stderr.toString()}`);
}

function peers(n: number, offset = 0): DesiredPeer[] {
  return Array.from({ length: n }, (_, j) => j + offset).map((i) => ({
    publicKey: randomBytes(32).toString("base64"),
    allowedIps: [`10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`],
    endpoint: `192.0.2.${1 + (i % 250)}:51820`,
    persistentKeepalive: 25,
  }));
}

function wgConf(ps: DesiredPeer[]): string {
  const out = [`[Interface]`, `PrivateKey = ${key.privateKey}`, `ListenPort = 51821`, ""]; // 51821: both devices share one netns
  for (const p of ps) {
    out.push("[Peer]", `PublicKey = ${p.publicKey}`, `AllowedIPs = ${p.allowedIps.join(", ")}`);
    if (p.endpoint) out.push(`Endpoint = ${p.endpoint}`);
    out.push(`PersistentKeepalive = ${p.persistentKeepalive ?? 0}`, "");
  }
  return out.join("\n");
}

/**
 * Async on purpose: a spawnSync would stall the event loop, and with it the supervisor's drain
 * of wireguard-go's output (one log line per peer that cannot send a handshake), until
 * wireguard-go blocks on a full pipe and wg(8) waits on it forever.
 */
async function wgRun(sub: "setconf" | "syncconf", ps: DesiredPeer[]): Promise<number> {
  const file = join(tmp, "wg.conf");
  writeFileSync(file, wgConf(ps), { mode: 0o600 });
  const t0 = performance.now();
  const p = Bun.spawn([WG!, sub, ifW, file], { stdout: "ignore", stderr: "pipe" });
  const code = await p.exited;
  const ms = performance.now() - t0;
  if (code !== 0) throw new Error(`wg ${sub} → ${code}: ${await new Response(p.stderr).text()}`);
  return ms;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (ms: number) => `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;

const sups: WireguardGo[] = [];
const kernel = await createKernel({ backend: "userspace", addon: null });
try {
  sh(["ip", "netns", "add", ns]);
  for (const ifname of [ifU, ifW]) {
    const s = new WireguardGo({ ifname, argv: ["ip", "netns", "exec", ns, WG_GO, "-f", ifname] });
    sups.push(s);
    await s.start();
  }
  const dev = (ps: DesiredPeer[]): DesiredDevice => ({ ifname: ifU, privateKey: key.privateKey, listenPort: 51820, peers: ps });
  const rows: string[][] = [];
  for (const n of [1000, 5000]) {
    const full = peers(n);
    const tApply: number[] = [];
    const tSet: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      await kernel.applyDevice(dev([]));
      await wgRun("setconf", []);
      const t0 = performance.now();
      const c = await kernel.applyDevice(dev(full));
      tApply.push(performance.now() - t0);
      if (c.added.length !== n) throw new Error(`applyDevice added ${c.added.length}, want ${n}`);
      tSet.push(await wgRun("setconf", full));
    }
    rows.push([`${n} peers from empty`, fmt(median(tApply)), `wg setconf ${fmt(median(tSet))}`, `${(median(tApply) / median(tSet)).toFixed(2)}x`]);

    if (n === 5000) {
      const tNoop: number[] = [];
      const tAdd: number[] = [];
      const tFast: number[] = [];
      const tSync: number[] = [];
      for (let r = 0; r < RUNS; r++) {
        let t0 = performance.now();
        if (!(await kernel.applyDevice(dev(full))).empty) throw new Error("expected no changes");
        tNoop.push(performance.now() - t0);
        const plus = [...full, ...peers(1, n + r)];
        t0 = performance.now();
        const c = await kernel.applyDevice(dev(plus));
        tAdd.push(performance.now() - t0);
        if (c.added.length !== 1) throw new Error(`added ${c.added.length}, want 1`);
        await kernel.applyDevice(dev(full));
        // The event fast path: the same one-peer delta as one add section.
        const one = peers(1, n + RUNS + r)[0]!;
        t0 = performance.now();
        await kernel.applyPeers(ifU, [{ publicKey: one.publicKey, presharedKey: null, endpoint: one.endpoint!, persistentKeepalive: 25, replaceAllowedIps: true, allowedIps: one.allowedIps }]);
        tFast.push(performance.now() - t0);
        const check = await kernel.readDevice(ifU);
        if (check?.peers.length !== n + 1 || !check.peers.some((p) => p.publicKey === one.publicKey)) throw new Error("applyPeers did not add the peer");
        await kernel.applyDevice(dev(full));
        await wgRun("setconf", full);
        tSync.push(await wgRun("syncconf", plus));
      }
      rows.push([`+1 peer on ${n}, applyPeers (event fast path)`, fmt(median(tFast)), `wg syncconf ${fmt(median(tSync))}`, `${(median(tFast) / median(tSync)).toFixed(2)}x`]);
      rows.push([`+1 peer on ${n}, applyDevice (whole device)`, fmt(median(tAdd)), `wg syncconf ${fmt(median(tSync))}`, `${(median(tAdd) / median(tSync)).toFixed(2)}x`]);
      rows.push([`no change on ${n}`, fmt(median(tNoop)), "", ""]);
    }
  }
  console.log(`kernel-wg (userspace backend, wireguard-go; median of ${RUNS}; applyDevice includes read, diff, set, read-back; applyPeers is one write)`);
  console.log(["case", "applyDevice", "wg(8)", "ratio"].join("\t"));
  for (const r of rows) console.log(r.join("\t"));
} finally {
  await Promise.allSettled(sups.map((s) => s.stop()));
  await kernel.close();
  Bun.spawnSync(["ip", "netns", "del", ns]);
  rmSync(tmp, { recursive: true, force: true });
}
