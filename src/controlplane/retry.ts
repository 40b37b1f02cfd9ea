/**
 * Retry classes of protocol.md §4 and one generic loop that applies them. Clock, sleep and
 * randomness are injectable, so tests run a 5-minute budget in microseconds.
 */
import { backoffDelay } from "../util/backoff.ts";
import { CpError } from "./errors.ts";

/** A retry class: backoff parameters and when to give up. */
export interface RetryClass {
  readonly name: string;
  /** Backoff base / cap (ms); see util/backoff.ts. */
  readonly baseMs: number;
  readonly capMs: number;
  /** Total budget from the first attempt; undefined = no time limit. */
  readonly maxDurationMs?: number;
  /** Attempts including the first; undefined = unlimited. */
  readonly maxAttempts?: number;
  /**
   * HTTP statuses that end the loop at once. Every 4xx except 408/429 is permanent anyway
   * (protocol.md §4 generic table); listing them documents the class.
   */
  readonly permanent?: readonly number[];
}

/** The classes of protocol.md §4 (Stream is run by the SSE client, listed for completeness). */
export const RetryClasses = {
  registration: { name: "registration", baseMs: 1_000, capMs: 60_000, maxDurationMs: 5 * 60_000, permanent: [400, 401, 403, 404, 409, 426] },
  stream: { name: "stream", baseMs: 1_000, capMs: 60_000 },
  /** Heartbeat, endpoint PUT, state GET, drift POST: no retry inside a cycle. */
  periodic: { name: "periodic", baseMs: 1_000, capMs: 1_000, maxAttempts: 1 },
  durable: { name: "durable", baseMs: 1_000, capMs: 5 * 60_000 },
  reportSync: { name: "report_sync", baseMs: 1_000, capMs: 5 * 60_000 },
  telemetry: { name: "telemetry", baseMs: 1_000, capMs: 60_000 },
  interactive: { name: "interactive", baseMs: 1_000, capMs: 1_000, maxAttempts: 1 },
  rotation: { name: "rotation", baseMs: 1_000, capMs: 60_000, maxDurationMs: 5 * 60_000 },
  artifact: { name: "artifact", baseMs: 2_000, capMs: 60_000, maxAttempts: 5 },
  /** lifecycle.md §14: up to 3 attempts (1 s, 2 s), total ≤ 15 s. */
  deregister: { name: "deregister", baseMs: 1_000, capMs: 2_000, maxAttempts: 3, maxDurationMs: 15_000 },
} as const satisfies Record<string, RetryClass>;

/** Result of one attempt. */
export type Attempt<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: CpError };

/** Why the loop stopped without success. */
export type GiveUpReason = "permanent" | "exhausted" | "aborted";

/** Result of {@link withRetry}. `errors` holds every failed attempt in order. */
export type RetryResult<T> =
  | { readonly ok: true; readonly value: T; readonly attempts: number; readonly errors: readonly CpError[] }
  | {
      readonly ok: false;
      readonly error: CpError;
      readonly reason: GiveUpReason;
      readonly attempts: number;
      readonly errors: readonly CpError[];
    };

/** Injectable time sources. */
export interface RetryDeps {
  readonly now?: () => number;
  /** Resolves after `ms` or rejects/resolves early when `signal` aborts. */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly random?: () => number;
  readonly signal?: AbortSignal;
  /** Called before each wait (for logging): failed attempt number (1-based), error, delay. */
  readonly onRetry?: (attempt: number, error: CpError, delayMs: number) => void;
}

/** Default sleep: a timer that ends early (without throwing) when the signal aborts. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** True when the error may succeed on a later attempt of the same request. */
export function isRetryable(error: CpError, cls: RetryClass): boolean {
  if (error.kind === "http" && cls.permanent?.includes(error.status ?? -1)) return false;
  return error.transient;
}

/**
 * Runs `fn` until it succeeds, fails permanently, the class's budget is spent or `signal`
 * aborts. `Retry-After` (429/503) replaces the computed delay for that wait. The last wait is
 * shortened to the remaining budget, so the final attempt happens at the deadline.
 */
export async function withRetry<T>(
  fn: (attempt: number, signal?: AbortSignal) => Promise<Attempt<T>>,
  cls: RetryClass,
  deps: RetryDeps = {},
): Promise<RetryResult<T>> {
  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ?? abortableSleep;
  const started = now();
  const errors: CpError[] = [];
  for (let attempt = 1; ; attempt++) {
    if (deps.signal?.aborted) {
      const error = new CpError("aborted", "retry loop aborted");
      return { ok: false, error, reason: "aborted", attempts: attempt - 1, errors };
    }
    const r = await fn(attempt, deps.signal);
    if (r.ok) return { ok: true, value: r.value, attempts: attempt, errors };
    errors.push(r.error);
    const fail = (reason: GiveUpReason): RetryResult<T> => ({ ok: false, error: r.error, reason, attempts: attempt, errors });
    if (r.error.kind === "aborted" || deps.signal?.aborted) return fail("aborted");
    if (!isRetryable(r.error, cls)) return fail("permanent");
    if (cls.maxAttempts !== undefined && attempt >= cls.maxAttempts) return fail("exhausted");
    let delay = backoffDelay(attempt - 1, { baseMs: cls.baseMs, capMs: cls.capMs, ...(deps.random ? { random: deps.random } : {}) });
    const st = r.error.status;
    if ((st === 429 || st === 503) && r.error.retryAfterMs !== undefined) delay = r.error.retryAfterMs;
    if (cls.maxDurationMs !== undefined) {
      const remaining = started + cls.maxDurationMs - now();
      if (remaining <= 0) return fail("exhausted");
      delay = Math.min(delay, remaining);
    }
    deps.onRetry?.(attempt, r.error, delay);
    await sleep(delay, deps.signal);
  }
}
