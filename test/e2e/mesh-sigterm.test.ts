/**
 * Acceptance (lifecycle.md §14.1): SIGTERM stops the agent cleanly — exit code 0 within the drain
 * limit (`shutdown.drain_timeout`, set to 5 s here, plus the 5 s teardown) — and a stop is not a
 * deregistration: the CP still knows the node and the `inet plexd` table stays in place.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { Lab } from "../helpers/lab.ts";
import { cpNode, hasPlexdTable, startMesh, withLogs, type Mesh } from "../helpers/mesh-fixture.ts";

const DRAIN_MS = 5_000;
const TEARDOWN_MS = 5_000;

const why = await Lab.unavailable();
let mesh: Mesh | undefined;
afterAll(async () => {
  if (!mesh) return;
  await mesh.lab.cleanup();
  expect(await mesh.lab.leftovers()).toEqual([]);
});

describe.skipIf(why !== null)(`SIGTERM${why ? ` (skipped: ${why})` : ""}`, () => {
  test("clean stop: exit 0 within drain + teardown, node stays registered", async () => {
    mesh = await startMesh(2, { nodeConfigs: { 1: { shutdown: { drain_timeout: `${DRAIN_MS / 1000}s` } } } });
    const { lab, nodes } = mesh;
    const a = nodes[0]!;
    await withLogs(lab, nodes, async () => {
      expect(await hasPlexdTable(a)).toBe(true);
      const r = (await lab.stopAgent(a, "SIGTERM", 60_000))!;
      console.error(`SIGTERM → exit code ${r.code} (signal ${r.signal}) after ${r.ms} ms`);
      expect(r.killed).toBe(false);
      expect(r.signal).toBeNull();
      expect(r.code).toBe(0);
      expect(r.ms).toBeLessThanOrEqual(DRAIN_MS + TEARDOWN_MS);
      // Stop ≠ deregister.
      const rec = await cpNode(lab, a.nodeId!);
      expect(rec.status).toBe(200);
      expect(rec.json.status).not.toBe("removed");
      expect(await hasPlexdTable(a)).toBe(true);
    });
  }, 200_000);
});
