/** Store errors: always carry the path so an operator knows which file to look at. */
export class StoreError extends Error {
  override name = "StoreError";
  constructor(
    readonly code: "corrupt" | "permissions" | "io" | "schema_too_new",
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${path}: ${message}`, options);
  }
}
