/**
 * Request core of the control-plane client (protocol.md §1): one place that sets the headers,
 * compresses bodies, enforces deadlines and size caps, maps every failure to a CpError and
 * watches the CP clock. It never retries — that is retry.ts — and never logs tokens.
 */
import { readFileSync } from "node:fs";
import * as tls from "node:tls";
import { parseRetryAfter } from "../util/backoff.ts";
import { VERSION } from "../version.ts";
import { CpError } from "./errors.ts";
import { normaliseBaseUrl } from "./url.ts";

/** Bodies above this many bytes are gzipped (protocol.md §1). */
export const GZIP_THRESHOLD = 1024;
/** Cap on a decompressed JSON response (protocol.md §1). */
export const MAX_JSON_BYTES = 10 * 1024 * 1024;
/** Error bodies are read at most this far. */
export const MAX_ERROR_BYTES = 4096;
/** `Date` header differences above this are reported as clock skew. */
export const CLOCK_SKEW_LIMIT_MS = 60_000;

/** The fetch signature the client needs (Bun's fetch, or a fake in tests). */
export type FetchFn = (input: string, init: BunFetchRequestInit) => Promise<Response>;

/** Options of {@link HttpClient}; plain values, so the client does not depend on the Config shape. */
export interface HttpClientOptions {
  /** config `api.url`; validated by {@link normaliseBaseUrl}. */
  readonly baseUrl: string;
  /** Bearer token, asked at every request so an NSK change applies at once. */
  readonly auth?: () => string | undefined;
  /** Agent version for User-Agent / X-Plexd-Version; default {@link VERSION}. */
  readonly version?: string;
  /** config `api.ca_file`: PEM bundle added to the system roots (read once here). */
  readonly caFile?: string;
  /** config `api.tls_insecure_skip_verify` (the caller warns at start). */
  readonly tlsInsecureSkipVerify?: boolean;
  /**
   * config `api.connect_timeout`, default 10 s. Bun's fetch exposes no connect phase (its idle
   * `timeout` moves in 4 s steps and also fires while a server is thinking), so connecting is
   * bounded by the request deadline; the value is kept for status output.
   */
  readonly connectTimeoutMs?: number;
  /** config `api.request_timeout`, default 30 s (headers + body). */
  readonly requestTimeoutMs?: number;
  /** Called with (CP Date − local clock) for every response carrying `Date`. */
  readonly onClockSkew?: (skewMs: number, skewed: boolean) => void;
  /** W3C trace context for the current request, when tracing propagation is on. */
  readonly traceparent?: () => string | undefined;
  readonly fetch?: FetchFn;
  readonly now?: () => number;
}

/** An outbound body. `json` is serialised here; `raw` is sent as given. */
export type RequestBody =
  | { readonly json: unknown }
  | { readonly raw: string | Uint8Array; readonly contentType: string };

/** One request. */
export interface RequestSpec {
  readonly method: "GET" | "POST" | "PUT";
  /** Path below the base URL, built with `cpPath` so parameters are encoded. */
  readonly path: string;
  readonly body?: RequestBody;
  /** `always` = telemetry (protocol.md §1); default `auto` (> 1024 bytes). */
  readonly gzip?: "auto" | "always";
  /** Replaces the auth callback for this call (registration uses the bootstrap token). */
  readonly bearer?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly accept?: string;
  /** Per-call override of the request timeout (heartbeat 10 s, secrets 10 s, artifact 10 min). */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** Successful JSON call. `body` is the parsed JSON, or undefined for an empty/non-JSON body. */
export interface HttpOk {
  readonly ok: true;
  readonly status: number;
  readonly headers: Headers;
  readonly body: unknown;
  readonly text: string;
}

/** Outcome of one call: success or a typed CpError. */
export type HttpResult = HttpOk | { readonly ok: false; readonly error: CpError };

/** A 2xx response whose body the caller streams itself; call `done()` when finished. */
export interface RawOk {
  readonly ok: true;
  readonly response: Response;
  /** Aborts the request (e.g. stall timer); the body stream then errors. */
  readonly abort: (reason: CpError) => void;
  /** The reason passed to abort / the deadline, if one fired. */
  readonly abortReason: () => CpError | undefined;
  /** Clears the deadline timer. */
  readonly done: () => void;
}

const TLS_CODE = /CERT|TLS|SSL|EPROTO|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|HOSTNAME|ALTNAME/i;

/** Builds the CA list: Bun's bundled roots + the system store + the optional ca_file. */
function buildCa(caFile: string | undefined): string[] | undefined {
  if (caFile === undefined || caFile === "") return undefined;
  const extra = readFileSync(caFile, "utf8");
  const get = (tls as { getCACertificates?: (t: string) => string[] }).getCACertificates;
  const roots = new Set<string>(tls.rootCertificates);
  try {
    for (const c of get?.("system") ?? []) roots.add(c);
  } catch {
    /* no system store readable: bundled roots only */
  }
  return [...roots, extra];
}

/** Control-plane HTTP client core. */
export class HttpClient {
  readonly baseUrl: string;
  readonly #opts: HttpClientOptions;
  readonly #fetch: FetchFn;
  readonly #now: () => number;
  readonly #version: string;
  readonly #tls: BunFetchRequestInitTLS | undefined;

