import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createDecipheriv, createHash, createPublicKey, verify } from "node:crypto";
import { gzipSync } from "node:zlib";
import { admin, call, newPublicKey, registerNode, startCp, type CpProc, type TestNode } from "./cp-harness.ts";

let cp: CpProc;
let a: TestNode;
let b: TestNode;
beforeAll(async () => {
  cp = await startCp();
  a = await registerNode(cp);
  b = await registerNode(cp);
});
afterAll(async () => {
  await cp?.cleanup();
});

const now = () => new Date().toISOString();
const events = async (n: TestNode) => (await admin(cp, "GET", `/admin/nodes/${n.node_id}/events`)).json.events as any[];
const payloads = async (n: TestNode, type: string) =>
  (await events(n)).filter((e) => e.event_type === type).map((e) => JSON.parse(e.data).payload);
const hb = (n: TestNode) => ({
  node_id: n.node_id,
  timestamp: now(),
  status: "healthy",
  uptime: "1m30s",
  binary_checksum: "sha256:" + "0".repeat(64),
  mesh: { interface: "plexd0", peer_count: 1, listen_port: 51820 },
});

describe("auth and node lookup on every NSK endpoint", () => {
  const paths: [string, string][] = [
    ["GET", "/events"],
    ["POST", "/heartbeat"],
    ["POST", "/deregister"],
    ["PUT", "/capabilities"],
    ["PUT", "/endpoint"],
    ["GET", "/state"],
    ["POST", "/drift"],
    ["GET", "/secrets/k"],
    ["POST", "/report"],
    ["POST", "/executions/e1/ack"],
    ["POST", "/executions/e1/result"],
    ["POST", "/metrics"],
    ["POST", "/logs"],
    ["POST", "/audit"],
    ["POST", "/integrity/violations"],
    ["POST", "/tunnels/s1/ready"],
    ["POST", "/tunnels/s1/closed"],
  ];
  test("401 without or with a wrong NSK, 404 unknown node, 403 other node", async () => {
    for (const [m, p] of paths) {
      expect([m, p, (await call(cp, m, `/v1/nodes/${a.node_id}${p}`)).status]).toEqual([m, p, 401]);
      expect([m, p, (await call(cp, m, `/v1/nodes/${a.node_id}${p}`, { token: "x".repeat(44) })).status]).toEqual([m, p, 401]);
      expect([m, p, (await call(cp, m, `/v1/nodes/n_unknown${p}`, { token: a.nsk })).status]).toEqual([m, p, 404]);
      expect([m, p, (await call(cp, m, `/v1/nodes/${b.node_id}${p}`, { token: a.nsk })).status]).toEqual([m, p, 403]);
    }
    expect((await call(cp, "POST", "/v1/keys/rotate", { body: { node_id: a.node_id, new_public_key: newPublicKey() } })).status).toBe(401);
    expect((await call(cp, "GET", "/v1/artifacts/plexd/1.0.0/linux/amd64")).status).toBe(401);
    expect((await call(cp, "GET", "/v1/ping")).status).toBe(401);
  });
  test("400 on malformed JSON for every JSON endpoint", async () => {
    for (const [m, p] of paths.filter(([m]) => m !== "GET") .filter(([, p]) => p !== "/deregister")) {
      const r = await call(cp, m, `/v1/nodes/${a.node_id}${p}`, { token: a.nsk, raw: "{bad", headers: { "content-type": "application/json" } });
      expect([p, r.status]).toEqual([p, 400]);
    }
  });
});

