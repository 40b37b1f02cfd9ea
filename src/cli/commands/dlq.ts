/** `plexd dlq list|show|retry|retry-all|purge` and `plexd replay` (config.md §4.2) via the daemon. */
import { UsageError } from "../args.ts";
import type { Command, CommandContext } from "../command.ts";
import { EXIT } from "../exit.ts";
import { table } from "../output.ts";
import type { DlqEntry, ReplayRow } from "../../journal/index.ts";
import { daemon, printData, printError } from "./agent-common.ts";
import { confirm, stdinIsTty } from "./prompt.ts";

async function call(ctx: CommandContext, method: "GET" | "POST", path: string, body?: unknown): Promise<{ ok: true; body: unknown } | { ok: false; exit: number }> {
  const r = await daemon(ctx, method, path, body);
  if (r.ok) return r;
  if (r.exit >= 0) return { ok: false, exit: r.exit };
  const a = r.answer;
  if (a.kind !== "error") return { ok: false, exit: EXIT.failure };
  const exit = a.status === 400 ? EXIT.usage : EXIT.failure;
  return { ok: false, exit: printError(ctx, a.code, a.message, exit) };
}

const str = (ctx: CommandContext, k: string) => (typeof ctx.parsed.flags[k] === "string" ? (ctx.parsed.flags[k] as string) : undefined);
const list = (ctx: CommandContext, k: string) => {
  const v = ctx.parsed.flags[k];
  return Array.isArray(v) ? v : typeof v === "string" ? [v] : undefined;
};

export const dlqListCommand: Command = {
  path: ["dlq", "list"],
  summary: "list dead-letter entries: ID KIND TYPE EVENT_ID ATTEMPTS DEAD_AT LAST_ERROR",
  flags: {
    type: { kind: "string", value: "T", description: "only this event type / delivery kind" },
    kind: { kind: "string", value: "K", description: "event or delivery" },
    limit: { kind: "string", value: "N", description: "at most N entries" },
  },
  run: async (ctx) => {
    const q = new URLSearchParams();
    for (const k of ["type", "kind", "limit"]) if (str(ctx, k)) q.set(k, str(ctx, k)!);
    const r = await call(ctx, "GET", `/v1/dlq${q.size ? "?" + q : ""}`);
    if (!r.ok) return r.exit;
    const entries = ((r.body as { entries?: DlqEntry[] }).entries ?? []) as DlqEntry[];
    return printData(ctx, { entries }, () =>
      table(
        ["ID", "KIND", "TYPE", "EVENT_ID", "ATTEMPTS", "DEAD_AT", "LAST_ERROR"],
        entries.map((e) => [e.id, e.kind, e.type ?? "-", e.event_id ?? "-", String(e.attempts), e.dead_at ?? "-", (e.last_error ?? "").slice(0, 80)]),
      ),
    );
  },
};

export const dlqShowCommand: Command = {
  path: ["dlq", "show"],
  summary: "show one dead-letter entry in full",
  usage: "ID",
  run: async (ctx) => {
    const id = ctx.parsed.positionals[0];
    if (!id) throw new UsageError("dlq show needs an ID");
    const r = await call(ctx, "GET", `/v1/dlq/${encodeURIComponent(id)}`);
    if (!r.ok) return r.exit;
    return printData(ctx, r.body, () => JSON.stringify(r.body, null, 2));
  },
};

export const dlqRetryCommand: Command = {
  path: ["dlq", "retry"],
  summary: "requeue one dead-letter entry",
  usage: "ID",
  run: async (ctx) => {
    const id = ctx.parsed.positionals[0];
    if (!id) throw new UsageError("dlq retry needs an ID");
    const r = await call(ctx, "POST", `/v1/dlq/${encodeURIComponent(id)}/retry`);
    if (!r.ok) return r.exit;
    const n = (r.body as { requeued: number }).requeued;
    return printData(ctx, { requeued: n }, () => `requeued ${n}`);
  },
};

export const dlqRetryAllCommand: Command = {
  path: ["dlq", "retry-all"],
  summary: "requeue every dead-letter entry (optionally by type/kind)",
  flags: {
    type: { kind: "string", value: "T", description: "only this event type / delivery kind" },
    kind: { kind: "string", value: "K", description: "event or delivery" },
  },
  run: async (ctx) => {
    const r = await call(ctx, "POST", "/v1/dlq/retry-all", { ...(str(ctx, "type") ? { type: str(ctx, "type") } : {}), ...(str(ctx, "kind") ? { kind: str(ctx, "kind") } : {}) });
    if (!r.ok) return r.exit;
    const n = (r.body as { requeued: number }).requeued;
    return printData(ctx, { requeued: n }, () => `requeued ${n}`);
  },
};

