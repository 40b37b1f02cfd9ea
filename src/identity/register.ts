/**
 * The registration step (lifecycle.md §3, protocol.md §6.1): validate token → key → body →
 * POST with the Registration retry class → validate response → persist (identity.json last) →
 * delete the token file → hand back identity and initial peers. Nothing is persisted unless
 * the whole response is valid.
 */
import { unlink } from "node:fs/promises";
import * as os from "node:os";
import type { Logger } from "../log/index.ts";
import { nullLogger } from "../log/index.ts";
import type { CpApi } from "../controlplane/api.ts";
import type { CpError } from "../controlplane/errors.ts";
import { RetryClasses, withRetry, type RetryDeps } from "../controlplane/retry.ts";
import type { Peer, RejectedPeer, SigningKeys } from "../controlplane/schemas.ts";
import type { CapabilitiesPayload } from "../controlplane/types.ts";
import { persistIdentity, type Identity } from "./files.ts";
import { generateKeyPair, publicKeyOfBase64 } from "./keys.ts";
import { TokenError, validateToken, type ResolvedToken } from "./token.ts";

/** Exit code for "control plane unreachable" (config.md §4, EX_UNAVAILABLE). */
export const EXIT_UNAVAILABLE = 69;

/** Why registration failed. `exitCode` is what `plexd up/join` exits with. */
export type RegistrationErrorCode =
  | "invalid_token"
  | "invalid_payload"
  | "token_rejected"
  | "token_possibly_consumed"
  | "forbidden"
  | "not_found"
  | "hostname_conflict"
  | "upgrade_required"
  | "rejected"
  | "invalid_response"
  | "unreachable"
  | "aborted"
  | "persist_failed";

/** A failed registration. Never carries the token. */
export class RegistrationError extends Error {
  override readonly name = "RegistrationError";
  readonly exitCode: 1 | 69;
  /** HTTP status of the final answer, when there was one. */
  readonly status: number | undefined;
  /** From a 426 answer. */
  readonly minVersion: string | undefined;
  constructor(
    readonly code: RegistrationErrorCode,
    message: string,
    options: { cause?: unknown; exitCode?: 1 | 69; status?: number; minVersion?: string } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.exitCode = options.exitCode ?? 1;
    this.status = options.status;
    this.minVersion = options.minVersion;
  }
}

/** Facts about the host that go into `metadata` (injectable for tests). */
export interface HostFacts {
  readonly hostname: string;
  /** `amd64` / `arm64`. */
  readonly arch: string;
  /** uname release. */
  readonly kernel: string;
}

/** The host's facts from node:os. */
export function hostFacts(): HostFacts {
  const arch = process.arch === "x64" ? "amd64" : process.arch;
  return { hostname: os.hostname(), arch, kernel: os.release() };
}

/** Inputs of {@link register} (plain values, not the Config object). */
export interface RegisterOptions {
  readonly dataDir: string;
  readonly api: CpApi;
  readonly token: ResolvedToken;
  /** Always sent by this agent (§6.1). */
  readonly capabilities: CapabilitiesPayload;
  /** config `hostname`; empty/undefined = kernel hostname. */
  readonly hostname?: string;
  /** config `metadata`; overrides the agent's own entries. */
  readonly metadata?: Readonly<Record<string, string>>;
  /** config `nat_traversal.fallback`, advertised as metadata `nat_fallback`. */
  readonly natFallback?: string;
  /** Re-registration (lifecycle.md §11): keep this private key (base64) and its public key. */
  readonly reusePrivateKey?: string;
  /** `registration.max_retry_duration`, default 5 min. */
  readonly maxRetryDurationMs?: number;
  readonly logger?: Logger;
  readonly retry?: RetryDeps;
  readonly host?: HostFacts;
  readonly randomBytes?: (n: number) => Uint8Array;
}

/** A completed registration. */
export interface Registration {
  readonly identity: Identity;
  /** Initial peers (validated; rejected ones listed separately). */
  readonly peers: Peer[];
  readonly rejectedPeers: RejectedPeer[];
  /** True when the token file was removed. */
  readonly tokenFileDeleted: boolean;
}

/** Builds the §6.1 `metadata` map: os/arch/kernel + nat_fallback, then config entries win. */
export function registrationMetadata(host: HostFacts, natFallback: string | undefined, config: Readonly<Record<string, string>> = {}): Record<string, string> {
  return { os: "linux", arch: host.arch, kernel: host.kernel, ...(natFallback ? { nat_fallback: natFallback } : {}), ...config };
}

