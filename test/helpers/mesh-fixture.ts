/**
 * Shared pieces of the test/e2e/mesh-*.test.ts files: bring up a lab mesh of compiled agents,
 * read the agent's own view (`plexd status --json`) and its
 * journal (`plexd.db`, schema of operations.md §1.1, opened read-only from outside), and attach
 * agent log tails to failures so a red test says why.
 */
import { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Lab, type LabNode, type LabOptions } from "./lab.ts";

/** A lab with `count` agents that all reached a full mesh. */
export interface Mesh {
  lab: Lab;
  nodes: LabNode[];
}

/** Per-node config overrides by index (1-based). */
export type NodeConfigs = Record<number, Record<string, unknown>>;

/**
 * Creates a lab, starts the CP and `count` agents, and waits until every pair pings over mesh
 * IPs. On failure the lab is cleaned up and the error carries every agent's log tail.
 */
export async function startMesh(
  count: number,
  opts: LabOptions & { nodeConfigs?: NodeConfigs | ((lab: Lab) => NodeConfigs); timeoutMs?: number } = {},
): Promise<Mesh> {
  const lab = await Lab.create(opts);
  try {
    await lab.startCp();
    // A function sees the lab first, e.g. to put helper files into lab.dir.
    const configs = typeof opts.nodeConfigs === "function" ? opts.nodeConfigs(lab) : (opts.nodeConfigs ?? {});
    const nodes: LabNode[] = [];
    for (let i = 1; i <= count; i++) nodes.push(await lab.addNode({ config: configs[i] ?? {} }));
    for (const n of nodes) lab.startAgent(n);
    await withLogs(lab, nodes, () => lab.waitMesh(nodes, opts.timeoutMs ?? 60_000));
    return { lab, nodes };
  } catch (e) {
    await lab.cleanup();
    throw e;
  }
}

/** Runs fn; on error rethrows with the agents' exit states and log tails appended. */
export async function withLogs<T>(lab: Lab, nodes: LabNode[], fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const parts: string[] = [];
    for (const n of nodes) {
      const exit = n.agent?.exit ? ` exited code=${n.agent.exit.code} signal=${n.agent.exit.signal}` : "";
      parts.push(`--- ${n.name}${exit} (${n.logPath}):\n${await lab.agentLog(n, 1500)}`);
    }
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(`${msg}\n${parts.join("\n")}`, { cause: e });
  }
}

/**
 * The agent's status snapshot (`plexd status --json` → `data`; the document behind `GET
 * /v1/status` of the control socket). Only the fields the tests read are typed.
 */
export interface AgentStatus {
  phase: string;
  node_id: string | null;
  mesh_ip: string | null;
  control_plane: { connectivity: string; auth: string };
  sse: { state: string; reconnects_total: number; last_event_id: string | null };
  peers: { up: number; total: number };
  health: { status: string; problems: unknown[] };
}

/** `plexd status --json` inside the node; throws with the output when there is no document. */
export async function status(lab: Lab, node: LabNode): Promise<AgentStatus> {
  const r = await lab.plexdJson(node, ["status"], { timeoutMs: 10_000 });
  const d = r.doc?.data;
  if (!d || typeof d.phase !== "string") {
    throw new Error(`plexd status --json on ${node.name}: exit ${r.code}: ${r.raw.stdout}${r.raw.stderr}`);
  }
  return d as AgentStatus;
}

/** A row of the agent's journal (operations.md §1.1); only the columns the tests read. */
export interface JournalRow {
  seq: number;
  sse_id: string | null;
  event_id: string | null;
  event_type: string | null;
  verify: string;
  reject_reason: string | null;
  status: string;
  attempts: number;
  received_at: string;
  last_error: string | null;
}

/**
 * Reads the journal of a node's agent from outside (read-only; WAL lets us read while the agent
 * writes). `where` is a SQL condition over the events table.
 */
export function journal(node: LabNode, where = "1=1", params: (string | number)[] = []): JournalRow[] {
  const path = join(node.dataDir, "plexd.db");
  if (!existsSync(path)) throw new Error(`${node.name}: no ${path}`);
  const db = new Database(path, { readonly: true });
  try {
    return db
      .query(
        `SELECT seq, sse_id, event_id, event_type, verify, reject_reason, status, attempts, received_at, last_error
         FROM events WHERE ${where} ORDER BY seq`,
      )
      .all(...params) as JournalRow[];
  } finally {
    db.close();
  }
}

/** `kv` value of the agent's DB (e.g. `sse.last_event_id`), null when absent. */
export function kv(node: LabNode, key: string): string | null {
  const db = new Database(join(node.dataDir, "plexd.db"), { readonly: true });
  try {
    const row = db.query("SELECT value FROM kv WHERE key = ?").get(key) as { value: unknown } | null;
    return row === null ? null : String(row.value);
  } finally {
    db.close();
  }
}

/** Rows of a `--json` list document whatever its wrapping (`data` array or `data.<key>` array). */
export function rowsOf(doc: any, ...keys: string[]): any[] {
  const d = doc?.data;
  if (Array.isArray(d)) return d;
  for (const k of [...keys, "items", "rows", "entries", "events"]) if (Array.isArray(d?.[k])) return d[k];
  throw new Error(`no list in ${JSON.stringify(doc)?.slice(0, 500)}`);
}

/** `nft list table inet plexd` inside the node's network namespace: true when it exists. */
export async function hasPlexdTable(node: LabNode): Promise<boolean> {
  const p = Bun.spawn(["ip", "netns", "exec", node.netns, "nft", "list", "table", "inet", "plexd"], { stdout: "pipe", stderr: "pipe" });
  return (await p.exited) === 0;
}

/** The CP record of a node by id via the admin API: status code (404 once removed) and body. */
export async function cpNode(lab: Lab, id: string): Promise<{ status: number; json: any }> {
  const r = await lab.admin("GET", `/admin/nodes/${encodeURIComponent(id)}`);
  return { status: r.status, json: r.json };
}
