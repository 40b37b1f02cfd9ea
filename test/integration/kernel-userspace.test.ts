/**
 * Userspace WireGuard backend against real wireguard-go (root): two network namespaces joined
 * by a veth pair (192.0.2.0/24, TEST-NET-1, only inside the namespaces), wireguard-go in each,
 * configured only through the Kernel's UAPI backend. Addresses and routes are set with `ip`
 * from the test (the addon's rtnl works in the agent's own namespace, not in these).
 *
 * The UAPI socket directory is shared across network namespaces, so interface names carry a
 * per-run suffix; the test process talks to both sockets from the host namespace.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { createKernel } from "../../src/kernel/index.ts";
import { generateKeyPair } from "../../src/kernel/keys.ts";
import type { DesiredDevice, Kernel } from "../../src/kernel/types.ts";
import { WireguardGo } from "../../src/kernel/wireguard-go.ts";

const WG_GO = Bun.which("wireguard-go");
const PING = Bun.which("ping");
const canRun = process.getuid?.() === 0 && WG_GO !== null && Bun.which("ip") !== null;

const sfx = randomBytes(2).toString("hex");
const nsA = `pxa-${sfx}`;
const nsB = `pxb-${sfx}`;
const vethA = `pxva${sfx}`;
const vethB = `pxvb${sfx}`;
const wgA = `wgt${sfx}a`;
const wgB = `wgt${sfx}b`;
const octet = 1 + (randomBytes(1)[0]! % 250);
const meshA = `10.100.${octet}.1`;
const meshB = `10.100.${octet}.2`;
const keyA = generateKeyPair();
const keyB = generateKeyPair();

function sh(argv: string[], allowFail = false): { code: number; out: string } {
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  const out = `${r.stdout.toString()}${r.stderr.toString()}`;
  if (r.exitCode !== 0 && !allowFail) throw new Error(`${argv.join(" ")} → ${r.exitCode}: ${out}`);
  return { code: r.exitCode ?? -1, out };
}

/** ping's exit code: 0 replies, 1 no reply (anything else is a broken test, so it throws). */
async function ping(ns: string, dst: string, count: number, waitSec: number): Promise<number> {
  const p = Bun.spawn(["ip", "netns", "exec", ns, PING!, "-n", "-q", "-c", String(count), "-W", String(waitSec), dst], {
    stdout: "pipe",
    stderr: "pipe",
  });
  const code = await p.exited;
  const out = `${await new Response(p.stdout).text()}${await new Response(p.stderr).text()}`;
  // ping says "transmitted" only when it ran; `ip netns exec` reports a failed exec with 1 too.
  if (code > 1 || !out.includes("transmitted")) throw new Error(`ping did not run (${code}): ${out}`);
  return code;
}

const restarted: string[] = [];
let kernel: Kernel;
let supA: WireguardGo;
let supB: WireguardGo;

const desiredB: DesiredDevice = {
  ifname: wgB,
  privateKey: keyB.privateKey,
  listenPort: 51820,
  peers: [{ publicKey: keyA.publicKey, allowedIps: [`${meshA}/32`] }],
};
const desiredA: DesiredDevice = {
  ifname: wgA,
  privateKey: keyA.privateKey,
  listenPort: 51820,
  peers: [{ publicKey: keyB.publicKey, allowedIps: [`${meshB}/32`], endpoint: "192.0.2.2:51820", persistentKeepalive: 0 }],
};

function meshIp(ns: string, ifname: string, ip: string, peerIp: string): void {
  sh(["ip", "-n", ns, "link", "set", ifname, "mtu", "1420", "up"]);
  sh(["ip", "-n", ns, "addr", "replace", `${ip}/32`, "dev", ifname]);
  sh(["ip", "-n", ns, "route", "replace", `${peerIp}/32`, "dev", ifname, "src", ip]);
}