describe("heartbeat", () => {
  test("200 with directives; rotate_keys once after admin request", async () => {
    const r = await call(cp, "POST", `/v1/nodes/${a.node_id}/heartbeat`, { token: a.nsk, body: hb(a) });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ reconcile: false, rotate_keys: false });
    await admin(cp, "POST", `/admin/nodes/${a.node_id}/rotate-keys`, { via: "heartbeat" });
    expect((await call(cp, "POST", `/v1/nodes/${a.node_id}/heartbeat`, { token: a.nsk, body: hb(a) })).json.rotate_keys).toBe(true);
    expect((await call(cp, "POST", `/v1/nodes/${a.node_id}/heartbeat`, { token: a.nsk, body: hb(a) })).json.rotate_keys).toBe(false);
  });
  test("400 on schema errors and node_id mismatch", async () => {
    expect((await call(cp, "POST", `/v1/nodes/${a.node_id}/heartbeat`, { token: a.nsk, body: { ...hb(a), status: "great" } })).status).toBe(400);
    expect((await call(cp, "POST", `/v1/nodes/${a.node_id}/heartbeat`, { token: a.nsk, body: { ...hb(a), uptime: "5 minutes" } })).status).toBe(400);
    expect((await call(cp, "POST", `/v1/nodes/${a.node_id}/heartbeat`, { token: a.nsk, body: { ...hb(a), node_id: b.node_id } })).status).toBe(400);
  });
  test("426 for old agents when --min-version is set is not used here; unknown fields tolerated", async () => {
    const r = await call(cp, "POST", `/v1/nodes/${a.node_id}/heartbeat`, { token: a.nsk, body: { ...hb(a), future_field: { x: 1 } } });
    expect(r.status).toBe(200);
  });
});

describe("capabilities, endpoint, state, drift", () => {
  test("PUT capabilities stored", async () => {
    const caps = { binary: { version: "1.4.2", checksum: "sha256:" + "a".repeat(64) }, builtin_actions: [{ name: "mesh.reconnect", description: "", parameters: [] }], hooks: [] };
    expect((await call(cp, "PUT", `/v1/nodes/${a.node_id}/capabilities`, { token: a.nsk, body: caps })).status).toBe(200);
    expect((await admin(cp, "GET", `/admin/nodes/${a.node_id}`)).json.capabilities.binary.version).toBe("1.4.2");
    expect((await call(cp, "PUT", `/v1/nodes/${a.node_id}/capabilities`, { token: a.nsk, body: { binary: 1 } })).status).toBe(400);
  });
  test("PUT endpoint returns peer endpoints and tells peers", async () => {
    expect((await call(cp, "PUT", `/v1/nodes/${b.node_id}/endpoint`, { token: b.nsk, body: { public_endpoint: "192.0.2.2:51820", nat_type: "full_cone" } })).status).toBe(200);
    const r = await call(cp, "PUT", `/v1/nodes/${a.node_id}/endpoint`, { token: a.nsk, body: { public_endpoint: "192.0.2.1:51820", nat_type: "none" } });
    expect(r.status).toBe(200);
    expect(r.json.peer_endpoints).toContainEqual({ peer_id: b.node_id, endpoint: "192.0.2.2:51820" });
    expect(await payloads(b, "peer_endpoint_changed")).toContainEqual({ id: a.node_id, peer_id: a.node_id, endpoint: "192.0.2.1:51820" });
    expect((await call(cp, "PUT", `/v1/nodes/${a.node_id}/endpoint`, { token: a.nsk, body: { public_endpoint: "nope", nat_type: "none" } })).status).toBe(400);
  });
  test("GET state has every section", async () => {
    await admin(cp, "PATCH", `/admin/nodes/${a.node_id}/metadata`, { role: "db" });
    await admin(cp, "PUT", `/admin/nodes/${a.node_id}/data/cfg`, { payload: { x: 1 } });
    const r = await call(cp, "GET", `/v1/nodes/${a.node_id}/state`, { token: a.nsk });
    expect(r.status).toBe(200);
    expect(r.json.peers.map((p: any) => p.id)).toContain(b.node_id);
    expect(r.json.peers.find((p: any) => p.id === b.node_id).endpoint).toBe("192.0.2.2:51820");
    expect(r.json.signing_keys.current).toBe(a.signing_public_key);
    expect(r.json.metadata).toEqual({ role: "db" });
    expect(r.json.data[0]).toMatchObject({ key: "cfg", content_type: "application/json", payload: { x: 1 }, version: 1 });
    expect(Array.isArray(r.json.policies)).toBe(true);
    expect(Array.isArray(r.json.secret_refs)).toBe(true);
    const ev = await payloads(a, "node_state_updated");
    expect(ev.at(-1)).toMatchObject({ metadata: { role: "db" }, data: [{ key: "cfg", version: 1 }] });
  });
  test("POST drift 202 stored, 400 bad body", async () => {
    const body = { timestamp: now(), corrections: [{ type: "peer_added", detail: `peer ${b.node_id}` }] };
    expect((await call(cp, "POST", `/v1/nodes/${a.node_id}/drift`, { token: a.nsk, body })).status).toBe(202);
    expect((await admin(cp, "GET", `/admin/nodes/${a.node_id}/records/drift`)).json.records[0].body).toEqual(body);
    expect((await call(cp, "POST", `/v1/nodes/${a.node_id}/drift`, { token: a.nsk, body: { corrections: "x" } })).status).toBe(400);
  });
});

