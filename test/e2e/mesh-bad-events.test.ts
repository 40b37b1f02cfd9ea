/**
 * Acceptance (protocol.md §7/§8.2, operations.md §1–§2): forged, stale, replayed, malformed and
 * oversized events from the CP's fault injector are all journaled as rejected with the right
 * reason, never dispatched (not in the DLQ, mesh unchanged), listed by
 * `plexd replay --status rejected --dry-run`, and the agent keeps running.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { Lab, waitFor } from "../helpers/lab.ts";
import { journal, rowsOf, startMesh, status, withLogs, type JournalRow, type Mesh } from "../helpers/mesh-fixture.ts";

const EXPECTED: Record<string, string> = {
  // `replayed` reuses the nonce of the node's previous event: it must follow a genuine one.
  replayed: "replay",
  forged: "bad_signature",
  stale: "stale",
  malformed: "malformed",
  oversized: "oversize",
};

const why = await Lab.unavailable();
let mesh: Mesh | undefined;
afterAll(async () => {
  if (!mesh) return;
  await mesh.lab.cleanup();
  expect(await mesh.lab.leftovers()).toEqual([]);
});

describe.skipIf(why !== null)(`bad events${why ? ` (skipped: ${why})` : ""}`, () => {
  test("none applied, all journaled as rejected, agent stays up", async () => {
    mesh = await startMesh(2);
    const { lab, nodes } = mesh;
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    await withLogs(lab, nodes, async () => {
      const peersBefore = (await lab.wgDump(a))!.peers.map((p) => `${p.publicKey} ${p.allowedIps.join(",")}`);
      // A genuine, harmless event first, fully processed, so `replayed` copies a nonce that is in the store.
      const genuine = await lab.adminOk("PATCH", `/admin/nodes/${a.nodeId}/metadata`, { lab: "bad-events" });
      expect(genuine.metadata.lab).toBe("bad-events");
      const lastGenuine = (await lab.adminOk("GET", `/admin/nodes/${a.nodeId}/events`)).events.at(-1);
      await waitFor("genuine event journaled, verified and processed", () => {
        const r = journal(a, "sse_id = ?", [lastGenuine.event_id]);
        return r.length === 1 && r[0]!.verify === "verified" && ["done", "ignored"].includes(r[0]!.status);
      }, { timeoutMs: 15_000 });

      const injected = new Map<string, string>(); // kind → SSE id
      for (const kind of Object.keys(EXPECTED)) {
        const r = await lab.adminOk("POST", `/admin/nodes/${a.nodeId}/faults/event`, { kind, event_type: "peer_removed" });
        injected.set(kind, r.event_id);
      }
      const rows = await waitFor(
        "all injected events journaled",
        () => {
          const got = new Map<string, JournalRow>();
          for (const [kind, id] of injected) {
            const r = journal(a, "sse_id = ?", [id]);
            if (r.length === 1) got.set(kind, r[0]!);
          }
          return got.size === injected.size ? got : undefined;
        },
        { timeoutMs: 20_000 },
      );
      for (const [kind, reason] of Object.entries(EXPECTED)) {
        const r = rows.get(kind)!;
        expect(`${kind}: ${r.verify} ${r.reject_reason} ${r.status}`).toBe(`${kind}: rejected ${reason} rejected`);
        expect(r.attempts).toBe(0);
      }

      // Listed for forensics by replay --dry-run, never in the DLQ.
      const rep = await lab.plexdJson(a, ["replay", "--status", "rejected", "--dry-run"]);
      expect(`exit ${rep.code}`).toBe("exit 0");
      const listed = new Set(rowsOf(rep.doc, "events", "results").map((x: any) => Number(x.seq)));
      for (const r of rows.values()) expect(listed.has(r.seq)).toBe(true);
      const dlq = await lab.plexdJson(a, ["dlq", "list"]);
      expect(`exit ${dlq.code}`).toBe("exit 0");
      const dead = rowsOf(dlq.doc, "entries").map((x: any) => String(x.event_id ?? ""));
      for (const id of injected.values()) expect(dead).not.toContain(id);

      // Nothing applied (the payloads were `peer_removed {}` / padding), agent up, mesh intact.
      expect(lab.agentPid(a)).not.toBeNull();
      expect((await lab.wgDump(a))!.peers.map((p) => `${p.publicKey} ${p.allowedIps.join(",")}`)).toEqual(peersBefore);
      expect((await lab.ping(a, b.meshIp!)).ok).toBe(true);
      expect((await lab.ping(b, a.meshIp!)).ok).toBe(true);
      const st = await status(lab, a);
      expect(st.health.status).not.toBe("unhealthy");
      expect(st.phase).toBe("connected");
    });
  }, 200_000);
});
