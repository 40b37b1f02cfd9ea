/** Report sync and execution ACK/result (protocol.md §6.11–§6.13). */
import type { Cp } from "../context.ts";
import { authNode } from "../context.ts";
import type { Router } from "../router.ts";
import { json, readJson } from "../http.ts";
import { Ack, Report, Result } from "../schema.ts";
import { badRequest, conflict } from "../errors.ts";

export function executionRoutes(cp: Cp, r: Router): void {
  r.on("POST", "/v1/nodes/{node_id}/report", async ({ req, params }) => {
    const node = authNode(cp, req, params.node_id);
    const body = await readJson(req, Report);
    const conflicts = cp.reports.apply(node.id, body.entries, body.deleted);
    if (conflicts.length > 0) throw conflict("report version conflict", { conflicts });
    return json({ accepted: body.entries.length, deleted: body.deleted.length });
  });

  r.on("POST", "/v1/nodes/{node_id}/executions/{execution_id}/ack", async ({ req, params }) => {
    const node = authNode(cp, req, params.node_id);
    const body = await readJson(req, Ack);
    if (body.execution_id !== params.execution_id) throw badRequest("execution_id in body does not match the path");
    cp.executions.ack(node.id, body.execution_id, body.status, body.reason);
    return json({ received: true });
  });

  r.on("POST", "/v1/nodes/{node_id}/executions/{execution_id}/result", async ({ req, params }) => {
    const node = authNode(cp, req, params.node_id);
    const body = await readJson(req, Result);
    if (body.execution_id !== params.execution_id) throw badRequest("execution_id in body does not match the path");
    cp.executions.result(node.id, body.execution_id, body);
    return json({ received: true });
  });
}
