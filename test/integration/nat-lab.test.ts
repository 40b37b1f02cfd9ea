/**
 * NatDiscovery's transports behind the NAT lab's routers (root; topology in test/e2e/nat-lab.ts,
 * started without CP or agents), driven through test/integration/nat-runner.ts. What the
 * compiled agent does with the real CP (classification, endpoint exchange, direct connectivity,
 * rebinding) is test/e2e/nat-traversal.test.ts; this keeps the transport-level facts no agent
 * run shows:
 * - the unprivileged fallback (no raw socket): mapped IP with the listen port, type unknown;
 * - the raw socket from a port another process owns learns the port-preserved mapping; the
 *   fallback socket (another port) does not.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import type { NatCycle, NatState } from "../../src/nat/index.ts";
import { BUN, REPO_ROOT, run, type Netns } from "../helpers/netns.ts";
import { LISTEN_PORT, NatLab, STUN_SERVERS } from "../e2e/nat-lab.ts";
import type { RunnerArgs } from "./nat-runner.ts";

const canRun = process.getuid?.() === 0 && ["stund", "nft", "ip", "python3"].every((t) => Bun.which(t) !== null);
const RUNNER = resolve(REPO_ROOT, "test/integration/nat-runner.ts");

async function once(ns: Netns, args: RunnerArgs): Promise<{ result: NatCycle; state: NatState }> {
  const r = await run(["ip", "netns", "exec", ns.name, BUN, RUNNER, JSON.stringify(args)], { timeoutMs: 20_000 });
  const line = r.stdout.split("\n").find((l) => l.startsWith("{"));
  if (r.code !== 0 || !line) throw new Error(`runner in ${ns.name} exited ${r.code}: ${r.stdout}${r.stderr}`);
  return JSON.parse(line);
}

describe.skipIf(!canRun)("NAT lab transports (netns, nftables NAT, stund)", () => {
  let lab: NatLab | undefined;
  let holderPid = 0;

  beforeAll(async () => {
    lab = await NatLab.create({ refreshInterval: "10s", cp: false });
  }, 60_000);

  afterAll(async () => {
    if (holderPid) {
      try {
        process.kill(holderPid, "SIGKILL");
      } catch {
        /* already gone */
      }
    }
    await lab?.cleanup();
    expect(await lab?.leftovers()).toEqual([]);
  }, 30_000);

  test("fallback transport (no raw socket): mapped IP with the listen port, type unknown", async () => {
    const C = lab!.sites.C;
    const l = await once(C.ns, { listenPort: LISTEN_PORT, servers: STUN_SERVERS, timeoutMs: 2000, noAddon: true });
    expect(l.result).toMatchObject({ ok: true, natType: "unknown", publicEndpoint: `${C.wanIp}:${LISTEN_PORT}` });
    expect(l.state.mode).toBe("fallback");
    // Only the first answer counts: the fallback socket's port says nothing about WireGuard's.
    expect(l.state.mappings).toHaveLength(1);
    expect(l.state.mappings[0]?.port).not.toBe(LISTEN_PORT);
  }, 30_000);

  test("raw socket from a port another socket owns: the port-preserved mapping (rB)", async () => {
    const B = lab!.sites.B;
    // Another process holds UDP 51820 in B's namespace, as wireguard-go does for the agent (the
    // agent case itself is checked in test/e2e/nat-traversal.test.ts).
    const holder = Bun.spawn(
      ["ip", "netns", "exec", B.ns.name, "python3", "-c", `import socket,time;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("0.0.0.0",${LISTEN_PORT}));print("ready",flush=True);time.sleep(60)`],
      { stdout: "pipe", stderr: "ignore" },
    );
    holderPid = holder.pid;
    const reader = (holder.stdout as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toContain("ready");
    const ss = await run(["ip", "netns", "exec", B.ns.name, "ss", "-Hlunp", "sport", "=", `:${LISTEN_PORT}`]);
    expect(ss.stdout).toContain("python3");

    const raw = await once(B.ns, { listenPort: LISTEN_PORT, servers: STUN_SERVERS, timeoutMs: 2000 });
    expect(raw.state.mode).toBe("raw");
    expect(raw.result).toMatchObject({ ok: true, natType: "full_cone", publicEndpoint: `${B.wanIp}:${LISTEN_PORT}` });
    // The fallback in the same place sees another port: why the raw socket exists.
    const fb = await once(B.ns, { listenPort: LISTEN_PORT, servers: STUN_SERVERS, timeoutMs: 2000, noAddon: true });
    expect(fb.state.mappings[0]?.port).not.toBe(LISTEN_PORT);
  }, 30_000);
});
