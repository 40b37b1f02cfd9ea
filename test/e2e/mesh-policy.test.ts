/**
 * Acceptance of policy enforcement (issue 6; lifecycle.md §4.3), compiled agents + reference CP,
 * everything checked from outside the agents:
 * - three nodes with `policy.default: deny`; a policy (pushed with `plexd-cp admin policy set`)
 *   allowing only tcp/8080 from A to B: A reaches B:8080, not B:22; C reaches nothing on B; peers
 *   are configured only where an allow rule links two nodes (`wg show dump`);
 * - a policy change (admin API) takes effect within 1 s of the admin call's return, both ways;
 * - an established A→B:8080 connection exchanging bytes every 100 ms survives unrelated changes;
 * - `nft flush ruleset` inside B → `table inet plexd` back, identical, within 1 s;
 * - a foreign table created before the agents start is byte-identical after start, policy
 *   changes, SIGTERM and `kill -9` of the restarted agents.
 * The 1 s limits are the issue's; every other wait polls with a generous limit.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Lab, waitFor, type LabNode } from "../helpers/lab.ts";
import {
  nftIn,
  nftTableJson,
  probeResult,
  tcpConnect,
  tcpProbe,
  tcpServer,
  tcpStream,
  withLogs,
  type TcpAttempt,
  type TcpTool,
} from "../helpers/mesh-fixture.ts";
import { run } from "../helpers/netns.ts";

const LIMIT_MS = 1000; // issue 6: policy change / flush restore

/** Created inside every node before its agent starts; plexd must never touch it. */
const FOREIGN = `table inet foreign {
	set blocked4 {
		type ipv4_addr
		flags interval
		elements = { 198.51.100.0/24, 203.0.113.7 }
	}
	chain audit {
		tcp dport 9 counter drop comment "discard port, never used here"
		udp dport 9 drop
	}
	chain input {
		type filter hook input priority -150; policy accept;
		ip saddr @blocked4 drop
		jump audit
	}
	chain output {
		type filter hook output priority 150; policy accept;
		ip daddr 198.51.100.1 reject
	}
}
`;

const why = await Lab.unavailable();
let lab: Lab | undefined;
let A: LabNode, B: LabNode, C: LabNode;
let nodes: LabNode[] = [];
/** `nft list table inet foreign` per node, as first created. */
const foreignText = new Map<LabNode, string>();
let stream: TcpTool | undefined;

afterAll(async () => {
  if (!lab) return;
  await lab.cleanup();
  expect(await lab.leftovers()).toEqual([]);
});

type Rule = { src: string; dst: string; port?: number; protocol?: string; action: "allow" | "deny" };
const allow = (src: LabNode, dst: LabNode, port: number): Rule => ({ src: src.nodeId!, dst: dst.nodeId!, port, protocol: "tcp", action: "allow" });
const policies = (...rules: [string, Rule][]) => rules.map(([id, r]) => ({ id, rules: [r] }));

async function foreignOf(n: LabNode): Promise<string> {
  const r = await nftIn(n, ["list", "table", "inet", "foreign"]);
  return r.code === 0 ? r.stdout : `(missing: ${r.stderr.trim()})`;
}

async function createForeign(n: LabNode): Promise<void> {
  const file = join(n.dir, "foreign.nft");
  writeFileSync(file, FOREIGN);
  const r = await nftIn(n, ["-f", file]);
  if (r.code !== 0) throw new Error(`${n.name}: nft -f foreign: ${r.stderr}`);
  foreignText.set(n, await foreignOf(n));
}

async function expectForeignUntouched(when: string): Promise<void> {
  for (const n of nodes) expect(`${when}: ${n.name}\n${await foreignOf(n)}`).toBe(`${when}: ${n.name}\n${foreignText.get(n)}`);
}

/** Names of the node's WireGuard peers (by CP public key), sorted; null without interface. */
async function peerNames(n: LabNode): Promise<string[] | null> {
  const byKey = new Map((await lab!.cpNodes()).map((c) => [c.public_key, c.hostname]));
  const d = await lab!.wgDump(n);
  return d ? d.peers.map((p) => byKey.get(p.publicKey) ?? `?${p.publicKey.slice(0, 8)}`).sort() : null;
}

/** Polls until every node has exactly the expected peers. */
async function waitPeers(expected: Map<LabNode, LabNode[]>, what: string): Promise<void> {
  await waitFor(
    what,
    async () => {
      const have: Record<string, string[] | null> = {};
      for (const [n, want] of expected) {
        have[n.name] = await peerNames(n);
        if (JSON.stringify(have[n.name]) !== JSON.stringify(want.map((w) => w.name).sort())) throw new Error(JSON.stringify(have));
      }
      return true;
    },
    { timeoutMs: 30_000, intervalMs: 100, abortIf: () => lab!.deadAgents() },
  );
}