  constructor(opts: HttpClientOptions) {
    this.baseUrl = normaliseBaseUrl(opts.baseUrl);
    this.#opts = opts;
    this.#fetch = opts.fetch ?? ((input, init) => fetch(input, init));
    this.#now = opts.now ?? Date.now;
    this.#version = opts.version ?? VERSION;
    const ca = buildCa(opts.caFile);
    this.#tls =
      ca !== undefined || opts.tlsInsecureSkipVerify
        ? { ...(ca ? { ca } : {}), ...(opts.tlsInsecureSkipVerify ? { rejectUnauthorized: false } : {}) }
        : undefined;
  }

  /** Current request timeout default (ms). */
  get requestTimeoutMs(): number {
    return this.#opts.requestTimeoutMs ?? 30_000;
  }

  /** One JSON call: status checked, body read (≤ 10 MiB decompressed) and parsed. */
  async request(spec: RequestSpec): Promise<HttpResult> {
    const sent = await this.send(spec);
    if (!sent.ok) return sent;
    try {
      const read = await readBody(sent.response, MAX_JSON_BYTES, false);
      if (read.truncated) {
        return { ok: false, error: new CpError("too_large", `response body exceeds ${MAX_JSON_BYTES} bytes`, { status: sent.response.status }) };
      }
      const text = new TextDecoder().decode(read.bytes);
      let body: unknown;
      if (text.trim() !== "") {
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined; // callers with a schema turn this into invalid_response
        }
      }
      return { ok: true, status: sent.response.status, headers: sent.response.headers, body, text };
    } catch (err) {
      return { ok: false, error: sent.abortReason() ?? transportError(err, spec.signal) };
    } finally {
      sent.done();
    }
  }

