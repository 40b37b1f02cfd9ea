/**
 * Shared pieces of the test/e2e/mesh-*.test.ts files: bring up a lab mesh of compiled agents,
 * read the agent's own view (`plexd status --json`) and its
 * journal (`plexd.db`, schema of operations.md §1.1, opened read-only from outside), and attach
 * agent log tails to failures so a red test says why.
 */
import { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Lab, waitFor, type LabNode, type LabOptions, type LabProc } from "./lab.ts";
import { BUN, run, type RunResult } from "./netns.ts";

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

// ───────────────────────── TCP tools inside a node's namespace ─────────────────────────
// Small node:net scripts run with the repo's bun (`bun -e`) in a node's network namespace, so
// tests do not depend on nc/socat. Each prints one JSON object per line on stdout.

/** Echo server on every port of PLX_PORTS (0.0.0.0). Prints `{listening: port}` per port. */
const TCP_SERVER = `
const net = require("node:net");
for (const port of process.env.PLX_PORTS.split(",").map(Number)) {
  net.createServer((s) => { s.setNoDelay(true); s.on("data", (d) => s.write(d)); s.on("error", () => {}); })
    .on("error", (e) => { console.log(JSON.stringify({ error: String(e), port })); process.exit(1); })
    .listen(port, "0.0.0.0", () => console.log(JSON.stringify({ listening: port })));
}`;

/**
 * Connect probe: a new connection attempt every PLX_EVERY_MS (attempts overlap, so a dropped SYN
 * never delays the next try by the kernel's 1 s retransmit) for PLX_DURATION_MS (0 = one
 * attempt), each given up after PLX_TIMEOUT_MS; PLX_UNTIL_OK=1 stops at the first success.
 * Prints `{t0, t1, ok, why}` per attempt (epoch ms: start, end); exits when all attempts ended.
 */
const TCP_PROBE = `
const net = require("node:net");
const e = process.env, host = e.PLX_HOST, port = Number(e.PLX_PORT), every = Number(e.PLX_EVERY_MS);
const timeout = Number(e.PLX_TIMEOUT_MS), duration = Number(e.PLX_DURATION_MS), untilOk = e.PLX_UNTIL_OK === "1";
const start = Date.now();
let pending = 0, stop = false;
function attempt() {
  pending++;
  const t0 = Date.now(), s = net.connect({ host, port });
  let done = false;
  const finish = (ok, why) => {
    if (done) return;
    done = true; clearTimeout(to); s.destroy(); pending--;
    console.log(JSON.stringify({ t0, t1: Date.now(), ok, why }));
    if (ok && untilOk) stop = true;
    if (stop && pending === 0) process.exit(0);
  };
  const to = setTimeout(() => finish(false, "timeout"), timeout);
  s.once("connect", () => finish(true, "connect"));
  s.once("error", (err) => finish(false, err.code ?? String(err)));
}
function tick() {
  if (stop) return;
  attempt();
  if (Date.now() - start >= duration) stop = true;
  else setTimeout(tick, every);
}
tick();`;

/**
 * Long-lived client: connects once, sends a counter line every PLX_EVERY_MS and prints
 * `{connected, local}`, then `{echo: n, t}` per echoed line, `{closed, hadError}` at the end.
 */
const TCP_STREAM = `
const net = require("node:net");
const e = process.env, every = Number(e.PLX_EVERY_MS);
const s = net.connect({ host: e.PLX_HOST, port: Number(e.PLX_PORT) });
let n = 0, buf = "";
s.setNoDelay(true);
s.on("connect", () => {
  console.log(JSON.stringify({ connected: Date.now(), local: s.localPort }));
  setInterval(() => s.write(++n + "\\n"), every);
});
s.on("data", (d) => {
  buf += d;
  for (let i; (i = buf.indexOf("\\n")) >= 0; buf = buf.slice(i + 1)) console.log(JSON.stringify({ echo: Number(buf.slice(0, i)), t: Date.now() }));
});
s.on("error", (err) => console.log(JSON.stringify({ error: err.code ?? String(err), t: Date.now() })));
s.on("close", (hadError) => { console.log(JSON.stringify({ closed: Date.now(), hadError })); process.exit(0); });`;

/** Collects a process's stdout as parsed JSON lines (`{raw}` for a line that is not JSON). */
export class JsonLines {
  readonly items: any[] = [];
  /** Resolves when stdout ended. */
  readonly ended: Promise<void>;
  constructor(stream: ReadableStream<Uint8Array>) {
    this.ended = this.pump(stream);
  }
  private async pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    const dec = new TextDecoder();
    let buf = "";
    try {
      for await (const chunk of stream) {
        buf += dec.decode(chunk, { stream: true });
        for (let i; (i = buf.indexOf("\n")) >= 0; buf = buf.slice(i + 1)) {
          const line = buf.slice(0, i).trim();
          if (!line) continue;
          try {
            this.items.push(JSON.parse(line));
          } catch {
            this.items.push({ raw: line });
          }
        }
      }
    } catch {
      /* stream closed by a kill */
    }
  }
}

/** A TCP tool process and its output. */
export interface TcpTool {
  proc: LabProc;
  out: JsonLines;
}

/** One connection attempt of {@link tcpProbe}. */
export interface TcpAttempt {
  t0: number;
  t1: number;
  ok: boolean;
  why: string;
}

let toolSeq = 0;

