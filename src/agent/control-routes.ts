/**
 * Control-socket routes owned by the agent lifecycle (actions.md §10.1): status, peers, join,
 * deregister, and the journal's DLQ / replay views. Other subsystems add their own routes to
 * the same server.
 */
import * as v from "valibot";
import { dlqList, dlqPurge, dlqRetry, dlqShow, replay, type ReplayFilter } from "../journal/index.ts";
import { parseDurationMs } from "../util/duration.ts";
import type { ControlSocketServer } from "./control-socket.ts";
import { ControlError } from "./control-socket.ts";
import type { Supervisor } from "./supervisor.ts";

const JoinBody = v.object({ token: v.pipe(v.string(), v.minLength(1)) });
const DeregisterBody = v.object({ purge: v.optional(v.boolean(), false), force: v.optional(v.boolean(), false) });

function parse<S extends v.GenericSchema>(schema: S, body: unknown): v.InferOutput<S> {
  const r = v.safeParse(schema, body ?? {});
  if (!r.success) throw new ControlError(400, "invalid_parameters", r.issues[0]?.message ?? "invalid body");
  return r.output;
}

/** Registers the lifecycle routes on `server`. */
export function registerControlRoutes(server: ControlSocketServer, s: Supervisor): void {
  server.route("GET", "/v1/status", async () => ({ body: await s.status() }));
  server.route("GET", "/v1/peers", async () => {
    if (!s.mesh || !s.ctx.registered) return { body: { peers: [] } };
    return { body: { peers: await s.mesh.peerViews() } };
  });
  server.route("POST", "/v1/admin/join", async ({ body }) => {
    const { token } = parse(JoinBody, body);
    try {
      return { body: await s.join(token) };
    } catch (err) {
      const e = err as Error & { code?: string; exitCode?: number };
      if (e.code === "already_registered") throw new ControlError(409, "already_registered", e.message);
      throw new ControlError(e.exitCode === 69 ? 503 : 422, e.code ?? "join_failed", e.message);
    }
  });
  server.route("POST", "/v1/admin/deregister", async ({ body }) => {
    const flags = parse(DeregisterBody, body);
    if (!s.ctx.registered) throw new ControlError(409, "not_registered", "node is not registered");
    return { body: await s.deregister(flags) };
  });
  server.route("GET", "/v1/policies", async () => {
    const st = await s.firewall?.status();
    if (!st) throw new ControlError(409, "policy_disabled", "policy enforcement is not active (policy.enabled: false, or no nftables here)");
    return { body: st };
  });
  server.route("POST", "/v1/admin/reload", async () => {
    try {
      const p = await s.reload();
      return { body: { changed: p.changed, applied: p.applied, restart_required: p.restartRequired } };
    } catch (err) {
      throw new ControlError(422, "reload_failed", (err as Error).message);
    }
  });
  registerJournalRoutes(server, s);
}

const DlqRetryAllBody = v.object({ type: v.optional(v.string()), kind: v.optional(v.picklist(["event", "delivery"])) });
const DlqPurgeBody = v.object({
  ids: v.optional(v.array(v.string())),
  older_than: v.optional(v.string()),
  all: v.optional(v.boolean()),
});
const ReplayBody = v.object({
  since: v.optional(v.string()),
  until: v.optional(v.string()),
  types: v.optional(v.array(v.string())),
  ids: v.optional(v.array(v.string())),
  seqs: v.optional(v.array(v.pipe(v.number(), v.integer()))),
  status: v.optional(v.union([v.string(), v.array(v.string())])),
  dry_run: v.optional(v.boolean(), false),
  reconcile: v.optional(v.boolean(), true),
});

/** Maps journal errors to HTTP answers. */
function journalCall<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const e = err as Error & { name?: string; code?: string };
    if (e.name === "JournalError") throw new ControlError(e.code === "unknown_id" ? 404 : 400, e.code ?? "invalid_parameters", e.message);
    throw err;
  }
}

/** DLQ and replay routes (operations.md §2, §4) over the journal. */
export function registerJournalRoutes(server: ControlSocketServer, s: Supervisor): void {
  const db = () => {
    if (!s.db) throw new ControlError(503, "not_ready", "journal database not open");
    return s.db;
  };
  server.route("GET", "/v1/dlq", ({ query }) => {
    const kind = query.get("kind");
    const limit = query.get("limit");
    if (kind !== null && kind !== "event" && kind !== "delivery") throw new ControlError(400, "invalid_parameters", "kind must be event or delivery");
    return {
      body: {
        entries: journalCall(() =>
          dlqList(db(), {
            ...(query.get("type") ? { type: query.get("type")! } : {}),
            ...(kind ? { kind } : {}),
            ...(limit ? { limit: Number(limit) } : {}),
          }),
        ),
      },
    };
  });
  server.route("GET", "/v1/dlq/:id", ({ params }) => {
    const e = journalCall(() => dlqShow(db(), params.id!));
    if (!e) throw new ControlError(404, "unknown_id", `no DLQ entry ${params.id}`);
    return { body: e };
  });
  server.route("POST", "/v1/dlq/:id/retry", ({ params }) => {
    const n = journalCall(() => dlqRetry(db(), [params.id!], s.now()));
    if (n === 0) throw new ControlError(404, "unknown_id", `no dead entry ${params.id}`);
    s.dispatcher?.kick();
    return { body: { requeued: n } };
  });
  server.route("POST", "/v1/dlq/retry-all", ({ body }) => {
    const b = parse(DlqRetryAllBody, body);
    const n = journalCall(() => dlqRetry(db(), { all: true, ...(b.type ? { type: b.type } : {}), ...(b.kind ? { kind: b.kind } : {}) }, s.now()));
    s.dispatcher?.kick();
    return { body: { requeued: n } };
  });
  server.route("POST", "/v1/dlq/purge", ({ body }) => {
    const b = parse(DlqPurgeBody, body);
    let olderThanMs: number | undefined;
    if (b.older_than !== undefined) {
      try {
        olderThanMs = parseDurationMs(b.older_than);
      } catch {
        throw new ControlError(400, "invalid_parameters", `older_than must be a Go duration, got ${JSON.stringify(b.older_than)}`);
      }
    }
    const n = journalCall(() =>
      dlqPurge(db(), {
        ...(b.ids ? { ids: b.ids } : {}),
        ...(olderThanMs !== undefined ? { olderThanMs } : {}),
        ...(b.all ? { all: true } : {}),
        now: s.now(),
      }),
    );
    return { body: { purged: n } };
  });
  server.route("POST", "/v1/replay", async ({ body }) => {
    const b = parse(ReplayBody, body);
    const dispatcher = s.dispatcher;
    if (!dispatcher) throw new ControlError(503, "not_ready", "the agent is not connected yet (no dispatcher)");
    const filter: ReplayFilter = {
      dryRun: b.dry_run,
      noReconcile: !b.reconcile,
      ...(b.since ? { since: b.since } : {}),
      ...(b.until ? { until: b.until } : {}),
      ...(b.types ? { types: b.types } : {}),
      ...(b.ids ? { ids: b.ids } : {}),
      ...(b.seqs ? { seqs: b.seqs } : {}),
      ...(b.status !== undefined ? { status: b.status } : {}),
    };
    try {
      const rows = await replay({ db: db(), dispatcher, log: s.log, now: s.now, reconcile: () => s.scheduler?.trigger("replay") }, filter);
      return { body: { rows } };
    } catch (err) {
      return journalCall(() => {
        throw err;
      });
    }
  });
}
