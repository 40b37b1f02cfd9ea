/**
 * The SSE client connection loop (protocol.md §1.1, §4, §7; lifecycle.md §8) over plain
 * `fetch`: we need the HTTP status, the content type, fresh credentials per attempt and our own
 * backoff, none of which eventsource-client gives us (design/platform-notes.md).
 *
 * All waiting goes through the injected `sleep` and all time through `now`, so the whole state
 * machine runs under virtual time in tests.
 */
import { Backoff, parseRetryAfter } from "../util/backoff.ts";
import { SseParser, type SseMessage, type SseOversize } from "./sse.ts";

/** Connection state (reported by `status`). */
export type StreamState = "connecting" | "streaming" | "backoff" | "polling" | "stopped";

/** Why a connection attempt or an open stream ended. */
export type StreamFailure =
  | { readonly kind: "unauthorized"; readonly status: 401 }
  | { readonly kind: "node_unknown"; readonly status: 403 | 404 }
  | { readonly kind: "upgrade_required"; readonly status: 426; readonly body: string }
  | { readonly kind: "rate_limited"; readonly status: 429; readonly retryAfterMs: number | undefined }
  | { readonly kind: "http_error"; readonly status: number; readonly body: string; readonly retryAfterMs: number | undefined }
  | { readonly kind: "bad_content_type"; readonly status: number; readonly contentType: string }
  | { readonly kind: "network"; readonly error: unknown }
  | { readonly kind: "connect_timeout" }
  | { readonly kind: "idle_timeout" }
  | { readonly kind: "ended" }
  | { readonly kind: "handler_error"; readonly error: unknown };

/** Timing knobs (defaults from the spec). */
export interface StreamTiming {
  /** No bytes at all for this long → reconnect (`api.sse_idle_timeout`, 90 s). */
  readonly idleTimeoutMs: number;
  /** No response headers for this long → fail (`api.connect_timeout`, 10 s). */
  readonly connectTimeoutMs: number;
  readonly backoffBaseMs: number;
  readonly backoffCapMs: number;
  /** A connection counts as stable (backoff reset) after this long with ≥ 1 byte (30 s). */
  readonly stableAfterMs: number;
  /** Continuous time without a stream before polling (5 min). */
  readonly pollingAfterMs: number;
  /** Poll period in polling mode (`reconcile.interval`, 60 s). */
  readonly pollIntervalMs: number;
  /** Retry period after 403/404 (5 min). */
  readonly nodeUnknownRetryMs: number;
  /** Ceiling for a server's Retry-After, so polling fallback can still engage (5 min). */
  readonly maxRetryAfterMs: number;
  /** Floor for SSE `retry:` (a `retry: 0` must not become a tight loop; 100 ms). */
  readonly minRetryMs: number;
}

/** Spec defaults for {@link StreamTiming}. */
export const DEFAULT_STREAM_TIMING: StreamTiming = {
  idleTimeoutMs: 90_000,
  connectTimeoutMs: 10_000,
  backoffBaseMs: 1_000,
  backoffCapMs: 60_000,
  stableAfterMs: 30_000,
  pollingAfterMs: 300_000,
  pollIntervalMs: 60_000,
  nodeUnknownRetryMs: 300_000,
  maxRetryAfterMs: 300_000,
  minRetryMs: 100,
};

/** Counters for health and `status`. */
export interface StreamStats {
  /** Connection attempts after the first one. */
  readonly reconnectsTotal: number;
  /** When a stream was last established (2xx + event-stream), ms since the epoch. */
  readonly lastConnectedAt: number | undefined;
  /** Consecutive attempts without a stable stream (the backoff's n). */
  readonly consecutiveFailures: number;
}

