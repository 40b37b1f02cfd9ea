/**
 * Shared helpers for the reference-CP integration tests: spawn a real `plexd-cp serve` process,
 * call its API, open SSE streams. Every process is killed by PID and every temp dir removed.
 */
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");
const BUN = join(ROOT, "node_modules/.bin/bun");
const MAIN = join(ROOT, "src/cp/main.ts");

export interface CpProc {
  url: string;
  adminToken: string;
  caFile: string | null;
  dir: string;
  proc: ReturnType<typeof Bun.spawn>;
  /** Kills the process (SIGTERM, then SIGKILL) and waits for it. */
  kill(): Promise<void>;
  /** Kills and starts again on the same port and DB. */
  restart(): Promise<void>;
  /** Kills and removes the temp dir. */
  cleanup(): Promise<void>;
}

export interface StartOptions {
  tls?: boolean;
  faults?: boolean;
  extra?: string[];
}

async function readReady(proc: ReturnType<typeof Bun.spawn>): Promise<{ url: string; admin_token: string; ca_file: string | null }> {
  const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
  const dec = new TextDecoder();
  let buf = "";
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const { done, value } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    const nl = buf.indexOf("\n");
    if (nl >= 0) {
      reader.releaseLock();
      return JSON.parse(buf.slice(0, nl));
    }
  }
  const err = await new Response(proc.stderr as ReadableStream).text().catch(() => "");
  throw new Error(`CP did not become ready: ${err}`);
}

