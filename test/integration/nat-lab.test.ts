/**
 * NAT traversal in a lab of network namespaces (root; topology in nat-lab.ts): STUN from the
 * WireGuard listen port while wireguard-go holds it (raw socket), classification, endpoint
 * exchange through a fake CP, direct WireGuard connectivity through two NATs, and recovery after
 * the NAT mapping rebinds.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, unlinkSync } from "node:fs";
import { resolve } from "node:path";
import { createKernel } from "../../src/kernel/index.ts";
import { generateKeyPair } from "../../src/kernel/keys.ts";
import type { Kernel } from "../../src/kernel/types.ts";
import { UapiClient } from "../../src/kernel/uapi.ts";
import { WireguardGo } from "../../src/kernel/wireguard-go.ts";
import type { NatCycle, NatState } from "../../src/nat/index.ts";
import { BUN, REPO_ROOT, run, type Netns } from "../helpers/netns.ts";
import { buildLab, killPid, renumberWan, STUN_SERVERS, teardownLab, type Lab } from "./nat-lab.ts";
import type { RunnerArgs } from "./nat-runner.ts";

const WG_GO = Bun.which("wireguard-go");
const canRun =
  process.getuid?.() === 0 && WG_GO !== null && Bun.which("stund") !== null && Bun.which("nft") !== null && Bun.which("ping") !== null;

const RUNNER = resolve(REPO_ROOT, "test/integration/nat-runner.ts");
const PORT = 51820;
const REFRESH_MS = 3000;
const STUN_TIMEOUT_MS = 2000;
const sfx = randomBytes(2).toString("hex");
const cpSocket = `/tmp/pxn-cp-${sfx}.sock`;
const wgA = `wgn${sfx}a`;
const wgB = `wgn${sfx}b`;
const octet = 1 + (randomBytes(1)[0]! % 250);
const meshA = `10.100.${octet}.1`;
const meshB = `10.100.${octet}.2`;
const keyA = generateKeyPair();
const keyB = generateKeyPair();

type CycleLine = { event: "cycle"; result: NatCycle; state: NatState };

/** A nat-runner process in a namespace; collects its cycle lines. */
class Runner {
  readonly lines: CycleLine[] = [];
  readonly proc: ReturnType<typeof Bun.spawn>;
  private stderr = "";
  constructor(ns: Netns, args: RunnerArgs) {
    this.proc = Bun.spawn(["ip", "netns", "exec", ns.name, BUN, RUNNER, JSON.stringify(args)], { stdout: "pipe", stderr: "pipe" });
    void this.pump();
    void new Response(this.proc.stderr as ReadableStream).text().then((t) => (this.stderr = t));
  }
  private async pump(): Promise<void> {
    let buf = "";
    for await (const chunk of this.proc.stdout as ReadableStream<Uint8Array>) {
      buf += new TextDecoder().decode(chunk);
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.startsWith("{")) this.lines.push(JSON.parse(line) as CycleLine);
      }
    }
  }
  async waitFor(pred: (l: CycleLine) => boolean, timeoutMs: number, what: string): Promise<CycleLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; lines: ${JSON.stringify(this.lines.map((l) => l.result))} stderr: ${this.stderr}`);
      await Bun.sleep(50);
    }
  }
  kill(): void {
    killPid(this.proc.pid);
  }
}

async function once(ns: Netns, args: Omit<RunnerArgs, "once">): Promise<CycleLine> {
  const r = new Runner(ns, { ...args, once: true });
  const code = await r.proc.exited;
  const line = r.lines[0];
  if (code !== 0 || !line) throw new Error(`runner in ${ns.name} exited ${code} without a cycle`);
  return line;
}

/** ping exit code (0 replies, 1 none); anything else is a broken test. */
async function ping(ns: Netns, dst: string): Promise<number> {
  const r = await run(["ip", "netns", "exec", ns.name, "ping", "-n", "-q", "-c", "1", "-W", "1", dst]);
  if (r.code > 1 || !r.stdout.includes("transmitted")) throw new Error(`ping did not run (${r.code}): ${r.stdout}${r.stderr}`);
  return r.code;
}

async function pingUntil(ns: Netns, dst: string, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if ((await ping(ns, dst)) === 0) return Date.now() - t0;
  }
  throw new Error(`no ping reply from ${dst} in ${ns.name} within ${timeoutMs} ms`);
}

async function peerEndpoint(uapi: UapiClient, ifname: string, key: string): Promise<string | null> {
  const d = await uapi.get(ifname);
  return d?.peers.find((p) => p.publicKey === key)?.endpoint ?? null;
}

async function waitEndpoint(uapi: UapiClient, ifname: string, key: string, want: string, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const ep = await peerEndpoint(uapi, ifname, key);
    if (ep === want) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) throw new Error(`${ifname}: endpoint ${ep}, wanted ${want}`);
    await Bun.sleep(100);
  }
}

describe.skipIf(!canRun)("NAT lab (netns, nftables NAT, stund, wireguard-go)", () => {
  let lab: Lab | undefined;
  let kernel: Kernel | undefined;
  const sups: WireguardGo[] = [];
  const runners: Runner[] = [];
  let server: ReturnType<typeof Bun.serve> | undefined;
  const uapi = new UapiClient({ timeoutMs: 5000 });
  /** Fake CP: last reported endpoint per node; answers with the other nodes' endpoints. */
  const reported = new Map<string, { public_endpoint: string; nat_type: string; at: number }>();
  const reports: Array<{ node: string; public_endpoint: string; at: number }> = [];

  beforeAll(async () => {
    lab = await buildLab();
    server = Bun.serve({
      unix: cpSocket,
      async fetch(req) {
        const m = /^\/v1\/nodes\/([^/]+)\/endpoint$/.exec(new URL(req.url).pathname);
        if (req.method !== "PUT" || !m) return new Response("not found", { status: 404 });
        const node = m[1]!;
        const body = (await req.json()) as { public_endpoint: string; nat_type: string };
        reported.set(node, { ...body, at: Date.now() });
        reports.push({ node, public_endpoint: body.public_endpoint, at: Date.now() });
        const peer_endpoints = [...reported].filter(([id]) => id !== node).map(([peer_id, r]) => ({ peer_id, endpoint: r.public_endpoint }));
        // An id this node does not know must be ignored by it (§5.4).
        peer_endpoints.push({ peer_id: "n_unknown", endpoint: "198.51.100.99:51820" });
        return Response.json({ peer_endpoints });
      },
    });

    kernel = await createKernel({ backend: "userspace", addon: null });
    for (const [site, ifname, key, peerKey, ip, peerIp] of [
      [lab.sites.A, wgA, keyA, keyB, meshA, meshB],
      [lab.sites.B, wgB, keyB, keyA, meshB, meshA],
    ] as const) {
      const sup = new WireguardGo({ ifname, argv: ["ip", "netns", "exec", site.ns.name, WG_GO!, "-f", ifname], backoffInitialMs: 200 });
      sups.push(sup);
      await sup.start();
      // No endpoint yet: the STUN exchange provides it.
      await kernel.applyDevice({ ifname, privateKey: key.privateKey, listenPort: PORT, peers: [{ publicKey: peerKey.publicKey, allowedIps: [`${peerIp}/32`] }] });
      await site.ns.ip("link", "set", ifname, "mtu", "1420", "up");
      await site.ns.ip("addr", "add", `${ip}/32`, "dev", ifname);
      await site.ns.ip("route", "add", `${peerIp}/32`, "dev", ifname, "src", ip);
    }
  }, 60_000);

  afterAll(async () => {
    for (const r of runners) r.kill();
    await Promise.allSettled(sups.map((s) => s.stop()));
    await kernel?.close().catch(() => undefined);
    server?.stop(true);
    if (existsSync(cpSocket)) unlinkSync(cpSocket);
    await teardownLab(lab);
    expect(existsSync(`/var/run/wireguard/${wgA}.sock`)).toBe(false);
    expect(existsSync(`/var/run/wireguard/${wgB}.sock`)).toBe(false);
    const left = await run(["ip", "netns", "list"]);
    for (const n of lab?.all ?? []) expect(left.stdout).not.toContain(n.name);
  }, 30_000);

  const base = (nodeId: string): RunnerArgs => ({ nodeId, listenPort: PORT, servers: STUN_SERVERS, timeoutMs: STUN_TIMEOUT_MS, refreshMs: REFRESH_MS });

  test("(d) host with a public address: none", async () => {
    const l = await once(lab!.pub, base("P"));
    expect(l.result).toMatchObject({ ok: true, natType: "none", publicEndpoint: `${lab!.pubIp}:${PORT}` });
    expect(l.state.mode).toBe("raw");
    expect(l.state.mappings).toHaveLength(2);
  }, 30_000);

  test("(b) behind `masquerade fully-random`: symmetric (two servers saw two ports)", async () => {
    const l = await once(lab!.sites.C.ns, base("C"));
    expect(l.result).toMatchObject({ ok: true, natType: "symmetric" });
    const [m1, m2] = l.state.mappings;
    expect(m1?.ip).toBe(lab!.sites.C.wanIp);
    expect(m2?.ip).toBe(lab!.sites.C.wanIp);
    expect(m1?.port).not.toBe(m2?.port);
    expect(l.state.publicEndpoint).toBe(`${m1?.ip}:${m1?.port}`);
  }, 30_000);

  test("(a) two endpoint-independent NATs: full_cone, endpoints exchanged, direct handshake + ping", async () => {
    const { A, B } = lab!.sites;
    // wireguard-go owns UDP 51820 in both sites: a normal socket could not send from it.
    for (const s of [A, B]) {
      const ss = await run(["ip", "netns", "exec", s.ns.name, "ss", "-Hlunp", "sport", "=", `:${PORT}`]);
      expect(ss.stdout).toContain("wireguard-go");
    }
    expect(await ping(A.ns, meshB)).toBe(1); // no endpoint yet: nothing can work

    const peersA = { B: keyB.publicKey };
    const peersB = { A: keyA.publicKey };
    const ra = new Runner(A.ns, { ...base("A"), cpSocket, ifname: wgA, peers: peersA });
    runners.push(ra);
    const la = await ra.waitFor((l) => l.result.ok, 15_000, "A discovery");
    const rb = new Runner(B.ns, { ...base("B"), cpSocket, ifname: wgB, peers: peersB });
    runners.push(rb);
    const lb = await rb.waitFor((l) => l.result.ok, 15_000, "B discovery");

    // Port preserved by masquerade = the request left from WireGuard's port (raw socket).
    expect(la.result).toMatchObject({ ok: true, natType: "full_cone", publicEndpoint: `${A.wanIp}:${PORT}` });
    expect(lb.result).toMatchObject({ ok: true, natType: "full_cone", publicEndpoint: `${B.wanIp}:${PORT}` });
    expect(la.state.mode).toBe("raw");
    expect(reported.get("A")).toMatchObject({ public_endpoint: `${A.wanIp}:${PORT}`, nat_type: "full_cone" });

    // B learned A at once; A learns B at its next refresh (≤ 1.1 × interval).
    await waitEndpoint(uapi, wgB, keyA.publicKey, `${A.wanIp}:${PORT}`, 5_000);
    await waitEndpoint(uapi, wgA, keyB.publicKey, `${B.wanIp}:${PORT}`, REFRESH_MS * 1.1 + STUN_TIMEOUT_MS + 2_000).catch((e) => {
      console.error("runner A cycles:", JSON.stringify(ra.lines.map((l) => [l.result, l.state.lastPlan, l.state.lastError])), "reports:", JSON.stringify(reports));
      throw e;
    });
    const devA = await uapi.get(wgA);
    expect(devA?.peers[0]?.persistentKeepalive).toBe(25); // NAT in the path → keepalive on
    expect(rb.lines.find((l) => l.state.lastPlan)?.state.lastPlan?.unknown).toEqual(["n_unknown"]);

    await pingUntil(A.ns, meshB, 20_000);
    expect(await ping(B.ns, meshA)).toBe(0);
    const a = await uapi.get(wgA);
    const b = await uapi.get(wgB);
    // Direct: each side talks to the other's NAT mapping, nothing in between.
    expect(a?.peers[0]).toMatchObject({ endpoint: `${B.wanIp}:${PORT}` });
    expect(b?.peers[0]).toMatchObject({ endpoint: `${A.wanIp}:${PORT}` });
    expect(a?.peers[0]?.lastHandshakeMs).not.toBeNull();
    expect(b?.peers[0]?.lastHandshakeMs).not.toBeNull();
  }, 60_000);

  test("(c) mapping rebinds (router A renumbered): refresh finds it, B's endpoint follows, ping recovers", async () => {
    const { A, B } = lab!.sites;
    const [ra, rb] = runners;
    if (!ra || !rb) throw new Error("test (a) did not leave its runners");
    const oldIp = A.wanIp;
    expect(await ping(A.ns, meshB)).toBe(0);
    const t0 = Date.now();
    await renumberWan(A, "198.51.100.21");
    const want = `198.51.100.21:${PORT}`;

    // A's next refresh (one jittered interval) discovers and reports the new mapping.
    const seen = await ra.waitFor((l) => l.result.ok && l.result.publicEndpoint === want, REFRESH_MS * 1.1 + STUN_TIMEOUT_MS * 2 + 1_000, "A's new mapping");
    expect(seen.result).toMatchObject({ changed: true, natType: "full_cone" });
    const reportedAt = reports.find((r) => r.node === "A" && r.public_endpoint === want)!.at;
    expect(reportedAt - t0).toBeLessThanOrEqual(REFRESH_MS * 1.1 + STUN_TIMEOUT_MS * 2 + 1_000);

    // B had a handshake with A seconds ago, but its endpoint for A is still the one plexd wrote
    // (no roaming happened), so the CP's newer mapping is applied (decisions.md, NAT traversal).
    const bAt = await waitEndpoint(uapi, wgB, keyA.publicKey, want, REFRESH_MS * 1.1 + STUN_TIMEOUT_MS * 2 + 1_000);
    expect(bAt).toBeGreaterThanOrEqual(0);
    const bLine = rb.lines.findLast((l) => l.state.appliedEndpoints.A === want);
    expect(bLine?.state.lastPlan?.updated).toContain("A");

    // B's write re-armed its keepalive, so B punched rB towards A's new mapping at once: no
    // wait for the 25 s keepalive timer (one lost handshake retry at most: 5 s).
    const pingMs = await pingUntil(A.ns, meshB, 20_000);
    expect(pingMs).toBeLessThan(8_000);
    expect(await ping(B.ns, meshA)).toBe(0);
    const b = await uapi.get(wgB);
    expect(b?.peers[0]?.endpoint).toBe(want);
    expect(b?.peers[0]?.endpoint).not.toContain(oldIp);
    // Recovered within one refresh interval (B's) of A's report of the new mapping, plus at
    // most one WireGuard handshake retry.
    expect(Date.now() - reportedAt).toBeLessThan(REFRESH_MS * 1.1 + STUN_TIMEOUT_MS * 2 + 8_000);
    console.error(`(c) timings: rebind→A reported ${reportedAt - t0} ms, →B endpoint set +${bAt} ms, ping after ${pingMs} ms`);
  }, 90_000);

  test("fallback transport (no raw socket): mapped IP with the listen port, type unknown", async () => {
    const l = await once(lab!.sites.C.ns, { ...base("C2"), noAddon: true });
    expect(l.result).toMatchObject({ ok: true, natType: "unknown", publicEndpoint: `${lab!.sites.C.wanIp}:${PORT}` });
    expect(l.state.mode).toBe("fallback");
    expect(l.state.mappings).toHaveLength(1);
    expect(l.state.mappings[0]?.port).not.toBe(PORT);
  }, 30_000);
});