/** Collaborators of {@link EventStream}. */
export interface EventStreamDeps {
  /** Full URL of `GET /v1/nodes/{node_id}/events` (read per attempt: the node id may change). */
  readonly url: () => string;
  /** Bearer token (the NSK) at this instant; read per attempt so a rotated NSK applies. */
  readonly token: () => string | Promise<string>;
  /** Persisted `sse.last_event_id`; empty/undefined → header omitted. */
  readonly lastEventId: () => string | undefined;
  /** Agent semver for `User-Agent: plexd/<v>` and `X-Plexd-Version`. */
  readonly version: string;
  /**
   * Receives each complete event or oversize marker; awaited before reading on, so journal
   * appends apply backpressure. A throw closes the connection (the CP re-delivers after
   * Last-Event-ID on reconnect). Keep it short: the idle timer keeps running meanwhile.
   */
  readonly onEvent: (item: SseMessage | SseOversize) => void | Promise<void>;
  /**
   * All events of one read chunk, in order, so the journal can take them in one transaction
   * (group commit). Used instead of onEvent when set.
   */
  readonly onEvents?: (items: (SseMessage | SseOversize)[]) => void | Promise<void>;
  /** After every established (re)connect: the caller triggers reconcile and kicks the outbox. */
  readonly onConnected?: () => void;
  /** Every failure, typed; 401 → re-auth flow, 403/404 → "node unknown" handling, etc. */
  readonly onFailure?: (f: StreamFailure) => void;
  readonly onStateChange?: (state: StreamState, previous: StreamState) => void;
  /** Polling mode: one `GET …/state` reconcile, run before each SSE attempt. */
  readonly poll?: () => Promise<void>;
  readonly fetch?: (url: string, init: RequestInit) => Promise<Response>;
  readonly now?: () => number;
  /** Resolves after `ms`, or early (never rejects) when `signal` aborts. */
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly random?: () => number;
  readonly timing?: Partial<StreamTiming>;
  readonly maxEventBytes?: number;
}

/** Real-time sleep honouring an abort signal. */
export function realSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, Math.max(0, ms));
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

const ERROR_BODY_LIMIT = 4096;

/** Reads at most 4096 bytes of an error body, then cancels the rest (protocol.md §1, §7). */
async function readErrorBody(res: Response): Promise<string> {
  const body = res.body;
  if (body === null) return "";
  const reader = body.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  try {
    while (total < ERROR_BODY_LIMIT) {
      const { done, value } = await reader.read();
      if (done) break;
      const take = value.subarray(0, ERROR_BODY_LIMIT - total);
      parts.push(take);
      total += take.length;
    }
  } catch {
    // A broken error body does not change the outcome.
  } finally {
    reader.cancel().catch(() => {});
  }
  return new TextDecoder().decode(Buffer.concat(parts));
}

interface AttemptResult {
  readonly established: boolean;
  readonly bytes: number;
  readonly openedAt: number;
  readonly closedAt: number;
  readonly failure: StreamFailure;
}

/**
 * The long-lived SSE connection: connect, stream, back off, fall back to polling, repeat until
 * {@link stop}.
 */
export class EventStream {
  readonly #d: EventStreamDeps;
  readonly #t: StreamTiming;
  readonly #fetch: (url: string, init: RequestInit) => Promise<Response>;
  readonly #now: () => number;
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly #backoff: Backoff;
  #state: StreamState = "stopped";
  #stopping = new AbortController();
  #running: Promise<void> | undefined;
  #reconnects = 0;
  #lastConnectedAt: number | undefined;