/** Spawns a CP on 127.0.0.1 with a fresh temp dir. */
export async function startCp(opts: StartOptions = {}): Promise<CpProc> {
  const dir = mkdtempSync(join(tmpdir(), "plexd-cp-test-"));
  let port = 0;
  const spawn = async () => {
    const args = [MAIN, "serve", "--listen", `127.0.0.1:${port}`, "--db", join(dir, "cp.db"), opts.tls ? "--tls" : "--no-tls"];
    if (opts.faults) args.push("--faults");
    args.push(...(opts.extra ?? []));
    const proc = Bun.spawn([BUN, ...args], { stdout: "pipe", stderr: "pipe", cwd: ROOT });
    const ready = await readReady(proc);
    port = Number(new URL(ready.url).port);
    return { proc, ready };
  };
  const first = await spawn();
  const cp: CpProc = {
    url: first.ready.url,
    adminToken: first.ready.admin_token,
    caFile: first.ready.ca_file,
    dir,
    proc: first.proc,
    async kill() {
      const p = cp.proc;
      if (p.exitCode !== null || p.signalCode !== null) return;
      process.kill(p.pid, "SIGTERM");
      const t = setTimeout(() => {
        try {
          process.kill(p.pid, "SIGKILL");
        } catch {
          /* gone */
        }
      }, 3000);
      await p.exited;
      clearTimeout(t);
    },
    async restart() {
      await cp.kill();
      const again = await spawn();
      cp.proc = again.proc;
    },
    async cleanup() {
      await cp.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return cp;
}

/** Options of one API call. */
export interface CallOptions {
  token?: string;
  body?: unknown;
  raw?: string | Uint8Array | Blob;
  headers?: Record<string, string>;
}

/** Calls the CP; returns status, parsed JSON (or text) and headers. */
export async function call(cp: CpProc, method: string, path: string, o: CallOptions = {}) {
  const headers: Record<string, string> = { ...(o.headers ?? {}) };
  if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`;
  let body: string | Uint8Array | Blob | undefined = o.raw;
  if (o.body !== undefined) {
    body = JSON.stringify(o.body);
    headers["content-type"] ??= "application/json";
  }
  const res = await fetch(cp.url + path, { method, headers, body, ...(cp.caFile ? { tls: { ca: await Bun.file(cp.caFile).text() } } : {}) } as RequestInit);
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text, headers: res.headers };
}

/** Admin API call. */
export const admin = (cp: CpProc, method: string, path: string, body?: unknown) =>
  call(cp, method, path, { token: cp.adminToken, ...(body !== undefined ? { body } : {}) });

/** A fresh base64 Curve25519 public key. */
export function newPublicKey(): string {
  const { publicKey } = generateKeyPairSync("x25519");
  const jwk = publicKey.export({ format: "jwk" }) as { x: string };
  return Buffer.from(jwk.x, "base64url").toString("base64");
}

/** A registered node. */
export interface TestNode {
  node_id: string;
  mesh_ip: string;
  nsk: string;
  signing_public_key: string;
  public_key: string;
  hostname: string;
  peers: any[];
}

let hostCounter = 0;
const RUN = Math.random().toString(36).slice(2, 8);

/** Creates a token and registers a node. */
export async function registerNode(cp: CpProc, hostname = `host-${RUN}-${++hostCounter}`): Promise<TestNode> {
  const t = await admin(cp, "POST", "/admin/tokens", { ttl: "10m" });
  const public_key = newPublicKey();
  const r = await call(cp, "POST", "/v1/register", {
    token: t.json.token,
    body: { token: t.json.token, public_key, hostname, metadata: { os: "linux" } },
  });
  if (r.status !== 201) throw new Error(`register failed ${r.status} ${r.text}`);
  return { ...r.json, nsk: r.json.node_secret_key, public_key, hostname };
}

/** One SSE frame. */
export interface SseEvent {
  id: string | undefined;
  event: string | undefined;
  data: string;
}

/** A minimal EventSource reader over fetch. */
export class SseClient {
  readonly events: SseEvent[] = [];
  comments = 0;
  status = 0;
  closed = false;
  private waiters: (() => void)[] = [];
  private readonly ac = new AbortController();

  static async open(cp: CpProc, nodeId: string, nsk: string, lastEventId?: string): Promise<SseClient> {
    const c = new SseClient();
    const headers: Record<string, string> = { authorization: `Bearer ${nsk}`, accept: "text/event-stream" };
    if (lastEventId) headers["last-event-id"] = lastEventId;
    const res = await fetch(`${cp.url}/v1/nodes/${encodeURIComponent(nodeId)}/events`, {
      headers,
      signal: c.ac.signal,
      ...(cp.caFile ? { tls: { ca: await Bun.file(cp.caFile).text() } } : {}),
    } as RequestInit);
    c.status = res.status;
    if (res.ok && res.body) void c.pump(res.body);
    else c.closed = true;
    return c;
  }

  private async pump(body: ReadableStream<Uint8Array>): Promise<void> {
    const dec = new TextDecoder();
    let buf = "";
    let cur: { id?: string; event?: string; data: string[] } = { data: [] };
    try {
      for await (const chunk of body) {
        buf += dec.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line === "") {
            if (cur.data.length > 0) this.events.push({ id: cur.id, event: cur.event, data: cur.data.join("\n") });
            cur = { data: [] };
          } else if (line.startsWith(":")) this.comments++;
          else {
            const i = line.indexOf(":");
            const field = i < 0 ? line : line.slice(0, i);
            const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
            if (field === "data") cur.data.push(value);
            else if (field === "id") cur.id = value;
            else if (field === "event") cur.event = value;
          }
          this.notify();
        }
      }
    } catch {
      /* aborted or dropped */
    }
    this.closed = true;
    this.notify();
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Waits until `pred` holds (checked after every line), or throws after `ms`. */
  async until(pred: (c: SseClient) => boolean, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pred(this)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`SSE condition not met within ${ms} ms (${this.events.length} events)`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, left);
        this.waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
    }
  }

  /** Waits for at least n events in total. */
  waitCount(n: number, ms = 5000): Promise<void> {
    return this.until((c) => c.events.length >= n, ms);
  }

  /** Parsed envelopes. */
  envelopes(): any[] {
    return this.events.map((e) => JSON.parse(e.data));
  }

  close(): void {
    this.ac.abort();
  }
}
