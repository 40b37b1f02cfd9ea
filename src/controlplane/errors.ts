/**
 * The one error type of the control-plane client. Every failed call — HTTP status, transport,
 * timeout, TLS, oversize or unusable response — is a CpError with a stable `kind`, so retry
 * classes and lifecycle code can decide without string matching.
 */

/** Why a control-plane call failed. */
export type CpErrorKind =
  /** The CP answered with a non-2xx status (`status` set). */
  | "http"
  /** Connection refused/reset, DNS failure, stream broken mid-body. */
  | "network"
  /** Request deadline, connect deadline or artifact stall timer expired. */
  | "timeout"
  /** Certificate or handshake failure. */
  | "tls"
  /** Response larger than the accepted cap (treated like a 5xx: transient). */
  | "too_large"
  /** 2xx answer whose body does not match the endpoint's schema (not retried). */
  | "invalid_response"
  /** The caller aborted (shutdown); never retried. */
  | "aborted";

/** Extra facts a CpError may carry. */
export interface CpErrorInit {
  status?: number;
  retryAfterMs?: number;
  minVersion?: string;
  /** First ≤ 4096 bytes of an error body, for logs only (never for control flow except 426). */
  bodySnippet?: string;
  /** CP `message` field of an error body, when it had one. */
  cpMessage?: string;
  cause?: unknown;
}

/** A failed control-plane call. `code` is stable: `cp_<kind>`. */
export class CpError extends Error {
  override readonly name = "CpError";
  readonly code: string;
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;
  readonly minVersion: string | undefined;
  readonly bodySnippet: string | undefined;
  readonly cpMessage: string | undefined;

  constructor(
    readonly kind: CpErrorKind,
    message: string,
    init: CpErrorInit = {},
  ) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = `cp_${kind}`;
    this.status = init.status;
    this.retryAfterMs = init.retryAfterMs;
    this.minVersion = init.minVersion;
    this.bodySnippet = init.bodySnippet;
    this.cpMessage = init.cpMessage;
  }

  /**
   * Transient per protocol.md §4: 5xx, 429, 408, network, timeout, TLS, oversize.
   * 426 and every other 4xx are not transient (the caller has a per-endpoint rule).
   */
  get transient(): boolean {
    switch (this.kind) {
      case "network":
      case "timeout":
      case "tls":
      case "too_large":
        return true;
      case "http": {
        const s = this.status ?? 0;
        return s >= 500 || s === 429 || s === 408;
      }
      default:
        return false;
    }
  }
}

/** True for a CpError of kind "http" with the given status. */
export function isStatus(err: unknown, ...statuses: number[]): err is CpError {
  return err instanceof CpError && err.kind === "http" && statuses.includes(err.status ?? -1);
}
