/** An HTTP-level failure with a stable code; turned into a JSON error response by the router. */
export class HttpError extends Error {
  override name = "HttpError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Configuration or CLI usage error (exit code 2). */
export class UsageError extends Error {
  override name = "UsageError";
  readonly code = "usage";
}

export const badRequest = (message: string, extra: Record<string, unknown> = {}) =>
  new HttpError(400, "invalid_request", message, extra);
export const unauthorized = (message = "unauthorized") => new HttpError(401, "unauthorized", message);
export const forbidden = (message = "forbidden") => new HttpError(403, "forbidden", message);
export const notFound = (message = "not found") => new HttpError(404, "not_found", message);
export const conflict = (message: string, extra: Record<string, unknown> = {}) =>
  new HttpError(409, "conflict", message, extra);