export const dlqPurgeCommand: Command = {
  path: ["dlq", "purge"],
  summary: "delete dead-letter entries (IDs, --older-than D or --all)",
  usage: "(ID… | --older-than D | --all) [--yes]",
  flags: {
    "older-than": { kind: "string", value: "D", description: "entries dead for longer than D" },
    all: { kind: "bool", description: "every entry" },
    yes: { kind: "bool", description: "do not ask" },
  },
  run: async (ctx) => {
    const ids = ctx.parsed.positionals;
    const older = str(ctx, "older-than");
    const all = ctx.parsed.flags.all === true;
    if ([ids.length > 0, older !== undefined, all].filter(Boolean).length !== 1) throw new UsageError("give exactly one of: IDs, --older-than D, --all");
    if (ctx.parsed.flags.yes !== true) {
      if (!stdinIsTty()) return printError(ctx, "usage", "dlq purge needs --yes when stdin is not a terminal", EXIT.usage);
      if (!(await confirm("Purge the selected DLQ entries?"))) return printError(ctx, "aborted", "aborted", EXIT.failure);
    }
    const r = await call(ctx, "POST", "/v1/dlq/purge", { ...(ids.length ? { ids } : {}), ...(older ? { older_than: older } : {}), ...(all ? { all: true } : {}) });
    if (!r.ok) return r.exit;
    const n = (r.body as { purged: number }).purged;
    return printData(ctx, { purged: n }, () => `purged ${n}`);
  },
};

export const replayCommand: Command = {
  path: ["replay"],
  summary: "re-apply journaled events (filters; --dry-run shows the changes only)",
  flags: {
    since: { kind: "string", value: "T", description: "duration back or RFC 3339 time" },
    until: { kind: "string", value: "T", description: "duration back or RFC 3339 time" },
    type: { kind: "list", value: "T", description: "event type (repeatable)" },
    id: { kind: "list", value: "E", description: "event id (repeatable)" },
    seq: { kind: "list", value: "N", description: "journal seq (repeatable)" },
    status: { kind: "string", value: "S", description: "row status (default done,dead,ignored,superseded)" },
    "dry-run": { kind: "bool", description: "plan only" },
    "no-reconcile": { kind: "bool", description: "no reconcile after a real replay" },
    yes: { kind: "bool", description: "do not ask" },
  },
  run: async (ctx) => {
    const dry = ctx.parsed.flags["dry-run"] === true;
    if (!dry && ctx.parsed.flags.yes !== true) {
      if (!stdinIsTty()) return printError(ctx, "usage", "replay needs --yes (or --dry-run) when stdin is not a terminal", EXIT.usage);
      if (!(await confirm("Re-apply the selected events?"))) return printError(ctx, "aborted", "aborted", EXIT.failure);
    }
    const seqs = list(ctx, "seq")?.map((s) => {
      const n = Number(s);
      if (!Number.isInteger(n)) throw new UsageError(`--seq must be an integer, got ${JSON.stringify(s)}`);
      return n;
    });
    const status = str(ctx, "status");
    const body = {
      dry_run: dry,
      reconcile: ctx.parsed.flags["no-reconcile"] !== true,
      ...(str(ctx, "since") ? { since: str(ctx, "since") } : {}),
      ...(str(ctx, "until") ? { until: str(ctx, "until") } : {}),
      ...(list(ctx, "type") ? { types: list(ctx, "type") } : {}),
      ...(list(ctx, "id") ? { ids: list(ctx, "id") } : {}),
      ...(seqs ? { seqs } : {}),
      ...(status ? { status: status.includes(",") ? status.split(",") : status } : {}),
    };
    const r = await call(ctx, "POST", "/v1/replay", body);
    if (!r.ok) return r.exit;
    const rows = ((r.body as { rows?: ReplayRow[] }).rows ?? []) as ReplayRow[];
    return printData(ctx, { rows, dry_run: dry }, () =>
      table(
        ["SEQ", "TYPE", "EVENT_ID", "RESULT", "CHANGES"],
        rows.map((x) => [String(x.seq), x.type ?? "-", x.event_id ?? "-", x.result + (x.reason ? ` (${x.reason})` : ""), x.changes.join("; ") || "-"]),
      ),
    );
  },
};
