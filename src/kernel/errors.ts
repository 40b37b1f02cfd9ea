/**
 * Errors thrown and rejected by the native addon. The class is handed to the addon at load
 * time (`setErrorClass`, see addon.ts), so native code creates real instances of it: callers
 * use `instanceof NativeError` and switch on `code`.
 */

/** Fields the addon passes as the second constructor argument. */
export interface NativeErrorDetail {
  /** errno name, e.g. "EEXIST", "ENOENT", "EOPNOTSUPP" ("E<n>" when the C library has none). */
  code: string;
  /** Positive errno number. */
  errno: number;
  /** Operation that failed, e.g. "rtnl.link_add", "wg.resolve_family", "sock.peer_cred". */
  op: string;
  /** What it was applied to ("plexd0", "10.100.0.1/32 dev plexd0", …); "" when nothing. */
  object: string;
  /** Kernel extended-ack message or argument complaint, when there is one. */
  detail?: string;
  cause?: unknown;
}

/** A failed syscall or netlink request in the native addon. */
export class NativeError extends Error {
  override readonly name = "NativeError";
  readonly code: string;
  readonly errno: number;
  readonly op: string;
  readonly object: string;
  readonly detail: string | undefined;

  constructor(message: string, detail: NativeErrorDetail) {
    super(message, detail.cause === undefined ? undefined : { cause: detail.cause });
    this.code = detail.code;
    this.errno = detail.errno;
    this.op = detail.op;
    this.object = detail.object;
    this.detail = detail.detail;
  }
}

/** True when `err` is a NativeError, optionally with one of the given codes. */
export function isNativeError(err: unknown, ...codes: string[]): err is NativeError {
  return err instanceof NativeError && (codes.length === 0 || codes.includes(err.code));
}