  /**
   * Sends a request and checks the status; a 2xx response is handed back unread (artifact
   * download). Non-2xx answers become CpError (error body ≤ 4096 bytes read).
   */
  async send(spec: RequestSpec): Promise<RawOk | { readonly ok: false; readonly error: CpError }> {
    const controller = new AbortController();
    let reason: CpError | undefined;
    const abort = (r: CpError): void => {
      if (reason === undefined) reason = r;
      controller.abort(r);
    };
    const timeoutMs = spec.timeoutMs ?? this.requestTimeoutMs;
    const timer = setTimeout(() => abort(new CpError("timeout", `request timed out after ${timeoutMs} ms`)), timeoutMs);
    const onCallerAbort = (): void => abort(new CpError("aborted", "request aborted"));
    if (spec.signal?.aborted) onCallerAbort();
    spec.signal?.addEventListener("abort", onCallerAbort, { once: true });
    const done = (): void => {
      clearTimeout(timer);
      spec.signal?.removeEventListener("abort", onCallerAbort);
    };

    let response: Response;
    try {
      const init = this.#init(spec, controller.signal);
      response = await this.#fetch(this.baseUrl + spec.path, init);
    } catch (err) {
      done();
      return { ok: false, error: reason ?? transportError(err, spec.signal) };
    }
    this.#checkDate(response.headers);
    if (response.status >= 200 && response.status < 300) {
      return { ok: true, response, abort, abortReason: () => reason, done };
    }
    try {
      return { ok: false, error: await this.#statusError(response) };
    } finally {
      done();
    }
  }

  #init(spec: RequestSpec, signal: AbortSignal): BunFetchRequestInit {
    const headers: Record<string, string> = {
      "User-Agent": `plexd/${this.#version}`,
      "X-Plexd-Version": this.#version,
      Accept: spec.accept ?? "application/json",
      "Accept-Encoding": "gzip",
    };
    const token = spec.bearer ?? this.#opts.auth?.();
    if (token !== undefined && token !== "") headers.Authorization = `Bearer ${token}`;
    const tp = this.#opts.traceparent?.();
    if (tp) headers.traceparent = tp;
    let body: Uint8Array | undefined;
    if (spec.body !== undefined) {
      const [data, type] =
        "json" in spec.body
          ? [new TextEncoder().encode(JSON.stringify(spec.body.json)), "application/json"]
          : [typeof spec.body.raw === "string" ? new TextEncoder().encode(spec.body.raw) : spec.body.raw, spec.body.contentType];
      headers["Content-Type"] = type;
      if (spec.gzip === "always" || data.byteLength > GZIP_THRESHOLD) {
        body = Bun.gzipSync(data as Uint8Array<ArrayBuffer>);
        headers["Content-Encoding"] = "gzip";
      } else {
        body = data;
      }
    }
    Object.assign(headers, spec.headers);
    const init: BunFetchRequestInit = {
      method: spec.method,
      headers,
      signal,
      // We decode gzip ourselves so the 10 MiB cap applies to decompressed bytes.
      decompress: false,
      // A redirect could carry the bearer token to another origin; the API never redirects.
      redirect: "manual",
    };
    if (body !== undefined) init.body = body;
    if (this.#tls !== undefined) init.tls = this.#tls;
    return init;
  }

  #checkDate(headers: Headers): void {
    const date = headers.get("date");
    if (date === null || this.#opts.onClockSkew === undefined) return;
    const at = Date.parse(date);
    if (!Number.isFinite(at)) return;
    const skew = at - this.#now();
    // Date has 1 s resolution; the limit is generous enough that rounding never matters.
    this.#opts.onClockSkew(skew, Math.abs(skew) > CLOCK_SKEW_LIMIT_MS);
  }

  async #statusError(response: Response): Promise<CpError> {
    const status = response.status;
    let snippet = "";
    try {
      snippet = new TextDecoder().decode((await readBody(response, MAX_ERROR_BYTES, true)).bytes);
    } catch {
      /* an unreadable error body changes nothing */
    }
    let cpMessage: string | undefined;
    let minVersion: string | undefined;
    try {
      const parsed = JSON.parse(snippet) as unknown;
      if (parsed !== null && typeof parsed === "object") {
        const o = parsed as Record<string, unknown>;
        if (typeof o.message === "string") cpMessage = o.message;
        if (status === 426 && typeof o.min_version === "string") minVersion = o.min_version;
      }
    } catch {
      /* not JSON (or cut at 4096 bytes) */
    }
    const retryAfterMs =
      status === 429 || status === 503 ? parseRetryAfter(response.headers.get("retry-after"), this.#now()) : undefined;
    const msg = status === 426 && minVersion ? `agent version ${this.#version} below min_version ${minVersion}` : `control plane answered ${status}${cpMessage ? `: ${cpMessage}` : ""}`;
    return new CpError("http", msg, {
      status,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      ...(minVersion !== undefined ? { minVersion } : {}),
      ...(cpMessage !== undefined ? { cpMessage } : {}),
      bodySnippet: snippet,
    });
  }
}

/** Maps a fetch/stream exception to a CpError kind. */
export function transportError(err: unknown, callerSignal?: AbortSignal): CpError {
  if (err instanceof CpError) return err;
  if (callerSignal?.aborted) return new CpError("aborted", "request aborted", { cause: err });
  const e = err as { name?: string; code?: string; message?: string };
  const text = `${e?.code ?? ""} ${e?.name ?? ""}`;
  if (e?.name === "TimeoutError" || /ETIMEDOUT|Timeout/i.test(text)) {
    return new CpError("timeout", `request timed out: ${e?.message ?? String(err)}`, { cause: err });
  }
  if (TLS_CODE.test(text)) return new CpError("tls", `TLS failure: ${e?.message ?? String(err)}`, { cause: err });
  return new CpError("network", `network error: ${e?.message ?? String(err)}`, { cause: err });
}

/**
 * Reads a response body (gzip-decoded when `Content-Encoding: gzip`) up to `cap` bytes.
 * `truncate` = stop quietly at the cap (error bodies); otherwise report `truncated`.
 */
export async function readBody(
  response: Response,
  cap: number,
  truncate: boolean,
): Promise<{ bytes: Uint8Array; truncated: boolean }> {
  if (response.body === null) return { bytes: new Uint8Array(0), truncated: false };
  const enc = (response.headers.get("content-encoding") ?? "").trim().toLowerCase();
  let stream: ReadableStream<Uint8Array> = response.body;
  if (enc === "gzip" || enc === "x-gzip") {
    stream = stream.pipeThrough(new DecompressionStream("gzip") as unknown as ReadableWritablePair<Uint8Array, Uint8Array>);
  } else if (enc !== "" && enc !== "identity") {
    await response.body.cancel().catch(() => {});
    throw new CpError("network", `unsupported response content-encoding ${enc}`);
  }
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let truncated = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (size + value.byteLength > cap) {
        if (truncate) chunks.push(value.subarray(0, cap - size));
        size = Math.min(cap, size + value.byteLength);
        truncated = true;
        break;
      }
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    if (truncated) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
  const out = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return { bytes: out, truncated };
}
