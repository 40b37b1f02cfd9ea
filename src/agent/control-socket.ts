/**
 * The daemon's control socket (actions.md §10.1): HTTP/1.1 over a Unix stream socket, JSON in
 * and out. Subsystems register routes; the server only routes, bounds bodies and maps errors.
 *
 * A socket file left by a crashed daemon is probed first: if nobody answers it is unlinked
 * and bound again; if a daemon answers, starting fails (one daemon per socket).
 *
 * **Decision:** the file mode is 0600 until per-request authorisation from SO_PEERCRED exists
 * (Bun.serve exposes no fd); the spec's 0666 + peer-credential checks need that first.
 */
import { chmodSync, existsSync, lstatSync, mkdirSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import type { Logger } from "../log/index.ts";

/** Body cap (actions.md §10.1). */
export const MAX_BODY_BYTES = 64 * 1024;

/** A route handler: parsed JSON body (or undefined), path params, query. */
export type RouteHandler = (req: { body: unknown; params: Record<string, string>; query: URLSearchParams }) => Promise<RouteResult> | RouteResult;

/** What a handler answers. */
export interface RouteResult {
  readonly status?: number;
  readonly body: unknown;
}

/** A failure with an HTTP status and a stable code (`{"error", "message"}` on the wire). */
export class ControlError extends Error {
  override readonly name = "ControlError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Thrown when another daemon already serves the socket. */
export class SocketInUseError extends Error {
  override readonly name = "SocketInUseError";
  readonly code = "socket_in_use";
}

interface Route {
  method: string;
  parts: string[];
  handler: RouteHandler;
}

/** True when something answers HTTP on the socket. */
export async function probeSocket(path: string, timeoutMs = 1_000): Promise<boolean> {
  try {
    const r = await fetch("http://localhost/v1/ping", { unix: path, signal: AbortSignal.timeout(timeoutMs) } as RequestInit);
    await r.body?.cancel();
    return true;
  } catch {
    return false;
  }
}

/** See the file comment. */
export class ControlSocketServer {
  readonly #routes: Route[] = [];
  readonly #log: Logger;
  #server: ReturnType<typeof Bun.serve> | undefined;
  #path: string | undefined;

  constructor(log: Logger) {
    this.#log = log;
    this.route("GET", "/v1/ping", () => ({ body: { ok: true } }));
  }

  /** Registers a route; `:name` segments become params. */
  route(method: string, path: string, handler: RouteHandler): void {
    this.#routes.push({ method, parts: path.split("/").filter(Boolean), handler });
  }

  /** Binds the socket (probe → unlink stale → bind). @throws SocketInUseError */
  async listen(path: string): Promise<void> {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    if (existsSync(path)) {
      if (!lstatSync(path).isSocket()) throw new SocketInUseError(`${path} exists and is not a socket`);
      if (await probeSocket(path)) throw new SocketInUseError(`another plexd daemon is serving ${path}`);
      this.#log.warn("removing stale control socket left by a previous run", { path });
      unlinkSync(path);
    }
    this.#server = Bun.serve({ unix: path, fetch: (req) => this.#handle(req) });
    chmodSync(path, 0o600);
    this.#path = path;
  }

  async #handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const parts = url.pathname.split("/").filter(Boolean);
    let methodMismatch = false;
    for (const r of this.#routes) {
      if (r.parts.length !== parts.length) continue;
      const params: Record<string, string> = {};
      const ok = r.parts.every((p, i) => {
        if (p.startsWith(":")) {
          params[p.slice(1)] = decodeURIComponent(parts[i]!);
          return true;
        }
        return p === parts[i];
      });
      if (!ok) continue;
      if (r.method !== req.method) {
        methodMismatch = true;
        continue;
      }
      try {
        const text = await req.text();
        if (text.length > MAX_BODY_BYTES) throw new ControlError(413, "body_too_large", `request body larger than ${MAX_BODY_BYTES} bytes`);
        let body: unknown;
        if (text !== "") {
          try {
            body = JSON.parse(text);
          } catch {
            throw new ControlError(400, "invalid_parameters", "request body is not JSON");
          }
        }
        const res = await r.handler({ body, params, query: url.searchParams });
        return Response.json(res.body, { status: res.status ?? 200 });
      } catch (err) {
        if (err instanceof ControlError) return Response.json({ error: err.code, message: err.message }, { status: err.status });
        const e = err as Error & { code?: string; status?: number };
        this.#log.warn("control socket request failed", { path: url.pathname, error: e.message });
        return Response.json({ error: e.code ?? "internal", message: e.message }, { status: 500 });
      }
    }
    if (methodMismatch) return Response.json({ error: "method_not_allowed", message: `${req.method} not allowed` }, { status: 405 });
    return Response.json({ error: "not_found", message: `no route ${url.pathname}` }, { status: 404 });
  }

  /** Stops serving and removes the socket file. */
  async close(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    if (s) await s.stop(true);
    if (this.#path) {
      try {
        unlinkSync(this.#path);
      } catch {
        /* already gone */
      }
    }
  }
}