describe("secrets", () => {
  test("value encrypted with AES-256-GCM under the NSK; index event sent", async () => {
    expect((await admin(cp, "PUT", `/admin/nodes/${a.node_id}/secrets/db-pass`, { value: "s3cr3t-välue" })).json.version).toBe(1);
    const r = await call(cp, "GET", `/v1/nodes/${a.node_id}/secrets/db-pass`, { token: a.nsk });
    expect(r.status).toBe(200);
    expect(r.json.key).toBe("db-pass");
    expect(r.json.version).toBe(1);
    const ct = Buffer.from(r.json.ciphertext, "base64");
    const d = createDecipheriv("aes-256-gcm", Buffer.from(a.nsk, "base64"), Buffer.from(r.json.nonce, "base64"));
    d.setAuthTag(ct.subarray(ct.length - 16));
    expect(Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()]).toString("utf8")).toBe("s3cr3t-välue");
    expect((await payloads(a, "node_secrets_updated")).at(-1)).toEqual({ secret_refs: [{ key: "db-pass", version: 1 }] });
    expect(JSON.stringify(await events(a))).not.toContain("s3cr3t");
    expect((await call(cp, "GET", `/v1/nodes/${a.node_id}/secrets/missing`, { token: a.nsk })).status).toBe(404);
  });
});

describe("report", () => {
  const entry = (key: string, version: number, payload: unknown = { v: version }) => ({ key, content_type: "application/json", payload, version, updated_at: now() });
  test("stored; identical resend OK; lower or same-version-different-content 409", async () => {
    expect((await call(cp, "POST", `/v1/nodes/${a.node_id}/report`, { token: a.nsk, body: { entries: [entry("k1", 2)], deleted: [] } })).status).toBe(200);
    const same = { entries: [{ ...entry("k1", 2) }], deleted: [] };
    expect((await call(cp, "POST", `/v1/nodes/${a.node_id}/report`, { token: a.nsk, body: same })).status).toBe(200);
    const older = await call(cp, "POST", `/v1/nodes/${a.node_id}/report`, { token: a.nsk, body: { entries: [entry("k1", 1), entry("k2", 1)], deleted: [] } });
    expect(older.status).toBe(409);
    expect(older.json.conflicts).toEqual([{ key: "k1", version: 1, current_version: 2 }]);
    expect((await call(cp, "POST", `/v1/nodes/${a.node_id}/report`, { token: a.nsk, body: { entries: [entry("k1", 2, "other")], deleted: [] } })).status).toBe(409);
    // The 409 batch applied nothing.
    const list = (await admin(cp, "GET", `/admin/nodes/${a.node_id}/reports`)).json.entries;
    expect(list.map((e: any) => e.key)).toEqual(["k1"]);
    expect((await call(cp, "POST", `/v1/nodes/${a.node_id}/report`, { token: a.nsk, body: { entries: [entry("k1", 3)], deleted: ["k1"] } })).status).toBe(200);
    expect((await admin(cp, "GET", `/admin/nodes/${a.node_id}/reports`)).json.entries).toEqual([]);
    expect((await call(cp, "POST", `/v1/nodes/${a.node_id}/report`, { token: a.nsk, body: { entries: [{ key: "x" }] } })).status).toBe(400);
  });
});

