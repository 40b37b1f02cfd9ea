/**
 * Typed calls for every endpoint of protocol.md §6. Each method makes exactly one attempt and
 * returns a {@link CpResult}; retry policy belongs to the caller (retry.ts classes, outbox),
 * because the right reaction to a failure differs per subsystem.
 */
import * as v from "valibot";
import type { Logger } from "../log/index.ts";
import { nullLogger } from "../log/index.ts";
import { CpError } from "./errors.ts";
import type { HttpClient, HttpResult, RequestSpec } from "./http.ts";
import {
  EndpointResponseSchema,
  HeartbeatResponseSchema,
  RegisterResponseSchema,
  RotateResponseSchema,
  SecretResponseSchema,
  StateResponseSchema,
  issueText,
  type EndpointResponse,
  type HeartbeatDirectives,
  type RegisterResponse,
  type RotateResponse,
  type SecretResponse,
  type StateResponse,
} from "./schemas.ts";
import type {
  AckRequest,
  AuditLine,
  CapabilitiesPayload,
  CompatProfile,
  DriftRequest,
  EndpointRequest,
  HeartbeatRequest,
  IntegrityViolation,
  LogLine,
  MetricPoint,
  RegisterRequest,
  ReportRequest,
  ResultRequest,
  TunnelClosed,
  TunnelReady,
} from "./types.ts";
import { cpPath } from "./url.ts";
import { downloadArtifact, type ArtifactDownload, type ArtifactRequest } from "./artifact.ts";

/** Outcome of one API call. */
export type CpResult<T> = { readonly ok: true; readonly status: number; readonly value: T } | { readonly ok: false; readonly error: CpError };

/** Success of a call whose body is ignored. `conflict` = 409 that the spec counts as done. */
export interface Delivered {
  readonly conflict: boolean;
}

/** Success of an auxiliary call (§6.18–6.21): `supported` false = CP answered 404. */
export interface AuxDelivered {
  readonly supported: boolean;
}

/** Options of {@link CpApi}. */
export interface CpApiOptions {
  readonly http: HttpClient;
  /** compat.profile (protocol.md §10): logs/audit encoding. Default `standard`. */
  readonly profile?: CompatProfile;
  readonly logger?: Logger;
  /** Per-call timeouts (protocol.md §1 decisions). */
  readonly heartbeatTimeoutMs?: number;
  readonly secretTimeoutMs?: number;
}

/** A fresh telemetry batch id (UUIDv4); keep it for every retry of the same batch. */
export function newBatchId(): string {
  return crypto.randomUUID();
}

/** The agent's client of the /v1 API. */
export class CpApi {
  readonly #http: HttpClient;
  readonly #log: Logger;
  readonly #profile: CompatProfile;
  readonly #heartbeatTimeoutMs: number;
  readonly #secretTimeoutMs: number;
  readonly #auxMissingLogged = new Set<string>();

  constructor(opts: CpApiOptions) {
    this.#http = opts.http;
    this.#log = opts.logger ?? nullLogger;
    this.#profile = opts.profile ?? "standard";
    this.#heartbeatTimeoutMs = opts.heartbeatTimeoutMs ?? 10_000;
    this.#secretTimeoutMs = opts.secretTimeoutMs ?? 10_000;
  }

  /** §6.1 — the bootstrap token is the bearer and the `token` body field. */
  register(body: RegisterRequest, signal?: AbortSignal): Promise<CpResult<RegisterResponse>> {
    return this.#json({ method: "POST", path: "/v1/register", body: { json: body }, bearer: body.token, ...sig(signal) }, RegisterResponseSchema);
  }