/** PUT /admin/policies; returns when the call was made and when it returned. */
async function putPolicies(body: unknown): Promise<{ called: number; returned: number }> {
  const called = Date.now();
  await lab!.adminOk("PUT", "/admin/policies", { policies: body });
  return { called, returned: Date.now() };
}

function streamState(t: TcpTool): { echoes: { echo: number; t: number }[]; closed: boolean; errors: unknown[] } {
  const items = t.out.items;
  return { echoes: items.filter((i) => typeof i.echo === "number"), closed: items.some((i) => i.closed), errors: items.filter((i) => i.error) };
}

/** Largest gap between consecutive echoes with t in [from, to]. */
function maxGap(echoes: { t: number }[], from: number, to: number): number {
  const ts = echoes.map((e) => e.t).filter((t) => t >= from && t <= to);
  let gap = 0;
  for (let i = 1; i < ts.length; i++) gap = Math.max(gap, ts[i]! - ts[i - 1]!);
  return gap;
}

/** Asserts the long-lived stream is open and kept echoing from `from` until now (no gap ≥ 1 s). */
async function expectStreamAlive(what: string, from: number): Promise<number> {
  const s = stream!;
  const before = streamState(s).echoes.length;
  await waitFor(`${what}: stream echoes again`, () => streamState(s).echoes.length >= before + 5, { timeoutMs: 10_000, intervalMs: 50 });
  const st = streamState(s);
  expect(st.closed).toBe(false);
  expect(st.errors).toEqual([]);
  // TCP delivers in order: the counter never skips, every line sent came back.
  expect(st.echoes.every((e, i) => e.echo === i + 1)).toBe(true);
  const gap = maxGap(st.echoes, from, Date.now());
  return gap;
}

/** First success of an allow probe, relative to `t0` (completion time of the handshake). */
function firstOk(attempts: TcpAttempt[], t0: number): number {
  const ok = attempts.filter((a) => a.ok).sort((x, y) => x.t1 - y.t1)[0];
  return ok ? ok.t1 - t0 : Infinity;
}

/** Start of the all-failing tail of a probe (blocked from then on), relative to `t0`. */
function blockedFrom(attempts: TcpAttempt[], t0: number): number {
  const byStart = [...attempts].sort((x, y) => x.t0 - y.t0);
  let k = byStart.length;
  while (k > 0 && !byStart[k - 1]!.ok) k--;
  return k === byStart.length ? Infinity : byStart[k]!.t0 - t0;
}

