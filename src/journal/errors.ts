/** Errors of the journal, dispatcher, DLQ and replay. */

/**
 * Thrown by event handlers to classify a failure (operations.md §2): `retryable` failures are
 * retried with backoff up to `journal.max_retries`; permanent ones (payload fails its schema,
 * values out of range, unknown bridge kind) go to the DLQ at once.
 */
export class HandlerError extends Error {
  override readonly name = "HandlerError";
  readonly code: "retryable" | "permanent";
  readonly retryable: boolean;
  constructor(message: string, opts: { retryable: boolean; cause?: unknown }) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.retryable = opts.retryable;
    this.code = opts.retryable ? "retryable" : "permanent";
  }
}

/** Bad input to a journal operation (unknown DLQ id, invalid replay filter, …). */
export class JournalError extends Error {
  override readonly name = "JournalError";
  constructor(
    readonly code: "invalid_filter" | "unknown_id" | "invalid_option",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
