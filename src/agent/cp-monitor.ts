/**
 * CP connectivity (lifecycle.md §1): `online` when a CP request succeeded within
 * 2 × heartbeat.interval, `degraded` after that, `offline` after 3 × without success.
 * Also remembers "node unknown" (403/404) and 426 for status and health.
 */
import type { CpError } from "../controlplane/errors.ts";
import type { Connectivity } from "./types.ts";

/** See the file comment. */
export class CpMonitor {
  #lastSuccess: number | undefined;
  #startedAt: number;
  nodeUnknown = false;
  upgradeRequired: string | undefined;
  lastError: string | undefined;
  #listeners: Array<(c: Connectivity, prev: Connectivity) => void> = [];
  #last: Connectivity;

  constructor(
    private readonly heartbeatIntervalMs: () => number,
    private readonly now: () => number = Date.now,
  ) {
    this.#startedAt = now();
    this.#last = "offline";
  }

  get lastSuccessAt(): number | undefined {
    return this.#lastSuccess;
  }

  /** Called on every successful CP request. */
  success(): void {
    this.#lastSuccess = this.now();
    this.nodeUnknown = false;
    this.upgradeRequired = undefined;
    this.#emit();
  }

  /** Called on a failed CP request. */
  failure(err: CpError): void {
    this.lastError = err.status !== undefined ? `HTTP ${err.status}` : err.kind;
    if (err.status === 403 || err.status === 404) this.nodeUnknown = true;
    if (err.status === 426) this.upgradeRequired = err.minVersion ?? "unknown";
    this.#emit();
  }

  connectivity(): Connectivity {
    const iv = this.heartbeatIntervalMs();
    const since = this.now() - (this.#lastSuccess ?? -Infinity);
    if (since <= 2 * iv) return "online";
    if (this.#lastSuccess !== undefined && since <= 3 * iv) return "degraded";
    return "offline";
  }

  /** Observes transitions (e.g. `offline → online` kicks work). */
  onChange(fn: (c: Connectivity, prev: Connectivity) => void): void {
    this.#listeners.push(fn);
  }

  #emit(): void {
    const c = this.connectivity();
    if (c === this.#last) return;
    const prev = this.#last;
    this.#last = c;
    for (const l of this.#listeners) l(c, prev);
  }
}
