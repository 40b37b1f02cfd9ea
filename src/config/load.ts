/**
 * Loading the effective configuration (config.md §1): file → `PLEXD_*`/`OTEL_*` env → flags,
 * validated once by the schema. Every problem found is collected into one `ConfigError`.
 */
import { readFile as fsReadFile } from "node:fs/promises";
import * as v from "valibot";
import { topLevelKeys } from "./catalog.ts";
import { readEnv, readFlags, type ConfigFlags, type Env, type OtelEnv, type Override } from "./env.ts";
import { ConfigError, type ConfigIssue, type ConfigWarning } from "./errors.ts";
import { isPlainObject, normalizeRaw } from "./normalize.ts";
import { ConfigSchema, type Config } from "./schema.ts";
import { hostOf, isLoopbackHost } from "./validators.ts";
import { joinPath, parseYaml, type Position } from "./yaml.ts";

/** Default config file location. */
export const DEFAULT_CONFIG_PATH = "/etc/plexd/config.yaml";

/** Where a key's effective value came from (as reported by `config.dump`). */
export type ConfigSource = "default" | "file" | "env" | "flag";

/** Inputs of `loadConfig`. */
export interface LoadOptions {
  flags?: ConfigFlags;
  /** Defaults to `process.env`. */
  env?: Env;
  /** Reads the config file; defaults to `fs.promises.readFile(path, "utf8")`. */
  readFile?: (path: string) => Promise<string>;
  /** Check referenced files (`api.ca_file` must be a readable PEM bundle). Default true. */
  checkFiles?: boolean;
}

/** The effective configuration and everything learnt while building it. */
export interface LoadedConfig {
  config: Config;
  /** Resolved config file path (whether or not it existed). */
  path: string;
  /** False when the file was missing (allowed when `api` comes from env or a flag). */
  fileFound: boolean;
  /** Source of every top-level leaf key (`mesh.listen_port`, `hooks.definitions`, …). */
  sources: Record<string, ConfigSource>;
  /** Non-fatal findings, to be logged once at start (not printed here). */
  warnings: ConfigWarning[];
  /** `OTEL_*` settings without a config key. */
  otel: OtelEnv;
  /** `PLEXD_BOOTSTRAP_TOKEN_FILE`, when set. */
  bootstrapTokenFile?: string;
}

/** `--config` > `PLEXD_CONFIG` > `/etc/plexd/config.yaml`. */
export function resolveConfigPath(flags: ConfigFlags = {}, env: Env = process.env): string {
  return flags.config || env.PLEXD_CONFIG || DEFAULT_CONFIG_PATH;
}

/** Input of the synchronous core: file text already read (`null` = file missing). */
export interface BuildInput {
  text: string | null;
  path: string;
  flags?: ConfigFlags;
  env?: Env;
}

function getPath(root: Record<string, unknown>, path: string): unknown {
  let node: unknown = root;
  for (const seg of path.split(".")) {
    if (!isPlainObject(node)) return undefined;
    node = node[seg];
  }
  return node;
}

function setPath(root: Record<string, unknown>, path: string, value: unknown): void {
  const segs = path.split(".");
  let node = root;
  for (const seg of segs.slice(0, -1)) {
    if (node[seg] === undefined) node[seg] = {};
    const next = node[seg];
    // A non-mapping here is a file error the schema reports; the override has nowhere to go.
    if (!isPlainObject(next)) return;
    node = next;
  }
  node[segs[segs.length - 1]!] = value;
}

function issuePath(path: readonly { key: unknown }[] | undefined): string {
  let out = "";
  for (const item of path ?? []) out = joinPath(out, typeof item.key === "number" ? item.key : String(item.key));
  return out;
}