describe.skipIf(why !== null)(`mesh policy enforcement${why ? ` (skipped: ${why})` : ""}`, () => {
  test("default deny: agents start, no peers, foreign tables untouched", async () => {
    lab = await Lab.create({ config: { policy: { default: "deny" }, shutdown: { drain_timeout: "5s" } } });
    await lab.startCp();
    for (let i = 0; i < 3; i++) nodes.push(await lab.addNode());
    [A, B, C] = nodes as [LabNode, LabNode, LabNode];
    for (const n of nodes) await createForeign(n);
    for (const n of nodes) lab.startAgent(n);
    await withLogs(lab, nodes, async () => {
      for (const n of nodes) await lab!.waitRegistered(n, 60_000);
      await waitFor("table inet plexd on every node", async () => (await Promise.all(nodes.map((n) => nftTableJson(n, "inet", "plexd")))).every((t) => t !== null), {
        timeoutMs: 30_000,
        intervalMs: 100,
        abortIf: () => lab!.deadAgents(),
      });
      // Interfaces up, but no policies and default deny → nobody is visible.
      await waitPeers(new Map([[A, []], [B, []], [C, []]]), "no peers anywhere under default deny without policies");
      await expectForeignUntouched("after start");
    });
  }, 150_000);

  test("allow A→B tcp/8080 only: A reaches B:8080, not B:22; C reaches nothing on B", async () => {
    const l = lab!;
    await withLogs(l, nodes, async () => {
      await tcpServer(l, B, [8080, 22]);
      // The documented admin command (`plexd-cp admin … policy set FILE`).
      const file = join(l.dir, "policy-a-b-8080.json");
      writeFileSync(file, JSON.stringify({ policies: policies(["pol_a_b_8080", allow(A, B, 8080)]) }));
      const cli = await run([l.cpBin, "admin", "--url", l.cp!.url, "--token-file", join(l.dir, "cp", "admin-token"), "--ca-file", l.cp!.caFile, "policy", "set", file]);
      expect(`${cli.code} ${cli.stderr}`).toBe("0 ");

      // Peer visibility: A and B are linked by the rule; C by nothing.
      await waitPeers(new Map([[A, [B]], [B, [A]], [C, []]]), "A↔B peers only");
      const ok = await probeResult(l, tcpProbe(l, A, B.meshIp!, 8080, { everyMs: 100, timeoutMs: 500, durationMs: 30_000, untilOk: true }));
      expect(ok.some((a) => a.ok)).toBe(true);

      const [a22, c8080, c22, cPing, aPing] = await Promise.all([
        tcpConnect(l, A, B.meshIp!, 22, 2000),
        tcpConnect(l, C, B.meshIp!, 8080, 2000),
        tcpConnect(l, C, B.meshIp!, 22, 2000),
        l.ping(C, B.meshIp!, 1),
        l.ping(A, B.meshIp!, 1),
      ]);
      expect({ a22, c8080, c22, cPing: cPing.ok, aPingIcmpNotAllowed: aPing.ok }).toEqual({ a22: false, c8080: false, c22: false, cPing: false, aPingIcmpNotAllowed: false });
      // Still reachable right after (the failures above are the policy, not a broken tunnel).
      expect(await tcpConnect(l, A, B.meshIp!, 8080, 2000)).toBe(true);
      expect(await peerNames(C)).toEqual([]);
      await expectForeignUntouched("after policy set");
    });
  }, 150_000);

  test("policy changes take effect within 1 s; an established connection survives them", async () => {
    const l = lab!;
    await withLogs(l, nodes, async () => {
      stream = await tcpStream(l, A, B.meshIp!, 8080, 100);
      await waitFor("stream echoes", () => streamState(stream!).echoes.length >= 5, { timeoutMs: 10_000, intervalMs: 50 });

      // Allow C→B tcp/22 (unrelated to the A→B:8080 stream). The probe runs before the call.
      const p1 = policies(["pol_a_b_8080", allow(A, B, 8080)]);
      const p2 = [...p1, ...policies(["pol_c_b_22", allow(C, B, 22)])];
      const probeAllow = tcpProbe(l, C, B.meshIp!, 22, { everyMs: 50, timeoutMs: 300, durationMs: 15_000, untilOk: true });
      await Bun.sleep(300);
      const put2 = await putPolicies(p2);
      const tAllow = put2.returned;
      // Both tunnel ends as WireGuard sees them half a second in (shown if the limit is missed).
      const wgAt500 = Bun.sleep(500).then(() => Promise.all([B, C].map(async (n) => `${n.name}: ${JSON.stringify((await l.wgDump(n))?.peers)}`)));
      const allowAttempts = await probeResult(l, probeAllow);
      const allowMs = firstOk(allowAttempts, tAllow);
      console.error(
        `allow C→B:22: first connect ${allowMs} ms after the admin call returned (call took ${tAllow - put2.called} ms, ${allowAttempts.length} attempts)`,
      );
      expect(allowAttempts.filter((a) => a.ok && a.t1 < put2.called)).toEqual([]); // blocked before the call
      const wg500 = await wgAt500;
      if (allowMs > LIMIT_MS) console.error(`WireGuard 500 ms after the call (peers: [key, endpoint, handshake, rx, tx]):\n${wg500.join("\n")}`);
      expect(allowMs).toBeLessThanOrEqual(LIMIT_MS);

      const gapAllow = await expectStreamAlive("after allow C→B:22", tAllow - 1000);
      console.error(`A→B:8080 stream across the allow change: max echo gap ${gapAllow} ms`);
      expect(gapAllow).toBeLessThan(1000);
      await waitPeers(new Map([[A, [B]], [B, [A, C]], [C, [B]]]), "B↔C peers added, A still without C");
      expect(await tcpConnect(l, C, B.meshIp!, 8080, 2000)).toBe(false);
      expect(await tcpConnect(l, A, B.meshIp!, 22, 2000)).toBe(false);
      await expectForeignUntouched("after allow C→B:22");

      // Revoke it again: new connections C→B:22 are refused within 1 s.
      const probeDeny = tcpProbe(l, C, B.meshIp!, 22, { everyMs: 50, timeoutMs: 300, durationMs: 4000 });
      await Bun.sleep(500);
      const put1 = await putPolicies(p1);
      const tDeny = put1.returned;
      const denyAttempts = await probeResult(l, probeDeny);
      const denyMs = blockedFrom(denyAttempts, tDeny);
      const last = Math.max(...denyAttempts.map((a) => a.t0));
      console.error(
        `revoke C→B:22: blocked from ${denyMs} ms after the admin call returned (call took ${tDeny - put1.called} ms, ${denyAttempts.length} attempts, last ${last - tDeny} ms after)`,
      );
      expect(denyAttempts.some((a) => a.ok && a.t1 < put1.called)).toBe(true); // it did work before the call
      expect(denyMs).toBeLessThanOrEqual(LIMIT_MS);
      expect(last - tDeny).toBeGreaterThanOrEqual(2000); // the blocked tail is long, not a blip

      const gapDeny = await expectStreamAlive("after revoking C→B:22", tDeny - 1000);
      console.error(`A→B:8080 stream across the revoke: max echo gap ${gapDeny} ms`);
      expect(gapDeny).toBeLessThan(1000);
      await waitPeers(new Map([[A, [B]], [B, [A]], [C, []]]), "B↔C peers removed again");
      await expectForeignUntouched("after revoking C→B:22");
    });
  }, 150_000);

  test("nft flush ruleset inside B → table inet plexd restored within 1 s", async () => {
    const l = lab!;
    await withLogs(l, nodes, async () => {
      const before = await nftTableJson(B, "inet", "plexd");
      expect(before).not.toBeNull();
      const f = await nftIn(B, ["flush", "ruleset"]);
      const tFlush = Date.now();
      expect(f.code).toBe(0);
      // Back and equal to the table before the flush (ignoring handles and counters). Polled:
      // `nft -j list` reads the table in several requests, so a listing racing the restore can
      // show a partial table although the restore itself is one transaction (that atomicity is
      // proven in test/integration/kernel-nft.test.ts).
      const back = await waitFor(
        "table inet plexd back on B, equal to the one before",
        async () => {
          const text = await nftTableJson(B, "inet", "plexd");
          return text === before ? { at: Date.now(), text } : null;
        },
        { timeoutMs: 15_000, intervalMs: 5, abortIf: () => l.deadAgents() },
      );
      console.error(`nft flush ruleset on B: table inet plexd back after ${back.at - tFlush} ms`);
      expect(back.at - tFlush).toBeLessThanOrEqual(LIMIT_MS);

      // The flush took B's foreign table too; plexd must not have recreated or touched anything else.
      const tables = await nftIn(B, ["list", "tables"]);
      expect(tables.stdout.trim()).toBe("table inet plexd");
      await createForeign(B);

      // Enforcement is back, the stream lived through it.
      expect(await tcpConnect(l, A, B.meshIp!, 8080, 2000)).toBe(true);
      expect(await tcpConnect(l, A, B.meshIp!, 22, 2000)).toBe(false);
      const gap = await expectStreamAlive("after the flush", tFlush - 1000);
      console.error(`A→B:8080 stream across the flush: max echo gap ${gap} ms`);
    });
  }, 120_000);

  test("foreign tables byte-identical after SIGTERM and after kill -9 of restarted agents", async () => {
    const l = lab!;
    await withLogs(l, nodes, async () => {
      await l.stopInNode(stream!.proc);
      stream = undefined;
      const stops = await Promise.all(nodes.map((n) => l.stopAgent(n, "SIGTERM", 60_000)));
      for (const [i, s] of stops.entries()) expect(`${nodes[i]!.name} code=${s?.code} killed=${s?.killed}`).toBe(`${nodes[i]!.name} code=0 killed=false`);
      await expectForeignUntouched("after SIGTERM");
      // Stop leaves the table (fail closed while the agent is down).
      for (const n of nodes) expect(await nftTableJson(n, "inet", "plexd")).not.toBeNull();

      // stopAgent sweeps every process out of the namespace, B's TCP server included.
      await tcpServer(l, B, [8080, 22]);
      for (const n of nodes) l.startAgent(n);
      await waitPeers(new Map([[A, [B]], [B, [A]], [C, []]]), "peers back after restart");
      await probeResult(l, tcpProbe(l, A, B.meshIp!, 8080, { everyMs: 100, timeoutMs: 500, durationMs: 30_000, untilOk: true }));
      expect(await tcpConnect(l, A, B.meshIp!, 8080, 2000)).toBe(true);
      expect(await tcpConnect(l, A, B.meshIp!, 22, 2000)).toBe(false);
      await expectForeignUntouched("after restart");

      const kills = await Promise.all(nodes.map((n) => l.stopAgent(n, "SIGKILL", 10_000)));
      for (const k of kills) expect(k?.signal).toBe("SIGKILL");
      await expectForeignUntouched("after kill -9");
      for (const n of nodes) expect(await nftTableJson(n, "inet", "plexd")).not.toBeNull();
    });
  }, 200_000);
});
