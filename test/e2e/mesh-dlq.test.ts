/**
 * Acceptance (operations.md §2): a handler that keeps failing for real lands in the DLQ, and
 * `plexd dlq retry` re-runs it.
 *
 * How it fails without a test hook: node 1's `mesh.wireguard_go_path` is a wrapper around
 * wireguard-go that refuses to start while a flag file exists. With the flag set we kill the
 * running wireguard-go, so the agent's supervisor cannot bring the userspace device back; a
 * validly signed `peer_added` event (sent with the CP's `event send`) then fails in the backend
 * (UAPI socket missing — a retryable error) on every attempt and goes `dead` after
 * `journal.max_retries` (2 here, 100 ms base). Clearing the flag lets the supervisor restart
 * wireguard-go; `plexd dlq retry <id>` then applies the peer. `reconcile.interval` is 1 h on
 * node 1 so the periodic reconcile does not remove the (CP-unknown) peer before we look.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { generateKeyPairSync } from "node:crypto";
import { chmodSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Lab, waitFor } from "../helpers/lab.ts";
import { journal, rowsOf, startMesh, withLogs, type Mesh } from "../helpers/mesh-fixture.ts";

const why = await Lab.unavailable();
let mesh: Mesh | undefined;
afterAll(async () => {
  if (!mesh) return;
  await mesh.lab.cleanup();
  expect(await mesh.lab.leftovers()).toEqual([]);
});

function publicKey(): string {
  const { publicKey } = generateKeyPairSync("x25519");
  return Buffer.from((publicKey.export({ format: "jwk" }) as { x: string }).x, "base64url").toString("base64");
}

describe.skipIf(why !== null)(`DLQ${why ? ` (skipped: ${why})` : ""}`, () => {
  test("a handler failing in the backend goes dead; dlq retry re-runs it", async () => {
    const wgGo = Bun.which("wireguard-go")!;
    let flag = "";
    mesh = await startMesh(2, {
      nodeConfigs: (lab) => {
        // The wrapper lives in the lab dir, so cleanup() removes it.
        const wrapper = join(lab.dir, "wireguard-go-wrapper");
        flag = join(lab.dir, "wireguard-go.off");
        writeFileSync(
          wrapper,
          `#!/bin/sh\n# lab: wireguard-go that refuses to start while ${flag} exists\nif [ -e '${flag}' ]; then echo "lab: wireguard-go disabled" >&2; exit 1; fi\nexec '${wgGo}' "$@"\n`,
          { mode: 0o755 },
        );
        chmodSync(wrapper, 0o755);
        return {
          1: {
            mesh: { wireguard_go_path: wrapper },
            journal: { max_retries: 2, retry_base: "100ms", retry_max: "1s" },
            reconcile: { interval: "1h" },
          },
        };
      },
    });
    const { lab, nodes } = mesh;
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    await withLogs(lab, nodes, async () => {
      // Take the userspace backend away for good.
      writeFileSync(flag, "");
      const wgPids = (await lab.netnsPids(a.netns)).filter((pid) => {
        try {
          return readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "wireguard-go";
        } catch {
          return false;
        }
      });
      expect(wgPids.length).toBe(1);
      process.kill(wgPids[0]!, "SIGKILL");
      await waitFor(`${a.name} interface gone`, async () => (await lab.link(a)) === null, { timeoutMs: 10_000, intervalMs: 100 });

      const fakeKey = publicKey();
      const fakeIp = "10.100.250.7";
      const sent = await lab.adminOk("POST", `/admin/nodes/${a.nodeId}/events`, {
        event_type: "peer_added",
        payload: { id: "n_dlqtest00000001", public_key: fakeKey, mesh_ip: fakeIp, endpoint: "", allowed_ips: [`${fakeIp}/32`], psk: "" },
      });
      const eventId = sent.event_id as string;

      // Dead after 3 attempts, with the backend error recorded.
      const dead = await waitFor(
        "event dead in the DLQ",
        async () => {
          const r = await lab.plexdJson(a, ["dlq", "list"]);
          if (r.code !== 0) throw new Error(`dlq list exit ${r.code}: ${r.raw.stderr}`);
          return rowsOf(r.doc, "entries").find((e: any) => e.event_id === eventId);
        },
        { timeoutMs: 30_000, intervalMs: 300 },
      );
      expect(Number(dead.attempts)).toBe(3);
      expect(String(dead.kind)).toBe("event");
      const row = journal(a, "event_id = ?", [eventId]);
      expect(row.map((r) => `${r.verify} ${r.status}`)).toEqual(["verified dead"]);
      expect(row[0]!.last_error ?? "").not.toBe("");

      // Backend back (the supervisor retries with backoff ≤ 30 s) and the old mesh restored.
      rmSync(flag);
      await waitFor(`${a.name} pings ${b.name} again`, async () => (await lab.ping(a, b.meshIp!, 0.5)).ok, {
        timeoutMs: 60_000,
        intervalMs: 500,
      });

      const retry = await lab.plexdJson(a, ["dlq", "retry", String(dead.id)]);
      expect(`exit ${retry.code}: ${retry.raw.stderr.trim()}`).toBe("exit 0: ");
      await waitFor(
        "retried event applied",
        async () => {
          const d = await lab.wgDump(a);
          const st = journal(a, "event_id = ?", [eventId])[0]?.status;
          return st === "done" && d?.peers.some((p) => p.publicKey === fakeKey && p.allowedIps.includes(`${fakeIp}/32`));
        },
        { timeoutMs: 20_000, intervalMs: 200 },
      );
      const after = await lab.plexdJson(a, ["dlq", "list"]);
      expect(rowsOf(after.doc, "entries").map((e: any) => e.event_id)).not.toContain(eventId);
    });
  }, 250_000);
});