describe.skipIf(!canRun)("userspace WireGuard backend (wireguard-go, netns)", () => {
  beforeAll(async () => {
    // Without ping the reachability checks would prove nothing (iputils-ping is in build/setup).
    if (PING === null) throw new Error("ping not installed (apt-get install iputils-ping)");
    sh(["ip", "netns", "add", nsA]);
    sh(["ip", "netns", "add", nsB]);
    sh(["ip", "link", "add", vethA, "netns", nsA, "type", "veth", "peer", "name", vethB, "netns", nsB]);
    sh(["ip", "-n", nsA, "addr", "add", "192.0.2.1/24", "dev", vethA]);
    sh(["ip", "-n", nsB, "addr", "add", "192.0.2.2/24", "dev", vethB]);
    for (const [ns, v] of [[nsA, vethA], [nsB, vethB]] as const) {
      sh(["ip", "-n", ns, "link", "set", "lo", "up"]);
      sh(["ip", "-n", ns, "link", "set", v, "up"]);
    }
    kernel = await createKernel({ backend: "userspace", addon: null });
    const mk = (ns: string, ifname: string) =>
      new WireguardGo({
        ifname,
        argv: ["ip", "netns", "exec", ns, WG_GO!, "-f", ifname],
        backoffInitialMs: 200,
        onRestart: (name) => {
          restarted.push(name);
        },
      });
    supA = mk(nsA, wgA);
    supB = mk(nsB, wgB);
    await Promise.all([supA.start(), supB.start()]);
    meshIp(nsA, wgA, meshA, meshB);
    meshIp(nsB, wgB, meshB, meshA);
  });

  afterAll(async () => {
    await Promise.allSettled([supA?.stop(), supB?.stop(), kernel?.close()]);
    sh(["ip", "netns", "del", nsA], true);
    sh(["ip", "netns", "del", nsB], true);
    expect(existsSync(`/var/run/wireguard/${wgA}.sock`)).toBe(false);
    expect(existsSync(`/var/run/wireguard/${wgB}.sock`)).toBe(false);
  });

  test("fresh devices read back empty; absent device reads null", async () => {
    const a = await kernel.readDevice(wgA);
    expect(a).toMatchObject({ ifname: wgA, privateKey: null, peers: [] });
    expect(await kernel.readDevice(`wgt${sfx}z`)).toBeNull();
    expect(supA.pid).toBeGreaterThan(0);
  });

  test("configure responder then initiator; ping both ways", async () => {
    const cb = await kernel.applyDevice(desiredB);
    expect(cb).toMatchObject({ privateKey: true, listenPort: true, added: [keyA.publicKey], empty: false });
    const ca = await kernel.applyDevice(desiredA);
    expect(ca.added).toEqual([keyB.publicKey]);

    expect(await ping(nsA, meshB, 3, 2)).toBe(0);
    expect(await ping(nsB, meshA, 3, 2)).toBe(0);

    const a = await kernel.readDevice(wgA);
    expect(a?.publicKey).toBe(keyA.publicKey);
    expect(a?.listenPort).toBe(51820);
    const pb = a?.peers.find((p) => p.publicKey === keyB.publicKey);
    expect(pb?.endpoint).toBe("192.0.2.2:51820");
    expect(pb?.allowedIps).toEqual([`${meshB}/32`]);
    expect(pb?.lastHandshakeMs).not.toBeNull();
    expect(Math.abs(Date.now() - (pb?.lastHandshakeMs ?? 0))).toBeLessThan(60_000);
    expect(pb?.rxBytes).toBeGreaterThan(0);
    expect(pb?.txBytes).toBeGreaterThan(0);
    // The responder learned the initiator's endpoint by roaming.
    const b = await kernel.readDevice(wgB);
    expect(b?.peers[0]?.endpoint).toBe("192.0.2.1:51820");
  });

  test("same desired state again: no changes", async () => {
    expect((await kernel.applyDevice(desiredA)).empty).toBe(true);
    expect((await kernel.applyDevice(desiredB)).empty).toBe(true);
  });

  test("update fields: keepalive and allowed IPs (as a set)", async () => {
    const next: DesiredDevice = {
      ...desiredA,
      peers: [{ ...desiredA.peers[0]!, persistentKeepalive: 25, allowedIps: [`${meshB}/32`, "10.200.0.0/16"] }],
    };
    const c = await kernel.applyDevice(next);
    expect(c.updated).toEqual([{ publicKey: keyB.publicKey, fields: ["allowed_ips", "keepalive"] }]);
    const a = await kernel.readDevice(wgA);
    expect(new Set(a?.peers[0]?.allowedIps)).toEqual(new Set([`${meshB}/32`, "10.200.0.0/16"]));
    expect(a?.peers[0]?.persistentKeepalive).toBe(25);
    expect((await kernel.applyDevice(desiredA)).updated).toEqual([{ publicKey: keyB.publicKey, fields: ["allowed_ips", "keepalive"] }]);
  });

  test("remove the peer through applyDevice: ping fails", async () => {
    const c = await kernel.applyDevice({ ...desiredA, peers: [] });
    expect(c.removed).toEqual([keyB.publicKey]);
    expect((await kernel.readDevice(wgA))?.peers).toEqual([]);
    expect(await ping(nsA, meshB, 2, 1)).not.toBe(0);
  });

  test("wireguard-go killed: supervisor restarts it, onRestart re-applies, ping works again", async () => {
    await kernel.applyDevice(desiredA);
    expect(await ping(nsA, meshB, 2, 2)).toBe(0);
    const oldPid = supA.pid!;
    process.kill(oldPid, "SIGKILL");
    const deadline = Date.now() + 10_000;
    while (!restarted.includes(wgA) && Date.now() < deadline) await Bun.sleep(50);
    expect(restarted).toContain(wgA);
    expect(supA.pid).not.toBe(oldPid);
    expect(supA.restarts).toBe(1);
    // A new wireguard-go starts empty with a new TUN: re-apply (what onRestart's owner does).
    expect((await kernel.readDevice(wgA))?.peers).toEqual([]);
    meshIp(nsA, wgA, meshA, meshB);
    expect((await kernel.applyDevice(desiredA)).added).toEqual([keyB.publicKey]);
    expect(await ping(nsA, meshB, 3, 2)).toBe(0);
  });

  test("stop kills by PID and removes the socket", async () => {
    const pid = supB.pid!;
    await supB.stop();
    expect(() => process.kill(pid, 0)).toThrow();
    expect(existsSync(`/var/run/wireguard/${wgB}.sock`)).toBe(false);
    expect(await kernel.readDevice(wgB)).toBeNull();
    await expect(kernel.applyDevice(desiredB)).rejects.toMatchObject({ code: "NO_DEVICE" });
  });
});
