/** Admin HTTP API under /admin (separate bearer token). Every body is validated with valibot. */
import { timingSafeEqual } from "node:crypto";
import * as v from "valibot";
import type { Cp } from "./context.ts";
import type { Router } from "./router.ts";
import type { NodeRow } from "./nodes.ts";
import { ARTIFACT_LIMIT, bearer, json, readJson } from "./http.ts";
import { HttpError, badRequest, notFound, unauthorized } from "./errors.ts";
import { Policy } from "./schema.ts";
import { parseDuration } from "./duration.ts";
import { canonicalIssuedAt } from "./canonical.ts";
import { validArtifactName } from "./artifacts.ts";
import { adminFaultRoutes } from "./admin-faults.ts";

const DurationText = v.pipe(v.string(), v.check((s) => (parseDuration(s) ?? -1) >= 0, "Go duration expected"));
const TokenCreate = v.object({ ttl: v.optional(DurationText, "1h") });
const PolicySet = v.union([v.array(Policy), v.object({ policies: v.array(Policy) })]);
const ParamValue = v.union([v.string(), v.number(), v.boolean()]);
const ActionSend = v.object({
  action: v.pipe(v.string(), v.minLength(1)),
  parameters: v.optional(v.record(v.string(), ParamValue)),
  timeout: v.optional(DurationText),
  checksum: v.optional(v.string()),
  type: v.optional(v.picklist(["builtin", "hook"])),
});
const MetadataPatch = v.record(v.string(), v.nullable(v.string()));
const DataSet = v.object({ content_type: v.optional(v.string(), "application/json"), payload: v.unknown() });
const SecretSet = v.object({ value: v.string(), encoding: v.optional(v.picklist(["utf8", "base64"]), "utf8") });
const RotateKeys = v.object({ via: v.optional(v.picklist(["event", "heartbeat", "both"]), "both") });
const SigningRotate = v.object({ transition: v.optional(DurationText) });
const CustomEvent = v.object({
  event_type: v.pipe(v.string(), v.minLength(1)),
  payload_text: v.optional(v.string()),
  payload: v.optional(v.unknown()),
  issued_at: v.optional(v.string()),
  nonce: v.optional(v.pipe(v.string(), v.minLength(1))),
});

/** Constant-time check of the admin bearer token. */
function checkAdmin(cp: Cp, req: Request): void {
  const t = bearer(req);
  const a = Buffer.from(t ?? "");
  const b = Buffer.from(cp.adminToken);
  if (a.length !== b.length || !timingSafeEqual(a, b)) throw unauthorized("admin token required");
}

/** An active node or 404. */
export function activeNode(cp: Cp, id: string | undefined): NodeRow {
  const n = id ? cp.nodes.get(id) : undefined;
  if (!n || n.removed_at !== null) throw notFound("unknown node");
  return n;
}

function nodeSummary(n: NodeRow): Record<string, unknown> {
  return {
    id: n.id,
    hostname: n.hostname,
    mesh_ip: n.mesh_ip,
    public_key: n.public_key,
    status: n.status,
    endpoint: n.endpoint,
    nat_type: n.nat_type,
    last_seen: new Date(n.last_seen).toISOString(),
    registered_at: new Date(n.registered_at).toISOString(),
  };
}