describe("executions", () => {
  const result = (id: string) => ({
    execution_id: id, status: "success", exit_code: 0, stdout: "ok", stderr: "", duration: "2.34s", finished_at: now(),
    triggered_by: { type: "control_plane", session_id: "", user_id: "", email: "" },
  });
  test("dispatch → action_request event; ACK and result stored; 409 once final", async () => {
    const d = await admin(cp, "POST", `/admin/nodes/${a.node_id}/actions`, { action: "mesh.reconnect", parameters: { force: true, n: 3 } });
    expect(d.status).toBe(202);
    const id = d.json.execution_id;
    const req = (await payloads(a, "action_request")).find((p) => p.execution_id === id);
    expect(req).toMatchObject({ action: "mesh.reconnect", parameters: { force: true, n: 3 }, triggered_by: { type: "control_plane" } });
    const ackPath = `/v1/nodes/${a.node_id}/executions/${id}/ack`;
    expect((await call(cp, "POST", ackPath, { token: a.nsk, body: { execution_id: id, status: "accepted", reason: "" } })).status).toBe(200);
    expect((await call(cp, "POST", ackPath, { token: a.nsk, body: { execution_id: id, status: "accepted", reason: "" } })).status).toBe(200);
    expect((await call(cp, "POST", ackPath, { token: a.nsk, body: { execution_id: "other", status: "accepted", reason: "" } })).status).toBe(400);
    expect((await call(cp, "POST", ackPath, { token: a.nsk, body: { execution_id: id, status: "maybe" } })).status).toBe(400);
    const resPath = `/v1/nodes/${a.node_id}/executions/${id}/result`;
    expect((await call(cp, "POST", resPath, { token: a.nsk, body: result(id) })).status).toBe(200);
    expect((await call(cp, "POST", resPath, { token: a.nsk, body: result(id) })).status).toBe(409);
    expect((await call(cp, "POST", ackPath, { token: a.nsk, body: { execution_id: id, status: "accepted", reason: "" } })).status).toBe(409);
    const view = (await admin(cp, "GET", `/admin/executions/${id}`)).json;
    expect(view.ack.status).toBe("accepted");
    expect(view.result.stdout).toBe("ok");
  });
  test("404 for unknown ids and ids of another node; local_ results accepted", async () => {
    expect((await call(cp, "POST", `/v1/nodes/${a.node_id}/executions/exec_nope/result`, { token: a.nsk, body: result("exec_nope") })).status).toBe(404);
    const d = await admin(cp, "POST", `/admin/nodes/${b.node_id}/actions`, { action: "x" });
    const id = d.json.execution_id;
    expect((await call(cp, "POST", `/v1/nodes/${a.node_id}/executions/${id}/ack`, { token: a.nsk, body: { execution_id: id, status: "accepted", reason: "" } })).status).toBe(404);
    expect((await call(cp, "POST", `/v1/nodes/${a.node_id}/executions/local_01J/result`, { token: a.nsk, body: result("local_01J") })).status).toBe(200);
  });
});