  /** §6.3 — directives; an empty, non-JSON or malformed 2xx body means none. */
  async heartbeat(nodeId: string, body: HeartbeatRequest, signal?: AbortSignal): Promise<CpResult<HeartbeatDirectives>> {
    const r = await this.#http.request({
      method: "POST",
      path: cpPath`/v1/nodes/${nodeId}/heartbeat`,
      body: { json: body },
      timeoutMs: this.#heartbeatTimeoutMs,
      ...sig(signal),
    });
    if (!r.ok) return r;
    const d = v.safeParse(HeartbeatResponseSchema, r.body ?? {});
    return { ok: true, status: r.status, value: d.success ? d.output : { reconcile: false, rotate_keys: false } };
  }

  /** §6.4 — 401/404 count as "already deregistered" (the caller warns). */
  async deregister(nodeId: string, signal?: AbortSignal): Promise<CpResult<{ alreadyDeregistered: boolean }>> {
    const r = await this.#http.request({ method: "POST", path: cpPath`/v1/nodes/${nodeId}/deregister`, ...sig(signal) });
    if (r.ok) return { ok: true, status: r.status, value: { alreadyDeregistered: false } };
    if (r.error.kind === "http" && (r.error.status === 401 || r.error.status === 404)) {
      return { ok: true, status: r.error.status, value: { alreadyDeregistered: true } };
    }
    return r;
  }

  /** §6.5 — retry only with the same `new_public_key`. */
  rotateKeys(body: { node_id: string; new_public_key: string }, signal?: AbortSignal): Promise<CpResult<RotateResponse>> {
    return this.#json({ method: "POST", path: "/v1/keys/rotate", body: { json: body }, ...sig(signal) }, RotateResponseSchema);
  }

  /** §6.6 — body not wrapped; response ignored. */
  putCapabilities(nodeId: string, caps: CapabilitiesPayload, signal?: AbortSignal): Promise<CpResult<Delivered>> {
    return this.#delivered({ method: "PUT", path: cpPath`/v1/nodes/${nodeId}/capabilities`, body: { json: caps }, ...sig(signal) });
  }

  /** §6.7 */
  putEndpoint(nodeId: string, body: EndpointRequest, signal?: AbortSignal): Promise<CpResult<EndpointResponse>> {
    return this.#json({ method: "PUT", path: cpPath`/v1/nodes/${nodeId}/endpoint`, body: { json: body }, ...sig(signal) }, EndpointResponseSchema);
  }

  /** §6.8 */
  getState(nodeId: string, signal?: AbortSignal): Promise<CpResult<StateResponse>> {
    return this.#json({ method: "GET", path: cpPath`/v1/nodes/${nodeId}/state`, ...sig(signal) }, StateResponseSchema);
  }

  /** §6.9 — best effort; callers send only non-empty corrections. */
  postDrift(nodeId: string, body: DriftRequest, signal?: AbortSignal): Promise<CpResult<Delivered>> {
    return this.#delivered({ method: "POST", path: cpPath`/v1/nodes/${nodeId}/drift`, body: { json: body }, ...sig(signal) });
  }

  /** §6.10 — single attempt, 10 s. */
  getSecret(nodeId: string, key: string, signal?: AbortSignal): Promise<CpResult<SecretResponse>> {
    return this.#json(
      { method: "GET", path: cpPath`/v1/nodes/${nodeId}/secrets/${key}`, timeoutMs: this.#secretTimeoutMs, ...sig(signal) },
      SecretResponseSchema,
    );
  }

  /** §6.11 — a 409 is returned as an error: the caller resolves conflicts per entry. */
  postReport(nodeId: string, body: ReportRequest, signal?: AbortSignal): Promise<CpResult<Delivered>> {
    return this.#delivered({ method: "POST", path: cpPath`/v1/nodes/${nodeId}/report`, body: { json: body }, ...sig(signal) });
  }

  /** §6.12 — 409 = CP already holds a final answer → delivered (`conflict: true`). */
  ack(nodeId: string, executionId: string, body: AckRequest, signal?: AbortSignal): Promise<CpResult<Delivered>> {
    return this.#delivered(
      { method: "POST", path: cpPath`/v1/nodes/${nodeId}/executions/${executionId}/ack`, body: { json: body }, ...sig(signal) },
      true,
    );
  }

  /** §6.13 — 409 as for ack. */
  result(nodeId: string, executionId: string, body: ResultRequest, signal?: AbortSignal): Promise<CpResult<Delivered>> {
    return this.#delivered(
      { method: "POST", path: cpPath`/v1/nodes/${nodeId}/executions/${executionId}/result`, body: { json: body }, ...sig(signal) },
      true,
    );
  }

  /** §6.14 — JSON array, always gzip, batch id identical on retries. */
  postMetrics(nodeId: string, points: readonly MetricPoint[], batchId: string, signal?: AbortSignal): Promise<CpResult<Delivered>> {
    return this.#telemetry(cpPath`/v1/nodes/${nodeId}/metrics`, JSON.stringify(points), "application/json", batchId, signal);
  }

  /** §6.15 — NDJSON (standard) or JSON array (legacy). */
  postLogs(nodeId: string, lines: readonly LogLine[], batchId: string, signal?: AbortSignal): Promise<CpResult<Delivered>> {
    const [data, type] = this.#lines(lines);
    return this.#telemetry(cpPath`/v1/nodes/${nodeId}/logs`, data, type, batchId, signal);
  }

  /** §6.16 — as logs. */
  postAudit(nodeId: string, lines: readonly AuditLine[], batchId: string, signal?: AbortSignal): Promise<CpResult<Delivered>> {
    const [data, type] = this.#lines(lines);
    return this.#telemetry(cpPath`/v1/nodes/${nodeId}/audit`, data, type, batchId, signal);
  }

  /** §6.17 — streamed to `destPath` (0600) with SHA-256, size cap and stall timer. */
  downloadArtifact(req: ArtifactRequest): Promise<CpResult<ArtifactDownload>> {
    return downloadArtifact(this.#http, req);
  }

  /** §6.18 — any HTTP answer (even 404) proves reachability; only transport failures fail. */
  async ping(signal?: AbortSignal): Promise<CpResult<{ httpStatus: number }>> {
    const r = await this.#http.request({ method: "GET", path: "/v1/ping", ...sig(signal) });
    if (r.ok) return { ok: true, status: r.status, value: { httpStatus: r.status } };
    if (r.error.kind === "http") return { ok: true, status: r.error.status ?? 0, value: { httpStatus: r.error.status ?? 0 } };
    return r;
  }

  /** §6.19 — Durable class; 404 tolerated (feature absent on the CP). */
  postIntegrityViolation(nodeId: string, body: IntegrityViolation, signal?: AbortSignal): Promise<CpResult<AuxDelivered>> {
    return this.#aux("integrity_violations", { method: "POST", path: cpPath`/v1/nodes/${nodeId}/integrity/violations`, body: { json: body }, ...sig(signal) });
  }

  /** §6.20 */
  tunnelReady(nodeId: string, sessionId: string, body: TunnelReady, signal?: AbortSignal): Promise<CpResult<AuxDelivered>> {
    return this.#aux("tunnel_ready", { method: "POST", path: cpPath`/v1/nodes/${nodeId}/tunnels/${sessionId}/ready`, body: { json: body }, ...sig(signal) });
  }

  /** §6.21 */
  tunnelClosed(nodeId: string, sessionId: string, body: TunnelClosed, signal?: AbortSignal): Promise<CpResult<AuxDelivered>> {
    return this.#aux("tunnel_closed", { method: "POST", path: cpPath`/v1/nodes/${nodeId}/tunnels/${sessionId}/closed`, body: { json: body }, ...sig(signal) });
  }

  async #json<S extends v.GenericSchema>(spec: RequestSpec, schema: S): Promise<CpResult<v.InferOutput<S>>> {
    const r = await this.#http.request(spec);
    if (!r.ok) return r;
    return validated(r, schema);
  }

  async #delivered(spec: RequestSpec, conflictIsDone = false): Promise<CpResult<Delivered>> {
    const r = await this.#http.request(spec);
    if (r.ok) return { ok: true, status: r.status, value: { conflict: false } };
    if (conflictIsDone && r.error.kind === "http" && r.error.status === 409) return { ok: true, status: 409, value: { conflict: true } };
    return r;
  }

  async #aux(name: string, spec: RequestSpec): Promise<CpResult<AuxDelivered>> {
    const r = await this.#http.request(spec);
    if (r.ok) return { ok: true, status: r.status, value: { supported: true } };
    if (r.error.kind === "http" && r.error.status === 404) {
      if (!this.#auxMissingLogged.has(name)) {
        this.#auxMissingLogged.add(name);
        this.#log.info("control plane does not offer this endpoint; continuing without it", { endpoint: name });
      }
      return { ok: true, status: 404, value: { supported: false } };
    }
    return r;
  }

  #telemetry(path: string, data: string, contentType: string, batchId: string, signal?: AbortSignal): Promise<CpResult<Delivered>> {
    return this.#delivered({
      method: "POST",
      path,
      body: { raw: data, contentType },
      gzip: "always",
      headers: { "X-Plexd-Batch-Id": batchId },
      ...sig(signal),
    });
  }

  #lines(lines: readonly unknown[]): [string, string] {
    if (this.#profile === "legacy") return [JSON.stringify(lines), "application/json"];
    return [lines.map((l) => JSON.stringify(l) + "\n").join(""), "application/x-ndjson"];
  }
}

function sig(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal === undefined ? {} : { signal };
}

function validated<S extends v.GenericSchema>(r: HttpResult & { ok: true }, schema: S): CpResult<v.InferOutput<S>> {
  if (r.body === undefined) {
    return { ok: false, error: new CpError("invalid_response", "response body is empty or not JSON", { status: r.status }) };
  }
  const p = v.safeParse(schema, r.body);
  if (!p.success) {
    return { ok: false, error: new CpError("invalid_response", `unexpected response: ${issueText(p.issues)}`, { status: r.status }) };
  }
  return { ok: true, status: r.status, value: p.output };
}
