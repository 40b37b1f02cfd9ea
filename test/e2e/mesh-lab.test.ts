/**
 * The lab itself (test/helpers/lab.ts), independent of the agent: two namespaces on the bridge,
 * the real control plane, plain wireguard-go per node in its own mount namespace (both named
 * plexd0), configured from outside with `wg`/`ip` and registered through the CP API the way the
 * agent would. Proves the plumbing the agent tests rely on, and that cleanup() leaves nothing
 * behind (namespaces, links, /run/wireguard, processes, temp dir).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { generateKeyPairSync } from "node:crypto";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Lab, type LabNode } from "../helpers/lab.ts";
import { bindingResponse } from "../helpers/stun.ts";
import { waitFor } from "../helpers/lab-util.ts";
import { BUN, REPO_ROOT } from "../helpers/netns.ts";

const why = await Lab.unavailable({ needAgent: false });
const labs: Lab[] = [];
afterAll(async () => {
  for (const l of labs) await l.cleanup();
});

function x25519(): { priv: string; pub: string } {
  const { privateKey, publicKey } = generateKeyPairSync("x25519");
  const d = (privateKey.export({ format: "jwk" }) as { d: string }).d;
  const x = (publicKey.export({ format: "jwk" }) as { x: string }).x;
  return { priv: Buffer.from(d, "base64url").toString("base64"), pub: Buffer.from(x, "base64url").toString("base64") };
}

async function register(lab: Lab, node: LabNode, pub: string): Promise<{ node_id: string; mesh_ip: string }> {
  const token = await lab.createToken();
  const res = await fetch(`${lab.cp!.url}/v1/register`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ token, public_key: pub, hostname: node.name, metadata: { os: "linux" } }),
    tls: { ca: await Bun.file(lab.cp!.caFile).text() },
  } as RequestInit);
  expect(res.status).toBe(201);
  return (await res.json()) as { node_id: string; mesh_ip: string };
}

describe("STUN responder", () => {
  test("answers a binding request with the XOR-mapped source address", () => {
    const req = new Uint8Array(20);
    const v = new DataView(req.buffer);
    v.setUint16(0, 0x0001);
    v.setUint32(4, 0x2112a442);
    req.set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], 8);
    const res = bindingResponse(req, "192.0.2.17", 51820)!;
    const r = new DataView(res.buffer);
    expect(r.getUint16(0)).toBe(0x0101);
    expect([...res.subarray(8, 20)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(r.getUint16(20)).toBe(0x0020);
    expect(r.getUint16(26) ^ 0x2112).toBe(51820);
    expect(((r.getUint32(28) ^ 0x2112a442) >>> 0).toString(16)).toBe("c0000211");
    expect(bindingResponse(new Uint8Array(10), "192.0.2.1", 1)).toBeNull();
  });
});

describe.skipIf(why !== null)(`mesh lab plumbing with plain wireguard-go${why ? ` (skipped: ${why})` : ""}`, () => {
  test("two nodes, isolated UAPI sockets, mesh ping, then nothing left behind", async () => {
    const wgBefore = existsSync("/run/wireguard") ? readdirSync("/run/wireguard").sort() : [];
    const lab = await Lab.create();
    labs.push(lab);
    await lab.startCp();
    const a = await lab.addNode({ token: false });
    const b = await lab.addNode({ token: false });
    const nodes = [a, b];
    const keys = new Map(nodes.map((n) => [n, x25519()]));

    for (const n of nodes) {
      lab.startAgent(n, { argv: ["wireguard-go", "-f", n.iface] });
    }
    // Both nodes use the name plexd0: only possible because each has its own /run/wireguard.
    for (const n of nodes) {
      await waitFor(`${n.name} UAPI socket`, async () => (await lab.exec(n, ["test", "-S", `/run/wireguard/${n.iface}.sock`])).code === 0, {
        timeoutMs: 10_000,
        intervalMs: 100,
      });
    }
    expect(existsSync(`/run/wireguard/${a.iface}.sock`) && !wgBefore.includes(`${a.iface}.sock`)).toBe(false);

    // The lab's STUN responder sees the node's bridge address (what the agent reports as endpoint).
    const probe = await lab.exec(a, [BUN, join(REPO_ROOT, "test/helpers/stun-probe.ts"), lab.hostAddr, "3478", "40001"]);
    expect(probe.stdout.trim()).toBe(`${a.addr}:40001`);

    const reg = new Map<LabNode, { node_id: string; mesh_ip: string }>();
    for (const n of nodes) reg.set(n, await register(lab, n, keys.get(n)!.pub));
    for (const n of nodes) {
      const r = await lab.registration(n);
      expect(r?.id).toBe(reg.get(n)!.node_id);
      expect(n.meshIp).toBe(reg.get(n)!.mesh_ip);
    }
    for (const n of nodes) {
      const other = n === a ? b : a;
      const keyFile = join(n.dir, "wg.key");
      writeFileSync(keyFile, `${keys.get(n)!.priv}\n`, { mode: 0o600 });
      const set = await lab.exec(n, [
        "wg", "set", n.iface, "private-key", keyFile, "listen-port", "51820",
        "peer", keys.get(other)!.pub, "allowed-ips", `${other.meshIp}/32`, "endpoint", `${other.addr}:51820`,
      ]);
      expect(set.stderr).toBe("");
      expect(set.code).toBe(0);
      for (const argv of [
        ["ip", "addr", "add", `${n.meshIp}/32`, "dev", n.iface],
        ["ip", "link", "set", n.iface, "mtu", "1420", "up"],
        ["ip", "route", "add", "10.100.0.0/16", "dev", n.iface, "src", n.meshIp!],
      ]) {
        const r = await lab.exec(n, argv);
        expect(`${argv.join(" ")}: ${r.code} ${r.stderr}`).toBe(`${argv.join(" ")}: 0 `);
      }
    }
    const ms = await lab.waitMesh(nodes, 20_000);
    const matrix = await lab.pingMatrix(nodes);
    expect(matrix.map((m) => `${m.from.name}->${m.to.name}:${m.result.ok}`)).toEqual([
      `${a.name}->${b.name}:true`,
      `${b.name}->${a.name}:true`,
    ]);
    const dump = await lab.wgDump(a);
    expect(dump?.peers[0]?.publicKey).toBe(keys.get(b)!.pub);
    expect(dump?.peers[0]?.latestHandshake).toBeGreaterThan(0);
    expect(ms).toBeLessThan(20_000);

    // A stopped "agent" takes its namespace's processes with it.
    const stopped = await lab.stopAgent(b, "SIGTERM", 5000);
    expect(stopped?.killed).toBe(false);
    expect(await lab.netnsPids(b.netns)).toEqual([]);

    await lab.cleanup();
    expect(await lab.leftovers()).toEqual([]);
    const ns = (await Bun.$`ip netns list`.text()).split("\n");
    expect(ns.filter((l) => l.startsWith(`plx${lab.suffix}`))).toEqual([]);
    const links = await Bun.$`ip -o link show`.text();
    expect(links).not.toContain(`plx${lab.suffix}`);
    const wgAfter = existsSync("/run/wireguard") ? readdirSync("/run/wireguard").sort() : [];
    expect(wgAfter.filter((f) => !wgBefore.includes(f) && f.startsWith(a.iface))).toEqual([]);
  }, 90_000);
});
