/**
 * Acceptance (lifecycle.md §14.2): `plexd deregister` on a running node → the CP no longer lists
 * it (its record answers 404), the other node drops it as a peer, and nothing of it is left in
 * the node's kernel namespace: no `plexd0` interface, no `inet plexd` table.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { Lab, waitFor } from "../helpers/lab.ts";
import { cpNode, hasPlexdTable, startMesh, withLogs, type Mesh } from "../helpers/mesh-fixture.ts";

const why = await Lab.unavailable();
let mesh: Mesh | undefined;
afterAll(async () => {
  if (!mesh) return;
  await mesh.lab.cleanup();
  expect(await mesh.lab.leftovers()).toEqual([]);
});

describe.skipIf(why !== null)(`plexd deregister${why ? ` (skipped: ${why})` : ""}`, () => {
  test("CP forgets the node, peers drop it, the kernel is clean", async () => {
    mesh = await startMesh(2);
    const { lab, nodes } = mesh;
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    const aKey = (await lab.registration(a))!.public_key;
    await withLogs(lab, nodes, async () => {
      expect(await lab.link(a)).not.toBeNull();
      expect(await hasPlexdTable(a)).toBe(true);

      const r = await lab.plexdJson(a, ["deregister", "--yes"], { timeoutMs: 90_000 });
      expect(`exit ${r.code}: ${r.raw.stderr.trim()}`).toBe("exit 0: ");
      expect(r.doc?.schemaVersion).toBe(1);

      expect((await cpNode(lab, a.nodeId!)).status).toBe(404);
      expect((await lab.cpNodes()).map((n) => n.id)).not.toContain(a.nodeId);
      await waitFor(`${a.name} gone from ${b.name}`, async () => {
        const d = await lab.wgDump(b);
        return d !== null && !d.peers.some((p) => p.publicKey === aKey);
      }, { timeoutMs: 15_000, intervalMs: 100 });

      // Nothing of the mesh left in a's namespace.
      expect(await lab.link(a)).toBeNull();
      expect(await hasPlexdTable(a)).toBe(false);
      const routes = await Bun.$`ip -n ${a.netns} -j route show 10.100.0.0/16`.text();
      expect(JSON.parse(routes || "[]")).toEqual([]);
    });
  }, 200_000);
});
