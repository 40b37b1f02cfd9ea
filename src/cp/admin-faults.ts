/** Admin endpoints of the fault injector; they answer 404 unless the CP runs with --faults. */
import * as v from "valibot";
import type { Cp } from "./context.ts";
import type { Handler } from "./router.ts";
import { json, readJson } from "./http.ts";
import { HttpError } from "./errors.ts";
import { injectBadEvent } from "./faults.ts";
import { activeNode } from "./admin.ts";

const Pattern = v.pipe(
  v.string(),
  v.check((s) => {
    try {
      new RegExp(s);
      return true;
    } catch {
      return false;
    }
  }, "valid RegExp source expected"),
);
const HttpFaultIn = v.object({
  pattern: Pattern,
  method: v.optional(v.string()),
  status: v.picklist([401, 403, 404, 429, 500, 502, 503]),
  count: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1)), 1),
  retry_after: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
});
const LatencyIn = v.object({
  pattern: Pattern,
  method: v.optional(v.string()),
  ms: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(600_000)),
  count: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
});
const SseIn = v.object({ mode: v.picklist(["drop", "stall", "resume"]), ms: v.optional(v.pipe(v.number(), v.minValue(0)), 60_000) });
const BadEventIn = v.object({
  kind: v.picklist(["forged", "stale", "replayed", "malformed", "oversized"]),
  event_type: v.optional(v.pipe(v.string(), v.minLength(1))),
});

export function adminFaultRoutes(cp: Cp, r: { on: (m: string, p: string, h: Handler) => unknown }): void {
  const guard = (h: Handler): Handler => (ctx) => {
    if (!cp.faults.enabled) throw new HttpError(404, "faults_disabled", "start the CP with --faults");
    return h(ctx);
  };
  r.on("GET", "/admin/faults", guard(() => json(cp.faults.list())));
  r.on("DELETE", "/admin/faults", guard(() => {
    cp.faults.clear();
    return json({ cleared: true });
  }));
  r.on("POST", "/admin/faults/http", guard(async ({ req }) => {
    const b = await readJson(req, HttpFaultIn);
    const f = cp.faults.addHttp({
      pattern: b.pattern,
      ...(b.method ? { method: b.method } : {}),
      status: b.status,
      remaining: b.count,
      ...(b.retry_after !== undefined ? { retryAfter: b.retry_after } : {}),
    });
    return json(f, 201);
  }));
  r.on("POST", "/admin/faults/latency", guard(async ({ req }) => {
    const b = await readJson(req, LatencyIn);
    const f = cp.faults.addLatency({ pattern: b.pattern, ...(b.method ? { method: b.method } : {}), ms: b.ms, remaining: b.count ?? null });
    return json(f, 201);
  }));
  r.on("POST", "/admin/nodes/{id}/faults/sse", guard(async ({ req, params }) => {
    const n = activeNode(cp, params.id);
    const b = await readJson(req, SseIn);
    if (b.mode === "drop") return json({ dropped: cp.events.closeStreams(n.id) });
    cp.faults.stall(n.id, b.mode === "stall" ? b.ms : 0);
    if (b.mode === "resume") cp.events.wake(n.id);
    return json({ stalled: b.mode === "stall", ms: b.mode === "stall" ? b.ms : 0 });
  }));
  r.on("POST", "/admin/nodes/{id}/faults/event", guard(async ({ req, params }) => {
    const n = activeNode(cp, params.id);
    const b = await readJson(req, BadEventIn);
    const ev = injectBadEvent(cp.events, n.id, b.kind, Date.now(), b.event_type);
    return json({ kind: b.kind, seq: ev.seq, event_id: ev.eventId, size: ev.data.length }, 201);
  }));
}