/** Wraps a router so every /admin route checks the admin token first. */
export function adminRoutes(cp: Cp, router: Router): void {
  const r = {
    on: (m: string, p: string, h: Parameters<Router["on"]>[2]) =>
      router.on(m, p, (ctx) => {
        checkAdmin(cp, ctx.req);
        return h(ctx);
      }),
  };

  r.on("POST", "/admin/tokens", async ({ req }) => {
    const body = await readJson(req, TokenCreate);
    return json(cp.tokens.create(parseDuration(body.ttl) as number), 201);
  });

  r.on("GET", "/admin/nodes", () => json({ nodes: cp.nodes.active().map(nodeSummary) }));

  r.on("GET", "/admin/nodes/{id}", ({ params }) => {
    const n = activeNode(cp, params.id);
    return json({
      ...nodeSummary(n),
      registration_metadata: JSON.parse(n.reg_metadata),
      metadata: cp.desired.metadata(n.id),
      capabilities: n.capabilities === null ? null : JSON.parse(n.capabilities),
      last_heartbeat: n.last_heartbeat === null ? null : JSON.parse(n.last_heartbeat),
      data: cp.desired.data(n.id),
      secret_refs: cp.desired.secretRefs(n.id),
      live_streams: cp.events.streamCount(n.id),
      last_event_seq: n.next_seq - 1,
    });
  });

  r.on("DELETE", "/admin/nodes/{id}", ({ params }) => {
    const n = activeNode(cp, params.id);
    cp.nodes.remove(n.id);
    return json({ removed: true, node_id: n.id });
  });

  r.on("GET", "/admin/policies", () => json({ policies: cp.policies.list() }));
  r.on("PUT", "/admin/policies", async ({ req }) => {
    const body = await readJson(req, PolicySet);
    const policies = Array.isArray(body) ? body : body.policies;
    cp.policies.replace(policies);
    for (const n of cp.nodes.active()) cp.events.publish(n.id, "policy_updated", { policies });
    return json({ policies });
  });

  r.on("POST", "/admin/nodes/{id}/actions", async ({ req, params }) => {
    const n = activeNode(cp, params.id);
    return json(cp.executions.dispatch(n.id, await readJson(req, ActionSend)), 202);
  });
  r.on("GET", "/admin/nodes/{id}/executions", ({ params }) => json({ executions: cp.executions.list(activeNode(cp, params.id).id) }));
  r.on("GET", "/admin/executions/{eid}", ({ params }) => {
    const e = cp.executions.get(params.eid as string);
    if (!e) throw notFound("unknown execution");
    return json(cp.executions.view(e));
  });

  r.on("PATCH", "/admin/nodes/{id}/metadata", async ({ req, params }) => {
    const n = activeNode(cp, params.id);
    return json({ metadata: cp.desired.setMetadata(n.id, await readJson(req, MetadataPatch)) });
  });
  r.on("PUT", "/admin/nodes/{id}/data/{key}", async ({ req, params }) => {
    const n = activeNode(cp, params.id);
    const body = await readJson(req, DataSet);
    return json(cp.desired.setData(n.id, params.key as string, body.content_type, body.payload ?? null));
  });
  r.on("DELETE", "/admin/nodes/{id}/data/{key}", ({ params }) => {
    const n = activeNode(cp, params.id);
    if (!cp.desired.deleteData(n.id, params.key as string)) throw notFound("unknown data key");
    return json({ deleted: true });
  });
  r.on("PUT", "/admin/nodes/{id}/secrets/{key}", async ({ req, params }) => {
    const n = activeNode(cp, params.id);
    const body = await readJson(req, SecretSet);
    const bytes = body.encoding === "base64" ? Buffer.from(body.value, "base64") : Buffer.from(body.value, "utf8");
    return json(cp.desired.setSecret(n.id, params.key as string, bytes));
  });

  r.on("POST", "/admin/nodes/{id}/rotate-keys", async ({ req, params }) => {
    const n = activeNode(cp, params.id);
    const { via } = await readJson(req, RotateKeys);
    if (via !== "event") cp.nodes.setPending(n.id, { rotate: true });
    const ev = via !== "heartbeat" ? cp.events.publish(n.id, "rotate_keys", { reason: "admin" }) : undefined;
    return json({ node_id: n.id, via, event_id: ev?.eventId ?? null }, 202);
  });
  r.on("POST", "/admin/nodes/{id}/reconcile", ({ params }) => {
    const n = activeNode(cp, params.id);
    cp.nodes.setPending(n.id, { reconcile: true });
    return json({ node_id: n.id, reconcile: true }, 202);
  });

  r.on("GET", "/admin/signing", () => json(cp.keys.state()));
  r.on("POST", "/admin/signing/rotate", async ({ req }) => {
    const body = await readJson(req, SigningRotate);
    const ms = body.transition !== undefined ? (parseDuration(body.transition) as number) : cp.config.defaultTransitionMs;
    const old = cp.keys.rotate(ms);
    const state = cp.keys.state();
    // Shape A, signed by the OLD key: each key vouches for its successor (lifecycle.md §10.2).
    for (const n of cp.nodes.active()) cp.events.publish(n.id, "signing_key_rotated", state, { key: old.privateKey });
    return json(state);
  });

  r.on("PUT", "/admin/artifacts/{version}/{os}/{arch}", async ({ req, url, params }) => {
    const { version = "", os = "", arch = "" } = params;
    if (!validArtifactName(version, os, arch)) throw badRequest("bad version, os (linux) or arch (amd64|arm64)");
    const declared = Number(req.headers.get("content-length") ?? "NaN");
    if (Number.isFinite(declared) && declared > ARTIFACT_LIMIT) throw new HttpError(413, "payload_too_large", "artifact too large");
    const row = await cp.artifacts.store(version, arch, req.body, ARTIFACT_LIMIT, url.searchParams.get("unsigned") !== "1");
    return json({ version, os, arch, sha256: `sha256:${row.sha256}`, size: row.size, signed: row.signed === 1 }, 201);
  });
  r.on("GET", "/admin/artifacts", () =>
    json({ artifacts: cp.artifacts.list().map((a) => ({ ...a, sha256: `sha256:${a.sha256}`, signed: a.signed === 1 })) }),
  );

  r.on("GET", "/admin/nodes/{id}/events", ({ url, params }) => {
    const n = activeNode(cp, params.id);
    const after = Number(url.searchParams.get("after") ?? "0") || 0;
    return json({ events: cp.events.after(n.id, after, 1000).map((e) => ({ seq: e.seq, event_id: e.eventId, event_type: e.eventType, data: e.data })) });
  });
  r.on("POST", "/admin/nodes/{id}/events", async ({ req, params }) => {
    const n = activeNode(cp, params.id);
    const body = await readJson(req, CustomEvent);
    if (body.payload_text !== undefined) {
      try {
        JSON.parse(body.payload_text);
      } catch {
        throw badRequest("payload_text is not valid JSON");
      }
    }
    if (body.issued_at !== undefined && canonicalIssuedAt(body.issued_at) === undefined) {
      throw badRequest("issued_at is not an accepted RFC 3339 form");
    }
    const ev = cp.events.publish(n.id, body.event_type, body.payload ?? null, {
      ...(body.payload_text !== undefined ? { payloadText: body.payload_text } : {}),
      ...(body.issued_at !== undefined ? { issuedAt: body.issued_at } : {}),
      ...(body.nonce !== undefined ? { nonce: body.nonce } : {}),
    });
    return json({ seq: ev.seq, event_id: ev.eventId, data: ev.data }, 201);
  });

  r.on("GET", "/admin/nodes/{id}/records/{kind}", ({ url, params }) => {
    const n = activeNode(cp, params.id);
    const after = Number(url.searchParams.get("after") ?? "0") || 0;
    const limit = Math.min(Number(url.searchParams.get("limit") ?? "1000") || 1000, 10_000);
    return json({ records: cp.records.list(n.id, params.kind as string, after, limit) });
  });
  r.on("GET", "/admin/nodes/{id}/reports", ({ url, params }) => {
    const n = activeNode(cp, params.id);
    return json({ entries: cp.reports.list(n.id, url.searchParams.get("deleted") === "1") });
  });

  adminFaultRoutes(cp, r);
}