function tcpTool(lab: Lab, node: LabNode, kind: string, script: string, env: Record<string, string>): TcpTool {
  // No transpiler cache writes from inside the namespace; nothing else of bun's is used.
  const proc = lab.spawnInNode(node, `tcp-${kind}-${++toolSeq}`, [BUN, "-e", script], {
    env: { ...env, BUN_RUNTIME_TRANSPILER_CACHE_PATH: "0" },
  });
  return { proc, out: new JsonLines(proc.proc.stdout as ReadableStream<Uint8Array>) };
}

/** Starts an echo server in the node on `ports` (all addresses) and waits until each listens. */
export async function tcpServer(lab: Lab, node: LabNode, ports: number[]): Promise<TcpTool> {
  const t = tcpTool(lab, node, "server", TCP_SERVER, { PLX_PORTS: ports.join(",") });
  await waitFor(
    `${node.name}: TCP server listening on ${ports.join(",")}`,
    () => {
      const err = t.out.items.find((i) => i.error);
      if (err) throw new Error(`server: ${JSON.stringify(err)}`);
      return ports.every((p) => t.out.items.some((i) => i.listening === p));
    },
    { timeoutMs: 20_000, intervalMs: 50, abortIf: () => (t.proc.exit ? `server exited (code ${t.proc.exit.code})` : null) },
  );
  return t;
}

/** Starts a connect probe from the node (see TCP_PROBE); read `out.items` as {@link TcpAttempt}s. */
export function tcpProbe(
  lab: Lab,
  from: LabNode,
  host: string,
  port: number,
  o: { everyMs?: number; timeoutMs?: number; durationMs?: number; untilOk?: boolean } = {},
): TcpTool {
  return tcpTool(lab, from, "probe", TCP_PROBE, {
    PLX_HOST: host,
    PLX_PORT: String(port),
    PLX_EVERY_MS: String(o.everyMs ?? 50),
    PLX_TIMEOUT_MS: String(o.timeoutMs ?? 300),
    PLX_DURATION_MS: String(o.durationMs ?? 0),
    PLX_UNTIL_OK: o.untilOk ? "1" : "0",
  });
}

/** Waits for a probe to end (generous limit) and returns its attempts. */
export async function probeResult(lab: Lab, t: TcpTool, limitMs = 60_000): Promise<TcpAttempt[]> {
  const ended = await Promise.race([t.proc.proc.exited.then(() => true), Bun.sleep(limitMs).then(() => false)]);
  await lab.stopInNode(t.proc, 1000);
  if (!ended) throw new Error(`TCP probe did not end within ${limitMs} ms`);
  await t.out.ended;
  return t.out.items.filter((i) => typeof i.ok === "boolean") as TcpAttempt[];
}

/** One TCP connect from the node to host:port: true when the handshake completed within `timeoutMs`. */
export async function tcpConnect(lab: Lab, from: LabNode, host: string, port: number, timeoutMs = 1500): Promise<boolean> {
  const attempts = await probeResult(lab, tcpProbe(lab, from, host, port, { timeoutMs, durationMs: 0 }));
  if (attempts.length !== 1) throw new Error(`TCP probe ${from.name}→${host}:${port}: ${attempts.length} results`);
  return attempts[0]!.ok;
}

/** Opens a long-lived connection from the node (a counter line every `everyMs`, echoed back). */
export async function tcpStream(lab: Lab, from: LabNode, host: string, port: number, everyMs = 100): Promise<TcpTool> {
  const t = tcpTool(lab, from, "stream", TCP_STREAM, { PLX_HOST: host, PLX_PORT: String(port), PLX_EVERY_MS: String(everyMs) });
  await waitFor(`${from.name}: TCP stream to ${host}:${port} connected`, () => t.out.items.some((i) => i.connected), {
    timeoutMs: 20_000,
    intervalMs: 50,
    abortIf: () => (t.proc.exit ? `stream client exited: ${JSON.stringify(t.out.items)}` : null),
  });
  return t;
}

// ───────────────────────── nftables, read from outside ─────────────────────────

/** `nft <args>` in the node's network namespace. */
export function nftIn(node: LabNode, args: string[]): Promise<RunResult> {
  return run(["ip", "netns", "exec", node.netns, "nft", ...args], { timeoutMs: 10_000 });
}

/**
 * Drops handles, zeroes counters and sorts set elements, recursively: what differs between two
 * dumps of the same ruleset (element order follows insertion history in some set backends).
 */
function stableNft(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stableNft);
  if (v === null || typeof v !== "object") return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === "handle") continue;
    if (k === "counter" && x !== null && typeof x === "object") out[k] = { packets: 0, bytes: 0 };
    else if (k === "elem" && Array.isArray(x)) out[k] = x.map(stableNft).sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
    else out[k] = stableNft(x);
  }
  return out;
}

/**
 * `nft -j list table <family> <name>` in the node, without metainfo, handles, counter values and
 * element order (stable JSON text, comparable before/after); null when the table does not exist.
 */
export async function nftTableJson(node: LabNode, family: string, name: string): Promise<string | null> {
  const r = await nftIn(node, ["-j", "list", "table", family, name]);
  if (r.code !== 0) return null;
  const items = (JSON.parse(r.stdout) as { nftables: Record<string, unknown>[] }).nftables.filter((i) => !("metainfo" in i));
  return JSON.stringify(stableNft(items));
}
