/**
 * Acceptance: a node removed at the control plane (`DELETE /admin/nodes/{id}`, the admin CLI's
 * `nodes remove`) disappears from the WireGuard peers of every other node (`wg show plexd0 dump`
 * read from outside the agents), and the remaining mesh keeps working.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { Lab, waitFor } from "../helpers/lab.ts";
import { startMesh, withLogs, type Mesh } from "../helpers/mesh-fixture.ts";

const why = await Lab.unavailable();
let mesh: Mesh | undefined;
afterAll(async () => {
  if (!mesh) return;
  await mesh.lab.cleanup();
  expect(await mesh.lab.leftovers()).toEqual([]);
});

describe.skipIf(why !== null)(`mesh remove${why ? ` (skipped: ${why})` : ""}`, () => {
  test("removed node vanishes from every peer's interface", async () => {
    mesh = await startMesh(3);
    const { lab, nodes } = mesh;
    const [a, b, gone] = nodes as [(typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0]];
    const goneKey = (await lab.registration(gone))!.public_key;
    for (const n of [a, b]) expect((await lab.wgDump(n))!.peers.map((p) => p.publicKey)).toContain(goneKey);

    await withLogs(lab, nodes, async () => {
      const t0 = Date.now();
      expect(await lab.adminOk("DELETE", `/admin/nodes/${gone.nodeId}`)).toEqual({ removed: true, node_id: gone.nodeId });
      for (const n of [a, b]) {
        await waitFor(
          `${gone.name} removed from ${n.name}`,
          async () => {
            const d = await lab.wgDump(n);
            return d !== null && !d.peers.some((p) => p.publicKey === goneKey);
          },
          { timeoutMs: 15_000, intervalMs: 100 },
        );
      }
      console.error(`removed peer gone from both interfaces after ${Date.now() - t0} ms`);
      expect((await lab.cpNodes()).map((c) => c.id)).not.toContain(gone.nodeId);
      // The other peer is still configured and reachable; the removed IP is not routed to anyone.
      for (const n of [a, b]) expect((await lab.wgDump(n))!.peers.length).toBe(1);
      expect((await lab.ping(a, b.meshIp!)).ok).toBe(true);
      expect((await lab.ping(b, a.meshIp!)).ok).toBe(true);
      expect((await lab.ping(a, gone.meshIp!, 1)).ok).toBe(false);
    });
  }, 150_000);
});
