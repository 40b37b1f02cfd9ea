/**
 * Fault injection (only with `serve --faults`): canned HTTP errors and latency for /v1 paths
 * matching a pattern, SSE drop/stall, and deliberately bad events.
 */
import type { EventLog, StoredEvent } from "./events.ts";
import { HttpError } from "./errors.ts";
import { json } from "./http.ts";

/** Answer the next `count` matching requests with `status`. */
export interface HttpFault {
  id: number;
  pattern: string;
  method?: string;
  status: number;
  remaining: number;
  retryAfter?: number;
}

/** Delay matching requests by `ms` (`remaining` requests, or all when null). */
export interface LatencyFault {
  id: number;
  pattern: string;
  method?: string;
  ms: number;
  remaining: number | null;
}

/** Bad-event kinds the CP can emit on demand. */
export type BadEventKind = "forged" | "stale" | "replayed" | "malformed" | "oversized";

export class Faults {
  private nextId = 1;
  private http: HttpFault[] = [];
  private latency: LatencyFault[] = [];
  private readonly stalls = new Map<string, number>();

  constructor(readonly enabled: boolean, private readonly now: () => number = Date.now) {}

  private matches(f: { pattern: string; method?: string }, method: string, path: string): boolean {
    if (f.method && f.method.toUpperCase() !== method) return false;
    return new RegExp(f.pattern).test(path);
  }

  addHttp(f: Omit<HttpFault, "id">): HttpFault {
    new RegExp(f.pattern); // reject bad patterns at creation
    const full = { ...f, id: this.nextId++ };
    this.http.push(full);
    return full;
  }

  addLatency(f: Omit<LatencyFault, "id">): LatencyFault {
    new RegExp(f.pattern);
    const full = { ...f, id: this.nextId++ };
    this.latency.push(full);
    return full;
  }

  /** Stalls (or, with ms = 0, un-stalls) the SSE streams of a node. */
  stall(nodeId: string, ms: number): void {
    if (ms <= 0) this.stalls.delete(nodeId);
    else this.stalls.set(nodeId, this.now() + ms);
  }

  isStalled(nodeId: string): boolean {
    const until = this.stalls.get(nodeId);
    if (until === undefined) return false;
    if (until <= this.now()) {
      this.stalls.delete(nodeId);
      return false;
    }
    return true;
  }

  clear(): void {
    this.http = [];
    this.latency = [];
    this.stalls.clear();
  }

  list(): Record<string, unknown> {
    return { http: this.http, latency: this.latency, stalls: Object.fromEntries(this.stalls) };
  }

  /** Applies latency and returns a canned error response when a fault matches this request. */
  async intercept(method: string, path: string): Promise<Response | undefined> {
    if (!this.enabled) return undefined;
    for (const l of this.latency) {
      if (l.remaining === 0 || !this.matches(l, method, path)) continue;
      if (l.remaining !== null) l.remaining--;
      await Bun.sleep(l.ms);
    }
    this.latency = this.latency.filter((l) => l.remaining !== 0);
    const f = this.http.find((h) => h.remaining > 0 && this.matches(h, method, path));
    if (!f) return undefined;
    f.remaining--;
    this.http = this.http.filter((h) => h.remaining > 0);
    const headers: Record<string, string> = {};
    if (f.retryAfter !== undefined) headers["retry-after"] = String(f.retryAfter);
    return json({ error: "injected_fault", status: f.status }, f.status, headers);
  }
}

/** Emits one deliberately bad event to a node. */
export function injectBadEvent(
  log: EventLog,
  nodeId: string,
  kind: BadEventKind,
  now: number,
  eventType = "policy_updated",
): StoredEvent {
  switch (kind) {
    case "forged":
      return log.publish(nodeId, eventType, {}, { forge: true });
    case "stale":
      return log.publish(nodeId, eventType, {}, { issuedAt: new Date(now - 10 * 60_000).toISOString() });
    case "replayed": {
      const last = log.last(nodeId);
      let nonce: string | undefined;
      try {
        nonce = last ? (JSON.parse(last.data) as { nonce?: string }).nonce : undefined;
      } catch {
        nonce = undefined;
      }
      if (!nonce) throw new HttpError(409, "conflict", "node has no earlier well-formed event to replay");
      return log.publish(nodeId, eventType, {}, { nonce });
    }
    case "malformed":
      return log.appendRaw(nodeId, eventType, (id) => `{"event_type":"${eventType}","event_id":"${id}","payload":{`);
    case "oversized":
      return log.publish(nodeId, eventType, { padding: "x".repeat(1024 * 1024 + 1024) });
  }
}