describe("telemetry", () => {
  const log = (i: number) => ({ timestamp: now(), source: "journald", unit: "x.service", message: `line ${i}`, severity: "info", hostname: "h" });
  test("gzip NDJSON logs, JSON-array audit and metrics; batch id dedup", async () => {
    const nd = gzipSync([log(1), log(2)].map((l) => JSON.stringify(l)).join("\n") + "\n");
    const h = { "content-type": "application/x-ndjson", "content-encoding": "gzip", "x-plexd-batch-id": crypto.randomUUID() };
    const r1 = await call(cp, "POST", `/v1/nodes/${a.node_id}/logs`, { token: a.nsk, raw: nd, headers: h });
    expect(r1.status).toBe(202);
    expect(r1.json.accepted).toBe(2);
    const r2 = await call(cp, "POST", `/v1/nodes/${a.node_id}/logs`, { token: a.nsk, raw: nd, headers: h });
    expect(r2.json.duplicate).toBe(true);
    expect((await admin(cp, "GET", `/admin/nodes/${a.node_id}/records/logs`)).json.records.length).toBe(2);
    const arr = gzipSync(JSON.stringify([log(3)]));
    expect((await call(cp, "POST", `/v1/nodes/${a.node_id}/logs`, { token: a.nsk, raw: arr, headers: { "content-type": "application/json", "content-encoding": "gzip" } })).status).toBe(202);
    const audit = { timestamp: now(), source: "auditd", event_type: "exec", subject: "u", object: "o", action: "a", result: "ok", hostname: "h", raw: "r" };
    expect((await call(cp, "POST", `/v1/nodes/${a.node_id}/audit`, { token: a.nsk, raw: gzipSync(JSON.stringify(audit)), headers: { "content-type": "application/x-ndjson", "content-encoding": "gzip" } })).status).toBe(202);
    const metric = { timestamp: now(), group: "system", data: { cpu: 0.5 } };
    expect((await call(cp, "POST", `/v1/nodes/${a.node_id}/metrics`, { token: a.nsk, raw: gzipSync(JSON.stringify([metric])), headers: { "content-type": "application/json", "content-encoding": "gzip" } })).status).toBe(202);
    expect((await admin(cp, "GET", `/admin/nodes/${a.node_id}/records/metrics`)).json.records[0].body).toEqual(metric);
  });
  test("400 bad items, 413 over 16 MiB after decompression", async () => {
    expect((await call(cp, "POST", `/v1/nodes/${a.node_id}/metrics`, { token: a.nsk, body: [{ group: "x" }] })).status).toBe(400);
    expect((await call(cp, "POST", `/v1/nodes/${a.node_id}/metrics`, { token: a.nsk, body: { not: "array" } })).status).toBe(400);
    const huge = gzipSync(JSON.stringify([{ timestamp: now(), group: "g", data: { pad: "x".repeat(17 * 1024 * 1024) } }]));
    expect((await call(cp, "POST", `/v1/nodes/${a.node_id}/metrics`, { token: a.nsk, raw: huge, headers: { "content-type": "application/json", "content-encoding": "gzip" } })).status).toBe(413);
  });
});

describe("aux endpoints", () => {
  test("ping, integrity, tunnels", async () => {
    expect((await call(cp, "GET", "/v1/ping", { token: a.nsk })).json.node_id).toBe(a.node_id);
    const iv = { type: "binary", path: "/usr/bin/plexd", expected_checksum: "a", actual_checksum: "b", detail: "", timestamp: now() };
    expect((await call(cp, "POST", `/v1/nodes/${a.node_id}/integrity/violations`, { token: a.nsk, body: iv })).status).toBe(202);
    expect((await call(cp, "POST", `/v1/nodes/${a.node_id}/integrity/violations`, { token: a.nsk, body: { ...iv, type: "kernel" } })).status).toBe(400);
    expect((await call(cp, "POST", `/v1/nodes/${a.node_id}/tunnels/s1/ready`, { token: a.nsk, body: { listen_addr: "10.100.0.1:2222", timestamp: now() } })).status).toBe(200);
    expect((await call(cp, "POST", `/v1/nodes/${a.node_id}/tunnels/s1/closed`, { token: a.nsk, body: { reason: "revoked", duration: "5m0s", timestamp: now() } })).status).toBe(200);
    expect((await admin(cp, "GET", `/admin/nodes/${a.node_id}/records/tunnel_closed`)).json.records[0].body.session_id).toBe("s1");
  });
});

