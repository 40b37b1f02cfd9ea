/** Telemetry batches and auxiliary node reports (protocol.md §6.14–§6.16, §6.19–§6.21). */
import * as v from "valibot";
import type { Cp } from "../context.ts";
import { authNode } from "../context.ts";
import type { Router } from "../router.ts";
import { TELEMETRY_LIMIT, json, parseJsonText, readBody, readJson, validate } from "../http.ts";
import { AuditItem, Integrity, LogItem, MetricItem, TunnelClosed, TunnelReady } from "../schema.ts";
import { badRequest } from "../errors.ts";

const KINDS = { metrics: MetricItem, logs: LogItem, audit: AuditItem } as const;

/** Parses a telemetry body: a JSON array, or NDJSON when the content type says so. */
function items(req: Request, bytes: Uint8Array): unknown[] {
  const type = (req.headers.get("content-type") ?? "").toLowerCase();
  if (type.startsWith("application/x-ndjson")) {
    const text = new TextDecoder().decode(bytes);
    return text
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => parseJsonText(new TextEncoder().encode(l)));
  }
  const parsed = parseJsonText(bytes);
  if (!Array.isArray(parsed)) throw badRequest("telemetry body must be a JSON array or NDJSON");
  return parsed;
}

export function telemetryRoutes(cp: Cp, r: Router): void {
  for (const [kind, schema] of Object.entries(KINDS) as [keyof typeof KINDS, v.GenericSchema][]) {
    r.on("POST", `/v1/nodes/{node_id}/${kind}`, async ({ req, params }) => {
      const node = authNode(cp, req, params.node_id);
      const list = items(req, await readBody(req, TELEMETRY_LIMIT)).map((it) => validate(schema, it));
      const fresh = cp.records.addBatch(node.id, kind, req.headers.get("x-plexd-batch-id"), list);
      return json({ accepted: fresh ? list.length : 0, duplicate: !fresh }, 202);
    });
  }

  r.on("POST", "/v1/nodes/{node_id}/integrity/violations", async ({ req, params }) => {
    const node = authNode(cp, req, params.node_id);
    cp.records.add(node.id, "integrity", await readJson(req, Integrity));
    return json({ received: true }, 202);
  });

  r.on("POST", "/v1/nodes/{node_id}/tunnels/{session_id}/ready", async ({ req, params }) => {
    const node = authNode(cp, req, params.node_id);
    const body = await readJson(req, TunnelReady);
    cp.records.add(node.id, "tunnel_ready", { session_id: params.session_id, ...body });
    return json({ received: true });
  });

  r.on("POST", "/v1/nodes/{node_id}/tunnels/{session_id}/closed", async ({ req, params }) => {
    const node = authNode(cp, req, params.node_id);
    const body = await readJson(req, TunnelClosed);
    cp.records.add(node.id, "tunnel_closed", { session_id: params.session_id, ...body });
    return json({ received: true });
  });
}
