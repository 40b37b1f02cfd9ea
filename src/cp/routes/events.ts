/** GET /v1/nodes/{node_id}/events — the SSE stream (protocol.md §7). */
import type { Cp } from "../context.ts";
import { authNode } from "../context.ts";
import type { Router } from "../router.ts";
import { seqFromLastEventId } from "../events.ts";
import { sseResponse } from "../sse.ts";

export function eventRoutes(cp: Cp, r: Router): void {
  r.on("GET", "/v1/nodes/{node_id}/events", ({ req, params }) => {
    const node = authNode(cp, req, params.node_id);
    const after = seqFromLastEventId(req.headers.get("last-event-id"));
    return sseResponse(cp.events, node.id, after, {
      keepaliveMs: cp.config.keepaliveMs,
      stalled: () => cp.faults.isStalled(node.id),
    });
  });
}
