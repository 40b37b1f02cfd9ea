/** Node identity: data_dir identity files, keys, bootstrap tokens, registration. */
export * from "./files.ts";
export * from "./keys.ts";
export * from "./register.ts";
export * from "./token.ts";
