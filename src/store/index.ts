export * from "./atomic.ts";
export * from "./db.ts";
export * from "./errors.ts";
export * from "./files.ts";
