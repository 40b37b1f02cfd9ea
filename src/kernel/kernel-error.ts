/**
 * Errors raised by the kernel seam itself (not by the addon, which throws NativeError from
 * errors.ts, nor by wireguard-go, which yields UapiError from uapi-codec.ts).
 */

/** Stable codes of KernelError. */
export type KernelErrorCode =
  /** Read-back after a write did not match the desired state. */
  | "VERIFY_FAILED"
  /** The device to apply to does not exist. */
  | "NO_DEVICE"
  /** An operation needs the native addon and none was given. */
  | "NO_ADDON"
  /** A link with the mesh name exists but is not a WireGuard link. */
  | "WRONG_LINK_KIND"
  /** wireguard-go did not come up (exited, or no UAPI socket within the timeout). */
  | "WG_GO_START"
  /** Malformed input handed to the kernel layer (interface name, option). */
  | "INVALID_ARGUMENT"
  /** The UAPI socket did not answer in time or closed early. */
  | "UAPI_IO";

/** Error of the kernel layer with a stable `code`. */
export class KernelError extends Error {
  override readonly name = "KernelError";
  constructor(
    readonly code: KernelErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

/**
 * Rejects names the kernel would refuse and names that would escape the UAPI socket
 * directory ("..", "/"), since the name becomes part of a filesystem path.
 */
export function checkIfname(name: string): void {
  if (!IFNAME.test(name) || name === "." || name === "..") {
    throw new KernelError("INVALID_ARGUMENT", `invalid interface name ${JSON.stringify(name)}`);
  }
}
