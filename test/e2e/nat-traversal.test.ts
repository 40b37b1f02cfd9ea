/**
 * Issue 7 acceptance, for real: the compiled reference control plane (TLS, on the public
 * segment) and compiled `plexd up` agents behind nftables NAT routers, STUN by stund reachable
 * only through the routers (topology in nat-lab.ts).
 *
 * - A (EIM, port range) and B (EIM, port-preserving): both `full_cone` at the agent and at the
 *   CP, each has the other's router WAN mapping as its endpoint, handshake + ping over mesh IPs,
 *   and the packets go directly between the two routers (conntrack on rA shows the flow).
 * - C behind `masquerade fully-random`: `symmetric`. P with a public address: `none`.
 * - Rebinding: `conntrack -F` on rA gives A a new mapping (new port); A's next refresh reports
 *   it, the CP pushes it to B, B's endpoint for A and ping B→A recover within one refresh
 *   interval (the agent re-writes its peers' endpoints after its own mapping moved, so WireGuard
 *   punches rA from the new mapping at once). On port-preserving rB a flush gives the same
 *   mapping back (observed and asserted); only the filter state is lost, and the keepalive
 *   restores it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { dirname, join } from "node:path";
import { run } from "../helpers/netns.ts";
import { CP_IP, LISTEN_PORT, natLabUnavailable, NatLab, PUB_IP, RA_PORTS, waitFor, type Site } from "./nat-lab.ts";

const REFRESH_S = 10; // config minimum
const REFRESH_MS = REFRESH_S * 1000;
/** Persistent keepalive the agents set with a NAT in the path (keepaliveFor, 0 configured). */
const KEEPALIVE_MS = 25_000;
/** One refresh interval with the ±10 % jitter. */
const ONE_REFRESH_MS = REFRESH_MS * 1.1;

const why = await natLabUnavailable();
let lab: NatLab | undefined;

function portOf(ep: string | null | undefined): number {
  return Number(/:(\d+)$/.exec(ep ?? "")?.[1] ?? NaN);
}

/** Runs fn; on failure appends the agents' log tails. */
async function withLogs<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const parts: string[] = [];
    for (const s of Object.values(lab?.sites ?? {})) parts.push(`--- agent ${s.name} ${JSON.stringify(s.agent?.exit ?? null)}:\n${await lab!.agentLog(s, 1500)}`);
    throw new Error(`${e instanceof Error ? e.message : String(e)}\n${parts.join("\n")}`, { cause: e });
  }
}

/** B's (kernel) endpoint for peer `of`. */
async function endpointAt(at: Site, of: Site): Promise<string | null> {
  const pub = (await lab!.cpNode(of))!.public_key;
  return (await lab!.wg(at)).peers.find((p) => p.publicKey === pub)?.endpoint ?? null;
}

afterAll(async () => {
  if (!lab) return;
  await lab.cleanup();
  expect(await lab.leftovers()).toEqual([]);
}, 60_000);

