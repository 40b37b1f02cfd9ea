/**
 * Small pure helpers of the mesh lab: polling, `wg show <if> dump` and ping output parsing.
 * Kept apart from lab.ts so they can be read (and unit-checked) without any namespace.
 */

/** Thrown by waitFor when the condition did not hold in time; `last` describes the last try. */
export class WaitTimeoutError extends Error {
  override readonly name = "WaitTimeoutError";
  readonly code = "wait_timeout";
  constructor(what: string, ms: number, readonly last: unknown, options?: { cause?: unknown }) {
    super(`${what}: not reached within ${ms} ms (last: ${describe(last)})`, options);
  }
}

function describe(v: unknown): string {
  if (v instanceof Error) return `${v.name}: ${v.message}`;
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 600 ? `${s.slice(0, 600)}…` : s;
  } catch {
    return String(v);
  }
}

/**
 * Polls `probe` every `intervalMs` until it returns a value other than `undefined`/`false`/`null`
 * and returns that value. A probe that throws counts as "not yet" (the error is reported on timeout);
 * `abortIf` returning a reason stops waiting immediately.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  opts: { timeoutMs?: number; intervalMs?: number; abortIf?: () => string | null } = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const intervalMs = opts.intervalMs ?? 250;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    // A condition that can no longer become true (e.g. the agent died) ends the wait at once.
    const abort = opts.abortIf?.();
    if (abort) throw new Error(`${what}: given up: ${abort}`);
    try {
      const v = await probe();
      if (v !== undefined && v !== null && v !== false) return v as T;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline) throw new WaitTimeoutError(what, timeoutMs, last);
    await Bun.sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
}

/** One peer line of `wg show <if> dump`. */
export interface WgPeer {
  publicKey: string;
  presharedKey: string | null;
  endpoint: string | null;
  allowedIps: string[];
  /** Unix seconds of the latest handshake; 0 = never. */
  latestHandshake: number;
  rxBytes: number;
  txBytes: number;
  /** Seconds; 0 = off. */
  persistentKeepalive: number;
}

/** The interface line plus peers of `wg show <if> dump`. */
export interface WgDump {
  publicKey: string;
  listenPort: number;
  peers: WgPeer[];
}

/** Parses `wg show <if> dump` (tab separated; first line = interface). */
export function parseWgDump(text: string): WgDump {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  const head = lines[0]?.split("\t");
  if (!head || head.length < 4) throw new Error(`wg dump: no interface line in ${JSON.stringify(text.slice(0, 200))}`);
  const none = (s: string | undefined) => (s === undefined || s === "(none)" || s === "" ? null : s);
  const peers = lines.slice(1).map((l): WgPeer => {
    const f = l.split("\t");
    if (f.length < 8) throw new Error(`wg dump: bad peer line ${JSON.stringify(l)}`);
    return {
      publicKey: f[0]!,
      presharedKey: none(f[1]),
      endpoint: none(f[2]),
      allowedIps: f[3] === "(none)" ? [] : f[3]!.split(",").filter(Boolean),
      latestHandshake: Number(f[4]),
      rxBytes: Number(f[5]),
      txBytes: Number(f[6]),
      persistentKeepalive: f[7] === "off" ? 0 : Number(f[7]),
    };
  });
  return { publicKey: head[1]!, listenPort: Number(head[2]), peers };
}

/** RTT in ms from ping output (`time=0.123 ms`), null when there was no reply line. */
export function parsePingRtt(out: string): number | null {
  const m = /time[=<]([\d.]+) ?ms/.exec(out);
  return m ? Number(m[1]) : null;
}

/** `12s ago` style age for tables. */
export function age(unixSeconds: number, nowMs = Date.now()): string {
  if (!unixSeconds) return "never";
  const s = Math.max(0, Math.round(nowMs / 1000 - unixSeconds));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}
