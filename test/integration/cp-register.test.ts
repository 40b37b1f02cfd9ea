import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { gzipSync } from "node:zlib";
import { admin, call, newPublicKey, registerNode, startCp, type CpProc } from "./cp-harness.ts";

let cp: CpProc;
beforeAll(async () => {
  cp = await startCp({ extra: ["--ip-cooldown", "1h"] });
});
afterAll(async () => {
  await cp?.cleanup();
});

const token = async (ttl = "10m") => (await admin(cp, "POST", "/admin/tokens", { ttl })).json.token as string;
const reg = (tok: string | undefined, body: unknown, headers: Record<string, string> = {}) =>
  call(cp, "POST", "/v1/register", { ...(tok !== undefined ? { token: tok } : {}), body, headers });

describe("POST /v1/register", () => {
  test("201 with node id, mesh IP, signing key, NSK and peers", async () => {
    const a = await registerNode(cp);
    expect(a.node_id).toMatch(/^n_[0-9a-f]{16}$/);
    expect(a.mesh_ip).toMatch(/^10\.100\.\d+\.\d+$/);
    expect(a.mesh_ip).not.toBe("10.100.0.0");
    expect(Buffer.from(a.signing_public_key, "base64").length).toBe(32);
    expect(Buffer.from(a.nsk, "base64").length).toBe(32);
    const b = await registerNode(cp);
    expect(b.mesh_ip).not.toBe(a.mesh_ip);
    const pa = b.peers.find((p: any) => p.id === a.node_id);
    expect(pa).toMatchObject({ id: a.node_id, public_key: a.public_key, mesh_ip: a.mesh_ip, allowed_ips: [`${a.mesh_ip}/32`] });
    // Same PSK on both sides of the pair.
    const sa = await call(cp, "GET", `/v1/nodes/${a.node_id}/state`, { token: a.nsk });
    expect(sa.json.peers.find((p: any) => p.id === b.node_id).psk).toBe(pa.psk);
    expect(Buffer.from(pa.psk, "base64").length).toBe(32);
  });

  test("gzip request body accepted", async () => {
    const t = await token();
    const body = gzipSync(JSON.stringify({ token: t, public_key: newPublicKey(), hostname: `gz-${Date.now()}` }));
    const r = await call(cp, "POST", "/v1/register", { token: t, raw: body, headers: { "content-type": "application/json", "content-encoding": "gzip" } });
    expect(r.status).toBe(201);
  });

  test("401 without token, wrong token, header/body mismatch", async () => {
    const t = await token();
    const body = { token: t, public_key: newPublicKey(), hostname: "x1" };
    expect((await reg(undefined, body)).status).toBe(401);
    expect((await reg("plxb_wrong", { ...body, token: "plxb_wrong" })).status).toBe(401);
    expect((await reg(t, { ...body, token: "other" })).status).toBe(401);
    // The token was not consumed by those failures.
    expect((await reg(t, body)).status).toBe(201);
  });

  test("401 on a reused token", async () => {
    const t = await token();
    expect((await reg(t, { token: t, public_key: newPublicKey(), hostname: "reuse-1" })).status).toBe(201);
    const again = await reg(t, { token: t, public_key: newPublicKey(), hostname: "reuse-2" });
    expect(again.status).toBe(401);
    expect(again.json.message).toContain("used");
  });

  test("401 on an expired token", async () => {
    const t = await token("100ms");
    await Bun.sleep(200);
    const r = await reg(t, { token: t, public_key: newPublicKey(), hostname: "expired" });
    expect(r.status).toBe(401);
    expect(r.json.message).toContain("expired");
  });

  test("400 on malformed JSON and schema failures", async () => {
    const t = await token();
    const bad = await call(cp, "POST", "/v1/register", { token: t, raw: "{not json", headers: { "content-type": "application/json" } });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toBe("invalid_request");
    expect((await reg(t, { token: t, public_key: "short", hostname: "h" })).status).toBe(400);
    expect((await reg(t, { token: t, public_key: newPublicKey() })).status).toBe(400);
    expect((await reg(t, { token: t, public_key: newPublicKey(), hostname: "h", metadata: { a: 1 } })).status).toBe(400);
    expect((await reg(t, [1, 2])).status).toBe(400);
  });

  test("413 on oversized bodies, plain and gzip-bombed", async () => {
    const t = await token();
    const big = { token: t, public_key: newPublicKey(), hostname: "big", metadata: { pad: "x".repeat(1024 * 1024 + 10) } };
    expect((await reg(t, big)).status).toBe(413);
    const bomb = gzipSync(JSON.stringify(big));
    expect(bomb.length).toBeLessThan(100_000);
    const r = await call(cp, "POST", "/v1/register", { token: t, raw: bomb, headers: { "content-type": "application/json", "content-encoding": "gzip" } });
    expect(r.status).toBe(413);
  });

  test("409 when the hostname is taken by another key; re-registration keeps id and IP", async () => {
    const n = await registerNode(cp);
    const t = await token();
    expect((await reg(t, { token: t, public_key: newPublicKey(), hostname: n.hostname })).status).toBe(409);
    const r = await reg(t, { token: t, public_key: n.public_key, hostname: n.hostname });
    expect(r.status).toBe(201);
    expect(r.json.node_id).toBe(n.node_id);
    expect(r.json.mesh_ip).toBe(n.mesh_ip);
    expect(r.json.node_secret_key).not.toBe(n.nsk);
    // The old NSK no longer works, the new one does.
    expect((await call(cp, "GET", `/v1/nodes/${n.node_id}/state`, { token: n.nsk })).status).toBe(401);
    expect((await call(cp, "GET", `/v1/nodes/${n.node_id}/state`, { token: r.json.node_secret_key })).status).toBe(200);
  });

  test("a released IP is not reused during the cooldown", async () => {
    const n = await registerNode(cp);
    expect((await call(cp, "POST", `/v1/nodes/${n.node_id}/deregister`, { token: n.nsk })).status).toBe(200);
    const m = await registerNode(cp);
    expect(m.mesh_ip).not.toBe(n.mesh_ip);
  });

  test("peers visible under policies only when an allow rule links them", async () => {
    const a = await registerNode(cp);
    expect((await admin(cp, "PUT", "/admin/policies", { policies: [{ id: "p1", rules: [{ src: a.node_id, dst: "*", action: "allow" }] }] })).status).toBe(200);
    const b = await registerNode(cp);
    expect(b.peers.map((p: any) => p.id)).toEqual([a.node_id]);
    await admin(cp, "PUT", "/admin/policies", { policies: [] });
  });
});
