/**
 * The one backoff formula of protocol.md §4: `delay(n) = min(base·2^n, cap) · U(0.75, 1.25)`
 * (n = 0 for the first retry), plus `Retry-After` parsing (integer seconds or HTTP-date).
 */

/** Bad backoff options; the message names the offending option and value. */
export class BackoffOptionError extends Error {
  override readonly name = "BackoffOptionError";
  readonly code = "invalid_backoff_option";
  constructor(
    readonly option: string,
    readonly value: unknown,
    why: string,
  ) {
    super(`backoff option ${option} ${why}, got ${String(value)}`);
  }
}

/** Options of {@link backoffDelay} / {@link Backoff}. */
export interface BackoffOptions {
  /** Delay before the first retry, ms (> 0). */
  readonly baseMs: number;
  /** Upper bound of the un-jittered delay, ms (≥ baseMs). */
  readonly capMs: number;
  /** Relative jitter, default 0.25 (→ U(0.75, 1.25)); 0 disables; must be in [0, 1). */
  readonly jitter?: number;
  /** Uniform [0, 1) source, default Math.random (inject a seeded one in tests). */
  readonly random?: () => number;
}

function positiveFinite(option: string, value: number): void {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new BackoffOptionError(option, value, "must be a positive finite number");
  }
}

/** Validates options; throws {@link BackoffOptionError} naming the first bad value. */
export function validateBackoffOptions(o: BackoffOptions): void {
  positiveFinite("baseMs", o.baseMs);
  positiveFinite("capMs", o.capMs);
  if (o.capMs < o.baseMs) throw new BackoffOptionError("capMs", o.capMs, `must be ≥ baseMs (${o.baseMs})`);
  const j = o.jitter;
  if (j !== undefined && (typeof j !== "number" || !Number.isFinite(j) || j < 0 || j >= 1)) {
    throw new BackoffOptionError("jitter", j, "must be a number in [0, 1)");
  }
  if (o.random !== undefined && typeof o.random !== "function") {
    throw new BackoffOptionError("random", o.random, "must be a function");
  }
}

/**
 * Delay before retry number `n` (0-based) in ms. Validates `n` and the options.
 * @throws BackoffOptionError
 */
export function backoffDelay(n: number, o: BackoffOptions): number {
  validateBackoffOptions(o);
  if (!Number.isInteger(n) || n < 0) throw new BackoffOptionError("n", n, "must be an integer ≥ 0");
  return jittered(n, o.baseMs, o.capMs, o.jitter ?? 0.25, o.random ?? Math.random);
}

function jittered(n: number, base: number, cap: number, jitter: number, random: () => number): number {
  // 2^n overflows to Infinity for huge n; min() with cap keeps the result finite.
  const raw = Math.min(base * 2 ** n, cap);
  return raw * (1 - jitter + 2 * jitter * random());
}

/**
 * Stateful backoff: {@link next} returns the delay for the current attempt and advances;
 * {@link reset} starts again at n = 0. The base may be replaced later (SSE `retry:`).
 */
export class Backoff {
  #base: number;
  readonly #cap: number;
  readonly #jitter: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(o: BackoffOptions) {
    validateBackoffOptions(o);
    this.#base = o.baseMs;
    this.#cap = o.capMs;
    this.#jitter = o.jitter ?? 0.25;
    this.#random = o.random ?? Math.random;
  }

  /** Retries handed out since the last reset (the `n` of the next delay). */
  get attempt(): number {
    return this.#attempt;
  }

  get baseMs(): number {
    return this.#base;
  }

  get capMs(): number {
    return this.#cap;
  }

  /** Delay for the next retry; advances n. */
  next(): number {
    const d = jittered(this.#attempt, this.#base, this.#cap, this.#jitter, this.#random);
    this.#attempt++;
    return d;
  }

  /** Back to n = 0. */
  reset(): void {
    this.#attempt = 0;
  }

  /**
   * Replaces the base (SSE `retry:`). A base above the cap is allowed (the cap then rules);
   * non-positive or non-finite values are refused.
   */
  setBase(ms: number): void {
    positiveFinite("baseMs", ms);
    this.#base = ms;
  }
}

const HTTP_DATE_RE =
  /^(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT|(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), \d{2}-(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)-\d{2} \d{2}:\d{2}:\d{2} GMT|(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d{2}:\d{2}:\d{2} \d{4})$/;

/**
 * Parses a `Retry-After` header value (RFC 9110 §10.2.3): delay-seconds (`120`) or an
 * HTTP-date (IMF-fixdate, plus the obsolete RFC 850 and asctime forms). Returns the delay in
 * ms from `nowMs` (a date in the past → 0), or undefined when absent or unparsable (callers
 * then use the computed backoff).
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) {
    const secs = Number(v);
    return Number.isSafeInteger(secs) ? secs * 1000 : undefined;
  }
  if (!HTTP_DATE_RE.test(v)) return undefined;
  // asctime carries no zone; HTTP-dates are always UTC.
  const at = Date.parse(v.endsWith("GMT") ? v : `${v} GMT`);
  if (!Number.isFinite(at)) return undefined;
  return Math.max(0, at - nowMs);
}