describe.skipIf(why !== null)(`NAT lab: real CP + compiled agents${why ? ` (skipped: ${why})` : ""}`, () => {
  beforeAll(async () => {
    lab = await NatLab.create({ refreshInterval: `${REFRESH_S}s`, log: (l) => console.error(l) });
    for (const s of Object.values(lab.sites)) await lab.startAgent(s);
    await withLogs(async () => {
      for (const s of Object.values(lab!.sites)) {
        await waitFor(`${s.name} registered`, () => lab!.cpNode(s), { timeoutMs: 60_000, intervalMs: 300, abortIf: () => lab!.deadAgents() });
      }
    });
  }, 120_000);

  test("the CP serves TLS on the public segment; its certificate covers that address", async () => {
    const cp = lab!.cp!;
    expect(cp.url).toStartWith(`https://${CP_IP}:`);
    const cert = await run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", join(dirname(cp.caFile), "server.pem")]);
    expect(cert.stdout).toContain(`IP Address:${CP_IP}`);
    // Every agent registered through its NAT with api.ca_file = the CP's CA (beforeAll).
    for (const s of Object.values(lab!.sites)) expect(s.nodeId).toMatch(/^n_/);
  });

  test("classification at the agent (status --json) and at the CP (admin nodes show)", async () => {
    const { A, B, C, P } = lab!.sites;
    const want: Record<string, string> = { A: "full_cone", B: "full_cone", C: "symmetric", P: "none" };
    await withLogs(async () => {
      for (const s of [A, B, C, P]) {
        const st = await waitFor(`${s.name} connected with a NAT result`, async () => {
          const x = await lab!.status(s);
          return x.phase === "connected" && x.nat.type !== "unknown" && x.nat.public_endpoint ? x : false;
        }, { timeoutMs: 60_000, intervalMs: 300, abortIf: () => lab!.deadAgents() });
        expect(`${s.name} ${st.nat.type}`).toBe(`${s.name} ${want[s.name]}`);
        // STUN left from WireGuard's own port through the raw socket.
        expect(st.nat.mode).toBe("raw");
        // The mapping is on the router's WAN address (P: its own address).
        expect(st.nat.public_endpoint!.startsWith(`${s.wanIp}:`)).toBe(true);
        // The CP holds what the agent reported.
        const cp = await waitFor(`CP has ${s.name}'s report`, async () => {
          const n = await lab!.cpNode(s);
          return n && n.nat_type === want[s.name] && n.endpoint === st.nat.public_endpoint ? n : false;
        }, { timeoutMs: 15_000, intervalMs: 300 });
        expect(cp.status).toBe("online");
      }
    });
    // The agent's STUN left from the port wireguard-go holds (raw socket): rB kept 51820.
    const ss = await run(["ip", "netns", "exec", B.ns.name, "ss", "-Hlunp", "sport", "=", `:${LISTEN_PORT}`]);
    expect(ss.stdout).toContain("wireguard-go");
    const a = (await lab!.status(A)).nat.public_endpoint;
    const b = (await lab!.status(B)).nat.public_endpoint;
    // rA cannot keep 51820 (mapping range) → a port from its range; rB preserves the port.
    expect(portOf(a)).toBeGreaterThanOrEqual(RA_PORTS[0]);
    expect(portOf(a)).toBeLessThanOrEqual(RA_PORTS[1]);
    expect(b).toBe(`${B.wanIp}:${LISTEN_PORT}`);
    expect((await lab!.status(P)).nat.public_endpoint).toBe(`${PUB_IP}:${LISTEN_PORT}`);
  }, 120_000);

  test("A and B (two EIM NATs) connect directly: endpoints = the other's router mapping, handshake, ping", async () => {
    const { A, B } = lab!.sites;
    await withLogs(async () => {
      const epA = (await lab!.status(A)).nat.public_endpoint!;
      const epB = (await lab!.status(B)).nat.public_endpoint!;
      await waitFor("B has A's mapping and A has B's", async () => (await endpointAt(B, A)) === epA && (await endpointAt(A, B)) === epB && true, {
        timeoutMs: 30_000,
        intervalMs: 300,
      });
      const t0 = Date.now();
      await waitFor("ping A→B and B→A over mesh IPs", async () => (await lab!.ping(A, B.meshIp!)).ok && (await lab!.ping(B, A.meshIp!)).ok, {
        timeoutMs: 40_000,
        intervalMs: 200,
      });
      console.error(`A↔B first ping after endpoints were set: ${Date.now() - t0} ms`);

      // Handshake on both sides, with the peer's router WAN mapping as endpoint: no relay, no CP.
      const keyA = (await lab!.cpNode(A))!.public_key;
      const keyB = (await lab!.cpNode(B))!.public_key;
      const pa = (await lab!.wg(A)).peers.find((p) => p.publicKey === keyB)!;
      const pb = (await lab!.wg(B)).peers.find((p) => p.publicKey === keyA)!;
      expect(pa.endpoint).toBe(epB);
      expect(pb.endpoint).toBe(epA);
      expect(pa.latestHandshake).toBeGreaterThan(0);
      expect(pb.latestHandshake).toBeGreaterThan(0);
      expect(pa.endpoint).not.toContain(CP_IP);
      // status --json per peer: endpoint and last handshake (issue 7 Deliver).
      const sa = await lab!.status(A);
      const peerB = sa.peers.list.find((p) => p.public_key === keyB)!;
      expect(peerB.endpoint).toBe(epB);
      expect(peerB.last_handshake).not.toBeNull();

      // The packets go router to router: rA's conntrack holds A:51820 ↔ rB's mapping, translated
      // to A's public mapping.
      const ct = await lab!.conntrack(A, ["-L", "-p", "udp", "--orig-src", A.lanIp, "--sport", String(LISTEN_PORT), "--dst", B.wanIp, "--dport", String(LISTEN_PORT)]);
      expect(ct.stdout).toContain(`src=${B.wanIp} dst=${A.wanIp} sport=${LISTEN_PORT} dport=${portOf(epA)}`);
    });
  }, 120_000);

  test("C behind the symmetric NAT: two servers saw two ports", async () => {
    const { C } = lab!.sites;
    const st = await lab!.status(C);
    expect(st.nat.type).toBe("symmetric");
    const n = (await lab!.cpNode(C))!;
    expect(n.nat_type).toBe("symmetric");
    // Two UDP mappings of C:51820 on rC, to the two STUN servers, with different public ports.
    const ct = await lab!.conntrack(C, ["-L", "-p", "udp", "--orig-src", C.lanIp, "--sport", String(LISTEN_PORT), "--dport", "3478"]);
    const ports = new Set([...ct.stdout.matchAll(/src=203\.0\.113\.\d+ dst=198\.51\.100\.13 sport=3478 dport=(\d+)/g)].map((m) => m[1]));
    expect(ports.size).toBe(2);
  }, 30_000);

  test("rebinding: conntrack flush on rA → new mapping; B's endpoint for A and ping B→A recover within one refresh interval", async () => {
    const { A, B } = lab!.sites;
    await withLogs(async () => {
      const old = (await lab!.status(A)).nat.public_endpoint!;
      expect((await lab!.ping(B, A.meshIp!)).ok).toBe(true);
      const before = await lab!.conntrack(A, ["-L", "-p", "udp", "--orig-src", A.lanIp, "--sport", String(LISTEN_PORT)]);
      expect(before.stdout).toContain(`dport=${portOf(old)}`);

      const t0 = Date.now();
      const flush = await lab!.conntrack(A, ["-F"]);
      expect(flush.code).toBe(0);
      // Every mapping of A:51820 is gone from rA.
      const after = await lab!.conntrack(A, ["-L", "-p", "udp", "--orig-src", A.lanIp, "--sport", String(LISTEN_PORT)]);
      expect(after.stdout).not.toContain(`dport=${portOf(old)}`);

      let tAgent = 0;
      let tCp = 0;
      let tB = 0;
      let tPing = 0;
      let fresh = "";
      // Only B pings (A's own traffic would open rA for B and hide what the agents do).
      await waitFor(
        "A's new mapping reported, at B, and ping B→A",
        async () => {
          const now = () => Date.now() - t0;
          if (!tAgent) {
            const ep = (await lab!.status(A)).nat.public_endpoint;
            if (ep && ep !== old) {
              fresh = ep;
              tAgent = now();
            }
          }
          if (fresh && !tCp && (await lab!.cpNode(A))!.endpoint === fresh) tCp = now();
          if (fresh && !tB && (await endpointAt(B, A)) === fresh) tB = now();
          if (!tPing && (await lab!.ping(B, A.meshIp!, 0.5)).ok) tPing = now();
          return tAgent && tCp && tB && tPing ? true : false;
        },
        { timeoutMs: 4 * REFRESH_MS, intervalMs: 100 },
      );
      console.error(
        `rebinding rA (${old} → ${fresh}): A's status +${tAgent} ms, CP +${tCp} ms, B's endpoint for A +${tB} ms, ping B→A +${tPing} ms (refresh ${REFRESH_MS} ms)`,
      );
      expect(fresh.startsWith(`${A.wanIp}:`)).toBe(true);
      expect(portOf(fresh)).not.toBe(portOf(old));
      expect((await lab!.status(A)).nat.type).toBe("full_cone");
      expect(tB).toBeLessThanOrEqual(ONE_REFRESH_MS + 2_000);
      expect(tPing).toBeLessThanOrEqual(ONE_REFRESH_MS + 2_000);
      expect((await lab!.ping(A, B.meshIp!)).ok).toBe(true);
    });
  }, 120_000);

  test("port-preserving masquerade (rB): conntrack flush gives the same mapping back; ping recovers", async () => {
    const { A, B } = lab!.sites;
    await withLogs(async () => {
      const old = (await lab!.status(B)).nat.public_endpoint!;
      expect(old).toBe(`${B.wanIp}:${LISTEN_PORT}`);
      const t0 = Date.now();
      expect((await lab!.conntrack(B, ["-F"])).code).toBe(0);
      // Wait for a discovery that started after the flush.
      const st = await waitFor(
        "B rediscovered after the flush",
        async () => {
          const s = await lab!.status(B);
          return s.nat.last_success_age_s !== null && Date.now() - s.nat.last_success_age_s * 1000 - 1000 > t0 ? s : false;
        },
        { timeoutMs: 3 * REFRESH_MS, intervalMs: 200 },
      );
      expect(st.nat.public_endpoint).toBe(old);
      let tPing = 0;
      await waitFor("ping A→B after the flush on rB", async () => (await lab!.ping(A, B.meshIp!, 0.5)).ok && (tPing = Date.now() - t0), {
        timeoutMs: 4 * REFRESH_MS,
        intervalMs: 100,
      });
      console.error(`flush on rB: mapping unchanged (${old}); ping A→B back +${tPing} ms`);
      expect(await endpointAt(A, B)).toBe(old);
      // Nothing STUN can see changed, so no refresh acts: rB's filter state comes back with B's
      // next packet to A, at the latest its persistent keepalive (25 s) + one handshake retry.
      expect(tPing).toBeLessThanOrEqual(KEEPALIVE_MS + 5_000);
    });
  }, 120_000);
});