  constructor(deps: EventStreamDeps) {
    this.#d = deps;
    this.#t = { ...DEFAULT_STREAM_TIMING, ...deps.timing };
    this.#fetch = deps.fetch ?? ((u, i) => fetch(u, i));
    this.#now = deps.now ?? Date.now;
    this.#sleep = deps.sleep ?? realSleep;
    this.#backoff = new Backoff({
      baseMs: this.#t.backoffBaseMs,
      capMs: this.#t.backoffCapMs,
      ...(deps.random ? { random: deps.random } : {}),
    });
  }

  get state(): StreamState {
    return this.#state;
  }

  get stats(): StreamStats {
    return {
      reconnectsTotal: this.#reconnects,
      lastConnectedAt: this.#lastConnectedAt,
      consecutiveFailures: this.#backoff.attempt,
    };
  }

  /** Starts the loop (idempotent). The returned promise settles when the loop has stopped. */
  start(): Promise<void> {
    if (this.#running === undefined) {
      this.#stopping = new AbortController();
      this.#running = this.#loop().finally(() => {
        this.#running = undefined;
        this.#setState("stopped");
      });
    }
    return this.#running;
  }

  /** Closes the connection and ends the loop; resolves when it has. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    await this.#running;
  }

  #setState(s: StreamState): void {
    const prev = this.#state;
    if (prev === s) return;
    this.#state = s;
    this.#notify(() => this.#d.onStateChange?.(s, prev));
  }

  /** Runs an observer callback; its failure must not end the connection loop. */
  #notify(fn: () => void): void {
    try {
      fn();
    } catch {
      // Observers (health, logging, reconcile triggers) report their own errors.
    }
  }

  async #loop(): Promise<void> {
    const stop = this.#stopping.signal;
    let downSince = this.#now();
    let polling = false;
    let first = true;
    while (!stop.aborted) {
      if (!first) this.#reconnects++;
      first = false;
      if (polling) {
        this.#setState("polling");
        try {
          await this.#d.poll?.();
        } catch {
          // The poll's own failure handling belongs to the caller; the SSE attempt still runs.
        }
        if (stop.aborted) break;
      } else {
        this.#setState("connecting");
      }
      const r = await this.#attempt(stop);
      if (stop.aborted) break;
      if (r.established) {
        downSince = r.closedAt;
        polling = false;
        if (r.bytes > 0 && r.closedAt - r.openedAt >= this.#t.stableAfterMs) this.#backoff.reset();
      }
      const failure = r.failure;
      this.#notify(() => this.#d.onFailure?.(failure));

      let delay: number;
      if (r.failure.kind === "node_unknown") {
        // lifecycle.md §8.3: stopped, retried every 5 min, no polling (the node is unknown).
        this.#setState("stopped");
        delay = this.#t.nodeUnknownRetryMs;
      } else {
        const enteringPolling = !polling && this.#now() - downSince >= this.#t.pollingAfterMs;
        if (enteringPolling) polling = true;
        if (polling) {
          this.#setState("polling");
          delay = enteringPolling ? 0 : this.#t.pollIntervalMs;
        } else {
          this.#setState("backoff");
          const ra =
            r.failure.kind === "rate_limited" || (r.failure.kind === "http_error" && r.failure.status === 503)
              ? r.failure.retryAfterMs
              : undefined;
          delay = ra !== undefined ? Math.min(ra, this.#t.maxRetryAfterMs) : this.#backoff.next();
        }
      }
      if (delay > 0) await this.#sleep(delay, stop);
    }
  }

  async #headers(): Promise<Record<string, string>> {
    const h: Record<string, string> = {
      Accept: "text/event-stream",
      "Cache-Control": "no-cache",
      "Accept-Encoding": "gzip",
      "User-Agent": `plexd/${this.#d.version}`,
      "X-Plexd-Version": this.#d.version,
      Authorization: `Bearer ${await this.#d.token()}`,
    };
    const last = this.#d.lastEventId();
    if (last !== undefined && last !== "") h["Last-Event-ID"] = last;
    return h;
  }

  /** One connection: request, validate, stream until it ends; never throws. */
  async #attempt(stop: AbortSignal): Promise<AttemptResult> {
    const startedAt = this.#now();
    const conn = new AbortController();
    const onStop = (): void => conn.abort();
    stop.addEventListener("abort", onStop, { once: true });
    let established = false;
    let bytes = 0;
    let openedAt = startedAt;
    let lastByteAt = startedAt;
    let timedOut: "connect_timeout" | "idle_timeout" | undefined;
    const watchdogStop = new AbortController();
    // One timer per idle window (not per chunk): sleep until the deadline, re-check, repeat.
    const watchdog = (async () => {
      while (!watchdogStop.signal.aborted) {
        const deadline = established ? lastByteAt + this.#t.idleTimeoutMs : startedAt + this.#t.connectTimeoutMs;
        const wait = deadline - this.#now();
        if (wait <= 0) {
          timedOut = established ? "idle_timeout" : "connect_timeout";
          conn.abort();
          return;
        }
        await this.#sleep(wait, watchdogStop.signal);
      }
    })();
    const finish = (failure: StreamFailure): AttemptResult => {
      const f: StreamFailure = timedOut !== undefined ? { kind: timedOut } : failure;
      return { established, bytes, openedAt, closedAt: this.#now(), failure: f };
    };
    try {
      let res: Response;
      try {
        res = await this.#fetch(this.#d.url(), {
          method: "GET",
          headers: await this.#headers(),
          signal: conn.signal,
          redirect: "manual", // never forward the bearer token to another location
        });
      } catch (error) {
        return finish({ kind: "network", error });
      }
      const nonStream = await this.#classify(res);
      if (nonStream !== undefined) return finish(nonStream);

      established = true;
      openedAt = this.#now();
      lastByteAt = openedAt;
      this.#lastConnectedAt = openedAt;
      this.#setState("streaming");
      this.#notify(() => this.#d.onConnected?.());

      const parser = new SseParser(this.#d.maxEventBytes !== undefined ? { maxEventBytes: this.#d.maxEventBytes } : {});
      const body = res.body;
      if (body === null) return finish({ kind: "ended" });
      const reader = body.getReader();
      try {
        for (;;) {
          let chunk: Awaited<ReturnType<typeof reader.read>>;
          try {
            chunk = await reader.read();
          } catch (error) {
            return finish({ kind: "network", error });
          }
          if (chunk.done) return finish({ kind: "ended" });
          const value = chunk.value;
          if (value.length === 0) continue;
          bytes += value.length;
          lastByteAt = this.#now();
          const batch: (SseMessage | SseOversize)[] = [];
          for (const item of parser.push(value)) {
            if (item.type === "retry") {
              this.#backoff.setBase(Math.max(this.#t.minRetryMs, Math.min(item.ms, this.#t.backoffCapMs)));
              continue;
            }
            batch.push(item);
          }
          if (batch.length > 0) {
            try {
              if (this.#d.onEvents) await this.#d.onEvents(batch);
              else
                for (const item of batch) {
                  await this.#d.onEvent(item);
                  if (conn.signal.aborted) break;
                }
            } catch (error) {
              return finish({ kind: "handler_error", error });
            }
            if (conn.signal.aborted) return finish({ kind: "ended" });
          }
        }
      } finally {
        reader.cancel().catch(() => {});
      }
    } finally {
      stop.removeEventListener("abort", onStop);
      watchdogStop.abort();
      conn.abort();
      await watchdog;
    }
  }

  /** Undefined when `res` is a usable event stream, else the failure (error body capped). */
  async #classify(res: Response): Promise<StreamFailure | undefined> {
    const status = res.status;
    if (status >= 200 && status < 300) {
      const ct = res.headers.get("content-type") ?? "";
      if (ct.toLowerCase().startsWith("text/event-stream")) return undefined;
      await readErrorBody(res);
      return { kind: "bad_content_type", status, contentType: ct };
    }
    const body = await readErrorBody(res);
    const retryAfterMs = parseRetryAfter(res.headers.get("retry-after"), this.#now());
    switch (status) {
      case 401:
        return { kind: "unauthorized", status };
      case 403:
      case 404:
        return { kind: "node_unknown", status };
      case 426:
        return { kind: "upgrade_required", status, body };
      case 429:
        return { kind: "rate_limited", status, retryAfterMs };
      default:
        return { kind: "http_error", status, body, retryAfterMs };
    }
  }
}
