/**
 * Action executions: admin dispatch → `action_request` event; ACK and result stored. Once a final
 * result exists, further ACKs/results for the id answer 409 (the agent then marks them delivered).
 */
import type { Db } from "./db.ts";
import type { EventLog } from "./events.ts";
import { randomId } from "./secrets-crypto.ts";
import { conflict, notFound } from "./errors.ts";

export interface ExecutionRow {
  execution_id: string;
  node_id: string;
  action: string;
  request: string;
  created_at: number;
  ack_status: string | null;
  ack_reason: string | null;
  ack_at: number | null;
  result: string | null;
  result_at: number | null;
}

/** What the admin asks a node to run. */
export interface ActionRequest {
  action: string;
  parameters?: Record<string, string | number | boolean>;
  timeout?: string;
  checksum?: string;
  type?: "builtin" | "hook";
}

export class Executions {
  constructor(
    private readonly db: Db,
    private readonly events: EventLog,
    private readonly now: () => number = Date.now,
  ) {}

  get(id: string): ExecutionRow | undefined {
    return (this.db.query("SELECT * FROM executions WHERE execution_id = ?").get(id) as ExecutionRow | null) ?? undefined;
  }

  /** Stores the request, then sends the `action_request` event. */
  dispatch(nodeId: string, req: ActionRequest): { execution_id: string; event_id: string } {
    const executionId = randomId("exec");
    const payload = {
      execution_id: executionId,
      action: req.action,
      ...(req.type ? { type: req.type } : {}),
      parameters: req.parameters ?? {},
      ...(req.timeout ? { timeout: req.timeout } : {}),
      ...(req.checksum ? { checksum: req.checksum } : {}),
      triggered_by: { type: "control_plane", session_id: "", user_id: "", email: "" },
    };
    this.db
      .query("INSERT INTO executions (execution_id, node_id, action, request, created_at) VALUES (?, ?, ?, ?, ?)")
      .run(executionId, nodeId, req.action, JSON.stringify(payload), this.now());
    const ev = this.events.publish(nodeId, "action_request", payload);
    return { execution_id: executionId, event_id: ev.eventId };
  }

  private owned(nodeId: string, id: string, allowLocal: boolean): ExecutionRow {
    let row = this.get(id);
    if (!row && allowLocal && id.startsWith("local_")) {
      // Results of local executions (actions.md §10.4) are kept for the audit trail.
      this.db
        .query("INSERT INTO executions (execution_id, node_id, action, request, created_at) VALUES (?, ?, '', '{}', ?)")
        .run(id, nodeId, this.now());
      row = this.get(id);
    }
    if (!row || row.node_id !== nodeId) throw notFound("unknown execution_id");
    return row;
  }

  ack(nodeId: string, id: string, status: string, reason: string): void {
    const row = this.owned(nodeId, id, false);
    if (row.result !== null) throw conflict("final result already recorded");
    if (row.ack_status !== null) return; // first ACK wins; repeats are idempotent
    this.db
      .query("UPDATE executions SET ack_status = ?, ack_reason = ?, ack_at = ? WHERE execution_id = ?")
      .run(status, reason, this.now(), id);
  }

  result(nodeId: string, id: string, body: unknown): void {
    const row = this.owned(nodeId, id, true);
    if (row.result !== null) throw conflict("final result already recorded");
    this.db.query("UPDATE executions SET result = ?, result_at = ? WHERE execution_id = ?").run(JSON.stringify(body), this.now(), id);
  }

  /** JSON view for the admin API. */
  view(row: ExecutionRow): Record<string, unknown> {
    return {
      execution_id: row.execution_id,
      node_id: row.node_id,
      action: row.action,
      request: JSON.parse(row.request),
      created_at: new Date(row.created_at).toISOString(),
      ack: row.ack_status === null ? null : { status: row.ack_status, reason: row.ack_reason, at: new Date(row.ack_at as number).toISOString() },
      result: row.result === null ? null : JSON.parse(row.result),
    };
  }

  list(nodeId: string): Record<string, unknown>[] {
    return (this.db.query("SELECT * FROM executions WHERE node_id = ? ORDER BY created_at").all(nodeId) as ExecutionRow[]).map((r) =>
      this.view(r),
    );
  }
}
