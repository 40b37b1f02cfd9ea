/** Agent-side client of the control-plane /v1 API (protocol.md §1–§6). */
export * from "./api.ts";
export * from "./artifact.ts";
export * from "./errors.ts";
export * from "./http.ts";
export * from "./peers.ts";
export * from "./retry.ts";
export * from "./schemas.ts";
export type * from "./types.ts";
export * from "./url.ts";
