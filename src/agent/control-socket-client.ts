/**
 * CLI side of the control socket: one JSON request, typed result. "Daemon down" (no socket,
 * connection refused) is distinguished from an error answer, so commands can exit 3.
 */

/** Default socket path (actions.socket default). */
export const DEFAULT_CONTROL_SOCKET = "/run/plexd/plexd.sock";

/** Outcome of {@link callDaemon}. */
export type DaemonAnswer =
  | { readonly kind: "down"; readonly message: string }
  | { readonly kind: "ok"; readonly status: number; readonly body: unknown }
  | { readonly kind: "error"; readonly status: number; readonly code: string; readonly message: string };

/** Sends one request to the daemon. */
export async function callDaemon(socket: string, method: "GET" | "POST", path: string, body?: unknown, timeoutMs = 60_000): Promise<DaemonAnswer> {
  let res: Response;
  try {
    res = await fetch(`http://localhost${path}`, {
      method,
      unix: socket,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    } as RequestInit);
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.name === "TimeoutError") return { kind: "error", status: 0, code: "timeout", message: `daemon did not answer within ${timeoutMs} ms` };
    return { kind: "down", message: `daemon not reachable at ${socket} (${e.code ?? e.message})` };
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text === "" ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (res.ok) return { kind: "ok", status: res.status, body: json };
  const o = (json ?? {}) as { error?: unknown; message?: unknown };
  return {
    kind: "error",
    status: res.status,
    code: typeof o.error === "string" ? o.error : `http_${res.status}`,
    message: typeof o.message === "string" ? o.message : text.slice(0, 200),
  };
}