function statusError(err: CpError, possiblyConsumed: boolean): RegistrationError {
  const s = err.status;
  const cp = err.cpMessage ? `: ${err.cpMessage}` : "";
  const o = { cause: err, ...(s !== undefined ? { status: s } : {}) };
  switch (s) {
    case 400:
      return new RegistrationError("invalid_payload", `invalid registration payload${cp}`, o);
    case 401:
      return possiblyConsumed
        ? new RegistrationError("token_possibly_consumed", "bootstrap token possibly consumed by an earlier attempt; registration outcome unknown", o)
        : new RegistrationError("token_rejected", "bootstrap token invalid, expired or already used", o);
    case 403:
      return new RegistrationError("forbidden", `registration forbidden by the control plane${cp}`, o);
    case 404:
      return new RegistrationError("not_found", `registration endpoint not found${cp}`, o);
    case 409:
      return new RegistrationError(
        "hostname_conflict",
        "hostname already registered in tenant — deregister the old node or set `hostname`",
        o,
      );
    case 426:
      return new RegistrationError("upgrade_required", err.message, { ...o, ...(err.minVersion ? { minVersion: err.minVersion } : {}) });
    default:
      return new RegistrationError("rejected", `registration rejected (${s ?? err.kind})${cp}`, o);
  }
}

/**
 * Registers the node and persists its identity.
 * @throws RegistrationError (exit 1, or 69 when the CP stayed unreachable for the whole budget)
 */
export async function register(opts: RegisterOptions): Promise<Registration> {
  const log = opts.logger ?? nullLogger;
  let token: string | undefined;
  try {
    token = validateToken(opts.token.token, opts.token.source);
  } catch (err) {
    throw new RegistrationError("invalid_token", (err as TokenError).message, { cause: err });
  }
  if (token === undefined) throw new RegistrationError("invalid_token", "bootstrap token is empty");

  let privateKey: string;
  let publicKey: string;
  if (opts.reusePrivateKey !== undefined) {
    privateKey = opts.reusePrivateKey;
    publicKey = publicKeyOfBase64(privateKey);
  } else {
    ({ privateKey, publicKey } = generateKeyPair(opts.randomBytes));
  }

  const host = opts.host ?? hostFacts();
  const hostname = opts.hostname !== undefined && opts.hostname !== "" ? opts.hostname : host.hostname;
  const body = {
    token,
    public_key: publicKey,
    hostname,
    metadata: registrationMetadata(host, opts.natFallback, opts.metadata),
    capabilities: opts.capabilities,
  };

  const cls = { ...RetryClasses.registration, maxDurationMs: opts.maxRetryDurationMs ?? RetryClasses.registration.maxDurationMs };
  const res = await withRetry((_n, signal) => opts.api.register(body, signal), cls, {
    ...opts.retry,
    onRetry: (attempt, error, delayMs) => {
      log.warn("registration attempt failed; retrying", { attempt, kind: error.kind, status: error.status, delay_ms: Math.round(delayMs) });
      opts.retry?.onRetry?.(attempt, error, delayMs);
    },
  });
  if (!res.ok) {
    const err = res.error;
    if (res.reason === "aborted") throw new RegistrationError("aborted", "registration aborted", { cause: err });
    if (err.kind === "invalid_response") throw new RegistrationError("invalid_response", `invalid registration response: ${err.message}`, { cause: err });
    if (res.reason === "exhausted") {
      const last = err.kind === "http" ? `HTTP ${err.status}` : err.kind;
      throw new RegistrationError("unreachable", `control plane unreachable: registration gave up after ${res.attempts} attempts (last: ${last})`, {
        cause: err,
        exitCode: EXIT_UNAVAILABLE,
        ...(err.status !== undefined ? { status: err.status } : {}),
      });
    }
    const possiblyConsumed = res.errors.slice(0, -1).some((e) => e.kind === "timeout");
    throw statusError(err, possiblyConsumed);
  }

  const r = res.value;
  const signingKeys: SigningKeys = { current: r.signing_public_key, previous: null, transition_expires: null };
  const identity: Identity = {
    nodeId: r.node_id,
    meshIp: r.mesh_ip,
    privateKey,
    publicKey,
    nodeSecretKey: r.node_secret_key,
    signingPublicKey: r.signing_public_key,
    signingKeys,
  };
  try {
    persistIdentity(opts.dataDir, identity);
  } catch (err) {
    throw new RegistrationError("persist_failed", `registered as ${r.node_id} but the identity could not be saved: ${(err as Error).message}`, { cause: err });
  }
  if (r.peers.rejected.length > 0) {
    log.warn("registration response contained invalid peers; they are ignored", {
      count: r.peers.rejected.length,
      first: r.peers.rejected[0]?.reason,
    });
  }

  let tokenFileDeleted = false;
  if ((opts.token.source === "file" || opts.token.source === "explicit_file") && opts.token.path) {
    try {
      await unlink(opts.token.path);
      tokenFileDeleted = true;
    } catch (err) {
      log.warn("could not delete the bootstrap token file", { path: opts.token.path, error: (err as Error).message });
    }
  }
  log.info("registered with the control plane", { node_id: r.node_id, mesh_ip: r.mesh_ip });
  return { identity, peers: r.peers.peers, rejectedPeers: r.peers.rejected, tokenFileDeleted };
}