/** Attaches the file position or the env/flag source to an issue. */
function locate(issue: ConfigIssue, positions: Map<string, Position>, overrides: Map<string, Override>): ConfigIssue {
  for (let p = issue.path; p !== ""; p = p.replace(/(\.[^.[\]]*|\[\d+\])$/, "")) {
    const o = overrides.get(p);
    if (o) return { ...issue, source: `${o.origin} ${o.name}` };
    const pos = positions.get(p);
    if (pos) return { ...issue, line: pos.line, col: pos.col };
    if (!/[.[]/.test(p)) break;
  }
  return issue;
}

function byPosition(a: ConfigIssue, b: ConfigIssue): number {
  return (a.line ?? Infinity) - (b.line ?? Infinity) || (a.col ?? 0) - (b.col ?? 0);
}

/**
 * Builds the effective config from already-read file text. Synchronous and free of I/O, so
 * reload and tests use it directly. Throws `ConfigError`.
 */
export function buildConfig(input: BuildInput): LoadedConfig {
  const env = input.env ?? process.env;
  const flags = input.flags ?? {};
  let raw: Record<string, unknown> = {};
  let positions = new Map<string, Position>();
  if (input.text !== null) {
    const parsed = parseYaml(input.text, input.path);
    positions = parsed.positions;
    if (parsed.value !== null && parsed.value !== undefined) {
      if (!isPlainObject(parsed.value)) throw new ConfigError([{ path: input.path, problem: "top level must be a mapping", line: 1, col: 1 }]);
      raw = parsed.value;
    }
  }
  const issues: ConfigIssue[] = normalizeRaw(raw, positions);

  const fileTokenEnv = getPath(raw, "token.env");
  const tokenEnv = env.PLEXD_TOKEN_ENV ?? (typeof fileTokenEnv === "string" ? fileTokenEnv : "PLEXD_BOOTSTRAP_TOKEN");
  const envRes = readEnv(env, tokenEnv);
  const flagOverrides = readFlags(flags);
  issues.push(...envRes.issues);

  const apiFromOutside = [...envRes.overrides, ...flagOverrides].some((o) => o.path === "api.url");
  if (input.text === null && !apiFromOutside) {
    throw new ConfigError([{ path: input.path, problem: "config file not found (and api is not set by PLEXD_API or --api)" }]);
  }

  const sources: Record<string, ConfigSource> = {};
  for (const k of topLevelKeys()) sources[k.path] = getPath(raw, k.path) === undefined ? "default" : "file";
  const applied = new Map<string, Override>();
  for (const o of [...envRes.overrides, ...flagOverrides]) {
    setPath(raw, o.path, o.value);
    applied.set(o.path, o);
    sources[o.path] = o.origin;
  }

  const result = v.safeParse(ConfigSchema, raw);
  if (!result.success) {
    for (const i of result.issues) issues.push({ path: issuePath(i.path) || "(root)", problem: i.message });
  }
  if (issues.length > 0 || !result.success) {
    throw new ConfigError(issues.map((i) => (i.line !== undefined || i.source ? i : locate(i, positions, applied))).sort(byPosition));
  }
  const config = result.output;
  const warnings = [...envRes.warnings, ...configWarnings(config, raw)];
  return {
    config,
    path: input.path,
    fileFound: input.text !== null,
    sources,
    warnings,
    otel: envRes.otel,
    ...(envRes.bootstrapTokenFile !== undefined ? { bootstrapTokenFile: envRes.bootstrapTokenFile } : {}),
  };
}

function configWarnings(c: Config, raw: Record<string, unknown>): ConfigWarning[] {
  const w: ConfigWarning[] = [];
  if (c.api.tls_insecure_skip_verify) w.push({ code: "tls_insecure", message: "api.tls_insecure_skip_verify is true: the control plane certificate is not verified" });
  if (c.mode === "node" && raw.bridge !== undefined) w.push({ code: "bridge_ignored", message: "bridge section is ignored in mode node" });
  if (c.node_api.http.enabled && !isLoopbackHost(hostOf(c.node_api.http.listen)))
    w.push({ code: "node_api_public", message: `node_api.http.listen ${c.node_api.http.listen} is not a loopback address` });
  return w;
}

function isNotFound(e: unknown): boolean {
  return typeof e === "object" && e !== null && (e as { code?: unknown }).code === "ENOENT";
}

/**
 * Loads the effective configuration: resolves the file path, reads the file (missing is
 * allowed when `api` comes from env or a flag), applies env and flags, validates, and checks
 * referenced files. Throws `ConfigError`; the caller exits with `EXIT_CONFIG`.
 */
export async function loadConfig(opts: LoadOptions = {}): Promise<LoadedConfig> {
  const env = opts.env ?? process.env;
  const flags = opts.flags ?? {};
  const path = resolveConfigPath(flags, env);
  const read = opts.readFile ?? ((p: string) => fsReadFile(p, "utf8"));
  let text: string | null;
  try {
    text = await read(path);
  } catch (e) {
    if (!isNotFound(e)) throw new ConfigError([{ path, problem: `cannot read config file: ${(e as Error).message}` }], { cause: e });
    text = null;
  }
  const loaded = buildConfig({ text, path, flags, env });
  if (opts.checkFiles !== false) await checkFiles(loaded, read);
  return loaded;
}

async function checkFiles(loaded: LoadedConfig, read: (path: string) => Promise<string>): Promise<void> {
  const ca = loaded.config.api.ca_file;
  if (ca === "") return;
  let problem: string | undefined;
  try {
    if (!(await read(ca)).includes("-----BEGIN CERTIFICATE-----")) problem = "is not a PEM certificate bundle";
  } catch (e) {
    problem = `cannot read ${ca}: ${(e as Error).message}`;
  }
  if (problem) throw new ConfigError([{ path: "api.ca_file", problem }]);
}
