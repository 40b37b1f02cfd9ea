/**
 * Heartbeat loop (lifecycle.md §7, protocol.md §6.3): first beat at once, then every
 * `heartbeat.interval` ±jitter, 10 s timeout, no retry inside a tick. Directives: `reconcile`
 * → trigger a reconcile; `rotate_keys` → key rotation. 401 → §11, 403/404 → node unknown.
 */
import type { CpApi } from "../controlplane/api.ts";
import type { HeartbeatRequest, NatType } from "../controlplane/types.ts";
import type { Logger } from "../log/index.ts";
import { formatDurationMs, formatRfc3339Ms } from "../util/duration.ts";

/** Inputs of one heartbeat body. */
export interface HeartbeatFacts {
  nodeId: string;
  status: HeartbeatRequest["status"];
  uptimeMs: number;
  binaryChecksum: string;
  iface: string;
  listenPort: number;
  peerCount: number;
  nat?: { public_endpoint: string; type: NatType };
}

/** Builds the §6.3 body. */
export function heartbeatBody(f: HeartbeatFacts, nowMs: number): HeartbeatRequest {
  return {
    node_id: f.nodeId,
    timestamp: formatRfc3339Ms(nowMs),
    status: f.status,
    uptime: formatDurationMs(Math.max(0, Math.round(f.uptimeMs / 1000) * 1000)),
    binary_checksum: f.binaryChecksum,
    mesh: { interface: f.iface, peer_count: f.peerCount, listen_port: f.listenPort },
    ...(f.nat ? { nat: f.nat } : {}),
  };
}

/** Collaborators of {@link HeartbeatLoop}. */
export interface HeartbeatDeps {
  readonly api: CpApi;
  readonly facts: () => Promise<HeartbeatFacts>;
  readonly intervalMs: () => number;
  readonly jitter?: number;
  readonly onSuccess: () => void;
  readonly onReconcile: () => void;
  readonly onRotateKeys: () => void;
  readonly on401: () => void;
  readonly onFailure: (err: import("../controlplane/errors.ts").CpError) => void;
  readonly log: Logger;
  readonly now?: () => number;
  readonly random?: () => number;
}

/** See the file comment. */
export class HeartbeatLoop {
  readonly #d: HeartbeatDeps;
  readonly #now: () => number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #inflight: Promise<void> | undefined;
  /** Aborts an in-flight heartbeat at stop: a hung CP must not hold the drain (up to 10 s). */
  #abort = new AbortController();
  #stopped = true;
  lastSentAt: number | undefined;
  lastOkAt: number | undefined;
  consecutiveFailures = 0;
  sent = 0;

  constructor(deps: HeartbeatDeps) {
    this.#d = deps;
    this.#now = deps.now ?? Date.now;
  }

  /** Starts with an immediate beat. */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#abort = new AbortController();
    this.beatNow();
  }

  /** One beat now (401 retry, probe); the next periodic beat follows one interval later. */
  beatNow(): void {
    if (this.#stopped) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#inflight) return;
    this.#inflight = this.#beat().finally(() => {
      this.#inflight = undefined;
      this.#arm();
    });
  }

  #arm(): void {
    if (this.#stopped) return;
    const j = this.#d.jitter ?? 0.1;
    const ms = this.#d.intervalMs() * (1 - j + 2 * j * (this.#d.random ?? Math.random)());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.beatNow();
    }, ms);
  }

  async #beat(): Promise<void> {
    let body: HeartbeatRequest;
    let facts: HeartbeatFacts;
    try {
      facts = await this.#d.facts();
      body = heartbeatBody(facts, this.#now());
    } catch (err) {
      this.#d.log.warn("heartbeat: cannot collect facts", { error: (err as Error).message });
      return;
    }
    this.lastSentAt = this.#now();
    this.sent++;
    const r = await this.#d.api.heartbeat(facts.nodeId, body, this.#abort.signal);
    if (this.#stopped) return;
    if (r.ok) {
      this.lastOkAt = this.#now();
      this.consecutiveFailures = 0;
      this.#d.onSuccess();
      if (r.value.reconcile) this.#d.onReconcile();
      if (r.value.rotate_keys) this.#d.onRotateKeys();
      return;
    }
    this.consecutiveFailures++;
    if (r.error.status === 401) this.#d.on401();
    else {
      this.#d.onFailure(r.error);
      this.#d.log.warn("heartbeat failed", { kind: r.error.kind, status: r.error.status, consecutive: this.consecutiveFailures });
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#abort.abort();
    await this.#inflight;
  }
}