describe("artifacts", () => {
  test("upload, download with SHA-256 and a verifiable signature; 404 unknown", async () => {
    const bytes = new Uint8Array(300_000).map((_, i) => i % 251);
    const up = await call(cp, "PUT", "/admin/artifacts/1.5.0/linux/amd64", { token: cp.adminToken, raw: bytes });
    expect(up.status).toBe(201);
    const hex = createHash("sha256").update(bytes).digest("hex");
    expect(up.json.sha256).toBe(`sha256:${hex}`);
    const res = await fetch(`${cp.url}/v1/artifacts/plexd/1.5.0/linux/amd64`, { headers: { authorization: `Bearer ${a.nsk}` } });
    expect(res.status).toBe(200);
    const got = new Uint8Array(await res.arrayBuffer());
    expect(createHash("sha256").update(got).digest("hex")).toBe(hex);
    const sig = Buffer.from(res.headers.get("x-plexd-artifact-signature") as string, "base64");
    const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(a.signing_public_key, "base64").toString("base64url") }, format: "jwk" });
    expect(verify(null, Buffer.from(`plexd-artifact:v1:1.5.0:linux:amd64:${hex}`), key, sig)).toBe(true);
    expect((await call(cp, "GET", "/v1/artifacts/plexd/9.9.9/linux/amd64", { token: a.nsk })).status).toBe(404);
    expect((await call(cp, "GET", "/v1/artifacts/plexd/1.5.0/windows/amd64", { token: a.nsk })).status).toBe(404);
  });
});

describe("keys/rotate and deregister", () => {
  test("rotate: updated_peers with fresh PSKs, peer_key_rotated to peers, retry idempotent", async () => {
    const k = newPublicKey();
    const r = await call(cp, "POST", "/v1/keys/rotate", { token: b.nsk, body: { node_id: b.node_id, new_public_key: k } });
    expect(r.status).toBe(200);
    const pa = r.json.updated_peers.find((p: any) => p.id === a.node_id);
    const ev = (await payloads(a, "peer_key_rotated")).at(-1);
    expect(ev).toMatchObject({ id: b.node_id, public_key: k, psk: pa.psk });
    const again = await call(cp, "POST", "/v1/keys/rotate", { token: b.nsk, body: { node_id: b.node_id, new_public_key: k } });
    expect(again.json.updated_peers.find((p: any) => p.id === a.node_id).psk).toBe(pa.psk);
    expect((await payloads(a, "peer_key_rotated")).length).toBe(1);
    expect((await call(cp, "POST", "/v1/keys/rotate", { token: b.nsk, body: { node_id: a.node_id, new_public_key: newPublicKey() } })).status).toBe(403);
    expect((await call(cp, "POST", "/v1/keys/rotate", { token: b.nsk, body: { node_id: b.node_id, new_public_key: "bad" } })).status).toBe(400);
    expect((await call(cp, "POST", "/v1/keys/rotate", { token: b.nsk, body: { node_id: b.node_id, new_public_key: a.public_key } })).status).toBe(409);
  });
  test("deregister: peers get peer_removed, NSK revoked", async () => {
    const c = await registerNode(cp);
    expect((await payloads(a, "peer_added")).map((p) => p.id)).toContain(c.node_id);
    expect((await call(cp, "POST", `/v1/nodes/${c.node_id}/deregister`, { token: c.nsk })).status).toBe(200);
    expect(await payloads(a, "peer_removed")).toContainEqual({ peer_id: c.node_id });
    expect((await call(cp, "POST", `/v1/nodes/${c.node_id}/deregister`, { token: c.nsk })).status).toBe(401);
    expect((await call(cp, "GET", `/v1/nodes/${a.node_id}/state`, { token: a.nsk })).json.peers.map((p: any) => p.id)).not.toContain(c.node_id);
  });
});

describe("version negotiation (--min-version)", () => {
  test("426 for old agents except on the upgrade path", async () => {
    const old = await startCp({ extra: ["--min-version", "1.4.0"] });
    try {
      const n = await registerNode(old);
      const v = { "x-plexd-version": "1.3.9" };
      const st = await call(old, "GET", `/v1/nodes/${n.node_id}/state`, { token: n.nsk, headers: v });
      expect(st.status).toBe(426);
      expect(st.json).toMatchObject({ error: "upgrade_required", min_version: "1.4.0" });
      expect((await call(old, "GET", `/v1/nodes/${n.node_id}/state`, { token: n.nsk, headers: { "x-plexd-version": "1.4.0" } })).status).toBe(200);
      expect((await call(old, "POST", `/v1/nodes/${n.node_id}/heartbeat`, { token: n.nsk, headers: v, body: hb(n) })).status).toBe(200);
    } finally {
      await old.cleanup();
    }
  });
});
