/**
 * Acceptance: three compiled agents form a full mesh (every ordered pair pings over mesh IPs);
 * a fourth node joins and is reachable from every other node within 2 s of its registration
 * (registered_at of the CP record; pings polled every ~100 ms).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { Lab, type LabNode } from "../helpers/lab.ts";
import { startMesh, withLogs, type Mesh } from "../helpers/mesh-fixture.ts";

const why = await Lab.unavailable();
let mesh: Mesh | undefined;
afterAll(async () => {
  if (!mesh) return;
  await mesh.lab.cleanup();
  expect(await mesh.lab.leftovers()).toEqual([]);
});

describe.skipIf(why !== null)(`mesh join${why ? ` (skipped: ${why})` : ""}`, () => {
  test("3 nodes: every pair pings over mesh IPs", async () => {
    mesh = await startMesh(3);
    const { lab, nodes } = mesh;
    const matrix = await lab.pingMatrix(nodes);
    expect(matrix.length).toBe(6);
    for (const m of matrix) expect(`${m.from.name}->${m.to.name} ${m.result.ok ? "ok" : m.result.out}`).toBe(`${m.from.name}->${m.to.name} ok`);
    // Mesh IPs are distinct addresses of 10.100.0.0/16 handed out by the CP.
    const ips = nodes.map((n) => n.meshIp!);
    expect(new Set(ips).size).toBe(3);
    for (const ip of ips) expect(ip).toMatch(/^10\.100\.\d+\.\d+$/);
  }, 150_000);

  test("a 4th node is reachable from all others within 2 s of its registration", async () => {
    if (!mesh) throw new Error("mesh of the previous test missing");
    const { lab, nodes } = mesh;
    const n4 = await lab.addNode();
    lab.startAgent(n4);
    await withLogs(lab, [...nodes, n4], async () => {
      // Poll the CP quickly: registration time is the start of the 2 s budget.
      const reg = await lab.waitRegistered(n4, 60_000);
      const registeredAt = Date.parse(reg.registered_at);
      const firstOk = new Map<LabNode, number>();
      const deadline = registeredAt + 10_000;
      await Promise.all(
        nodes.map(async (from) => {
          while (Date.now() < deadline) {
            const r = await lab.ping(from, reg.mesh_ip, 0.2);
            if (r.ok) {
              firstOk.set(from, Date.now());
              return;
            }
            await Bun.sleep(50);
          }
        }),
      );
      const lat = nodes.map((n) => (firstOk.has(n) ? firstOk.get(n)! - registeredAt : Infinity));
      console.error(`4th node reachable after ${lat.map((l) => `${l} ms`).join(", ")} (from registration)`);
      for (const [i, n] of nodes.entries()) {
        expect(`${n.name}: ${lat[i]! <= 2000 ? "≤2000" : lat[i]} ms`).toBe(`${n.name}: ≤2000 ms`);
      }
      // And the 4-node mesh is complete in both directions.
      const matrix = await lab.pingMatrix([...nodes, n4]);
      expect(matrix.filter((m) => !m.result.ok).map((m) => `${m.from.name}->${m.to.name}`)).toEqual([]);
    });
  }, 150_000);
});
