import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { admin, call, registerNode, startCp, type CpProc, type TestNode } from "./cp-harness.ts";

const INTERVAL = 150;
let cp: CpProc;
let a: TestNode;
let b: TestNode;
let beating = true;
let timer: ReturnType<typeof setInterval>;

const hb = (n: TestNode) => ({
  node_id: n.node_id, timestamp: new Date().toISOString(), status: "healthy", uptime: "1s", binary_checksum: "x",
  mesh: { interface: "plexd0", peer_count: 1, listen_port: 51820 },
});
const typesFor = async (n: TestNode) =>
  ((await admin(cp, "GET", `/admin/nodes/${n.node_id}/events`)).json.events as { event_type: string; data: string }[]).map((e) => ({
    type: e.event_type,
    payload: JSON.parse(e.data).payload,
  }));
const status = async (n: TestNode) => (await admin(cp, "GET", `/admin/nodes/${n.node_id}`)).json.status as string;
async function waitFor(pred: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error("condition not met");
    await Bun.sleep(25);
  }
}

beforeAll(async () => {
  cp = await startCp({ extra: ["--heartbeat-interval", `${INTERVAL}ms`] });
  a = await registerNode(cp);
  b = await registerNode(cp);
  timer = setInterval(() => {
    void call(cp, "POST", `/v1/nodes/${a.node_id}/heartbeat`, { token: a.nsk, body: hb(a) });
    if (beating) void call(cp, "POST", `/v1/nodes/${b.node_id}/heartbeat`, { token: b.nsk, body: hb(b) });
  }, INTERVAL / 3);
});
afterAll(async () => {
  clearInterval(timer);
  await cp?.cleanup();
});

describe("heartbeat liveness", () => {
  test("online while heartbeating", async () => {
    await Bun.sleep(INTERVAL * 4);
    expect(await status(b)).toBe("online");
  });

  test("3 missed → unreachable (peer_status_changed), 10 → offline (peer_removed), back → peer_added", async () => {
    beating = false;
    await waitFor(async () => (await status(b)) === "unreachable", INTERVAL * 8);
    expect((await typesFor(a)).filter((e) => e.type === "peer_status_changed").at(-1)?.payload).toMatchObject({ peer_id: b.node_id, status: "unreachable" });
    // Unreachable peers stay in the desired peer set.
    expect((await call(cp, "GET", `/v1/nodes/${a.node_id}/state`, { token: a.nsk })).json.peers.map((p: any) => p.id)).toContain(b.node_id);
    await waitFor(async () => (await status(b)) === "offline", INTERVAL * 14);
    expect((await typesFor(a)).filter((e) => e.type === "peer_removed").map((e) => e.payload)).toContainEqual({ peer_id: b.node_id });
    expect((await call(cp, "GET", `/v1/nodes/${a.node_id}/state`, { token: a.nsk })).json.peers.map((p: any) => p.id)).not.toContain(b.node_id);
    expect(await status(a)).toBe("online");

    const back = await call(cp, "POST", `/v1/nodes/${b.node_id}/heartbeat`, { token: b.nsk, body: hb(b) });
    expect(back.json.reconcile).toBe(true);
    beating = true;
    expect(await status(b)).toBe("online");
    const added = (await typesFor(a)).filter((e) => e.type === "peer_added").at(-1);
    expect(added?.payload).toMatchObject({ id: b.node_id, public_key: b.public_key, mesh_ip: b.mesh_ip });
    expect((await call(cp, "GET", `/v1/nodes/${a.node_id}/state`, { token: a.nsk })).json.peers.map((p: any) => p.id)).toContain(b.node_id);
  });
});
