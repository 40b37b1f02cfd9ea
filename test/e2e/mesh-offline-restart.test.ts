/**
 * Acceptance (offline-first, lifecycle.md §2 step 10 and §12): with the control plane down, an
 * agent that is restarted brings its tunnels back from `data_dir` (identity + cache) alone —
 * interface, peers and endpoints — and traffic flows again, while the CP is still unreachable.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { Lab, waitFor } from "../helpers/lab.ts";
import { startMesh, status, withLogs, type Mesh } from "../helpers/mesh-fixture.ts";

const why = await Lab.unavailable();
let mesh: Mesh | undefined;
afterAll(async () => {
  if (!mesh) return;
  await mesh.lab.cleanup();
  expect(await mesh.lab.leftovers()).toEqual([]);
});

describe.skipIf(why !== null)(`agent restart while the CP is down${why ? ` (skipped: ${why})` : ""}`, () => {
  test("tunnels come back from the cache", async () => {
    mesh = await startMesh(2);
    const { lab, nodes } = mesh;
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    const bKey = (await lab.registration(b))!.public_key;

    await withLogs(lab, nodes, async () => {
      await lab.stopCp("SIGKILL");
      const stop = await lab.stopAgent(a, "SIGTERM");
      expect(stop?.killed).toBe(false);
      // Userspace backend: the tunnel really is gone now (wireguard-go ended with the agent).
      expect(await lab.link(a)).toBeNull();
      expect((await lab.ping(b, a.meshIp!, 1)).ok).toBe(false);

      const t0 = Date.now();
      lab.startAgent(a);
      await waitFor(
        `${a.name} pings ${b.name} again without a control plane`,
        async () => (await lab.ping(a, b.meshIp!, 0.5)).ok && (await lab.ping(b, a.meshIp!, 0.5)).ok,
        { timeoutMs: 45_000, intervalMs: 250 },
      );
      console.error(`tunnel back from cache ${Date.now() - t0} ms after the restart`);
      const dump = (await lab.wgDump(a))!;
      expect(dump.peers.map((p) => p.publicKey)).toEqual([bKey]);
      expect(dump.peers[0]!.endpoint).toBe(`${b.addr}:51820`);
      expect(dump.peers[0]!.allowedIps).toEqual([`${b.meshIp}/32`]);
      // It really ran without the CP.
      const st = await status(lab, a);
      expect(st.control_plane.connectivity).not.toBe("online");
      expect(st.peers.total).toBe(1);
      expect(lab.agentPid(a)).not.toBeNull();
    });
  }, 200_000);
});
