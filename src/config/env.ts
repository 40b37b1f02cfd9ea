/**
 * Environment and flag overrides (config.md §3, §4.1; operations.md §6 for `OTEL_*`).
 *
 * The generic rule iterates the known keys of the schema (never parses variable names back),
 * so underscores in key names stay unambiguous.
 */
import { envKeys, envName } from "./catalog.ts";
import type { ConfigIssue, ConfigWarning } from "./errors.ts";
import type { LeafKind } from "./fields.ts";
import { parseEnvBool } from "./units.ts";

/** Environment as a plain map (`process.env` fits). */
export type Env = Readonly<Record<string, string | undefined>>;

/** One value that replaces whatever the file said for `path`. */
export interface Override {
  path: string;
  value: unknown;
  origin: "env" | "flag";
  /** Variable or flag name, for error messages (`PLEXD_MODE`, `--mode`). */
  name: string;
}

/** The global CLI flags of §4.1 that map to config keys, plus `--config`. */
export interface ConfigFlags {
  config?: string;
  api?: string;
  logLevel?: string;
  mode?: string;
}

/** `OTEL_*` settings that have no config key; the tracing module reads them from here. */
export interface OtelEnv {
  /** `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, used verbatim (no `/v1/traces` appended). */
  tracesEndpoint?: string;
  timeoutMs?: number;
  compression?: "gzip" | "none";
  serviceName?: string;
  resourceAttributes?: Record<string, string>;
  sampler?: string;
  samplerArg?: string;
}

/** Result of reading the environment. */
export interface EnvResult {
  overrides: Override[];
  issues: ConfigIssue[];
  warnings: ConfigWarning[];
  otel: OtelEnv;
  /** `PLEXD_BOOTSTRAP_TOKEN_FILE`: explicit token file (token source 1, lifecycle.md §3). */
  bootstrapTokenFile?: string;
}

/** `PLEXD_*` names that are not config keys but are known (§3 named variables). */
const NAMED_NON_KEYS = ["PLEXD_API", "PLEXD_CONFIG", "PLEXD_BOOTSTRAP_TOKEN", "PLEXD_BOOTSTRAP_TOKEN_FILE", "PLEXD_SESSION_TOKEN"];

const NUMBER = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;

/** Converts an env string to the raw type the schema expects for `kind`, or a problem text. */
export function fromEnvString(kind: LeafKind, text: string): { value: unknown } | { problem: string } {
  switch (kind) {
    case "bool": {
      const b = parseEnvBool(text);
      return b === undefined ? { problem: "expected true/false/1/0/yes/no" } : { value: b };
    }
    case "tribool": {
      if (text.trim().toLowerCase() === "auto") return { value: "auto" };
      const b = parseEnvBool(text);
      return b === undefined ? { problem: "expected auto or true/false/1/0/yes/no" } : { value: b };
    }
    case "int":
    case "float":
      return NUMBER.test(text.trim()) ? { value: Number(text.trim()) } : { problem: `expected a number, got ${JSON.stringify(text)}` };
    case "list":
      return { value: text.split(",").map((s) => s.trim()).filter((s) => s !== "") };
    default:
      return { value: text };
  }
}

function parseKeyValueList(text: string): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const part of text.split(",")) {
    if (part.trim() === "") continue;
    const eq = part.indexOf("=");
    if (eq <= 0) return undefined;
    try {
      out[decodeURIComponent(part.slice(0, eq).trim())] = decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      return undefined;
    }
  }
  return out;
}

function readOtel(env: Env, res: EnvResult): void {
  const add = (path: string, value: unknown, name: string) => res.overrides.push({ path, value, origin: "env", name });
  const get = (n: string) => {
    const x = env[n];
    return x === undefined || x.trim() === "" ? undefined : x.trim();
  };
  const endpoint = get("OTEL_EXPORTER_OTLP_ENDPOINT");
  if (endpoint !== undefined) add("telemetry.tracing.endpoint", endpoint, "OTEL_EXPORTER_OTLP_ENDPOINT");
  const traces = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  if (traces !== undefined) res.otel.tracesEndpoint = traces;
  const protocol = get("OTEL_EXPORTER_OTLP_PROTOCOL");
  if (protocol !== undefined) add("telemetry.tracing.protocol", protocol, "OTEL_EXPORTER_OTLP_PROTOCOL");
  const headers = env.OTEL_EXPORTER_OTLP_HEADERS;
  if (headers !== undefined) {
    const map = parseKeyValueList(headers);
    if (map) add("telemetry.tracing.headers", map, "OTEL_EXPORTER_OTLP_HEADERS");
    // Never echo the value: it usually carries an API key.
    else res.issues.push({ path: "telemetry.tracing.headers", problem: "expected key=value pairs separated by commas", source: "env OTEL_EXPORTER_OTLP_HEADERS" });
  }
  const disabled = get("OTEL_SDK_DISABLED");
  if (disabled !== undefined && disabled.toLowerCase() === "true") add("telemetry.tracing.enabled", false, "OTEL_SDK_DISABLED");
  const sampler = get("OTEL_TRACES_SAMPLER");
  if (sampler !== undefined) res.otel.sampler = sampler;
  const arg = get("OTEL_TRACES_SAMPLER_ARG");
  if (arg !== undefined) {
    res.otel.samplerArg = arg;
    if (sampler === undefined || sampler.endsWith("traceidratio")) {
      if (NUMBER.test(arg)) add("telemetry.tracing.sample_ratio", Number(arg), "OTEL_TRACES_SAMPLER_ARG");
      else res.issues.push({ path: "telemetry.tracing.sample_ratio", problem: `expected a number, got ${JSON.stringify(arg)}`, source: "env OTEL_TRACES_SAMPLER_ARG" });
    }
  }
  const timeout = get("OTEL_EXPORTER_OTLP_TIMEOUT");
  if (timeout !== undefined) {
    if (/^\d+$/.test(timeout)) res.otel.timeoutMs = Number(timeout);
    else res.warnings.push({ code: "otel_invalid", message: `OTEL_EXPORTER_OTLP_TIMEOUT=${JSON.stringify(timeout)} is not a number of milliseconds; ignored` });
  }
  const compression = get("OTEL_EXPORTER_OTLP_COMPRESSION");
  if (compression !== undefined) {
    if (compression === "gzip" || compression === "none") res.otel.compression = compression;
    else res.warnings.push({ code: "otel_invalid", message: `OTEL_EXPORTER_OTLP_COMPRESSION=${JSON.stringify(compression)} is not gzip or none; ignored` });
  }
  const service = get("OTEL_SERVICE_NAME");
  if (service !== undefined) res.otel.serviceName = service;
  const attrs = get("OTEL_RESOURCE_ATTRIBUTES");
  if (attrs !== undefined) {
    const map = parseKeyValueList(attrs);
    if (map) res.otel.resourceAttributes = map;
    else res.warnings.push({ code: "otel_invalid", message: "OTEL_RESOURCE_ATTRIBUTES is not a key=value list; ignored" });
  }
}

/**
 * Reads overrides from `env`: `OTEL_*` first, then the generic `PLEXD_<PATH>` rule, then the
 * named variables (`PLEXD_API`), so later entries win. `tokenEnvName` is the effective
 * `token.env`, which is a known variable and never warned about.
 */
export function readEnv(env: Env, tokenEnvName?: string): EnvResult {
  const res: EnvResult = { overrides: [], issues: [], warnings: [], otel: {} };
  readOtel(env, res);
  const known = new Set<string>(NAMED_NON_KEYS);
  if (tokenEnvName) known.add(tokenEnvName);
  for (const key of envKeys()) {
    const name = envName(key.path);
    known.add(name);
    const text = env[name];
    if (text === undefined) continue;
    const r = fromEnvString(key.kind, text);
    if ("problem" in r) res.issues.push({ path: key.path, problem: r.problem, source: `env ${name}` });
    else res.overrides.push({ path: key.path, value: r.value, origin: "env", name });
  }
  const api = env.PLEXD_API;
  if (api !== undefined && api !== "") res.overrides.push({ path: "api.url", value: api, origin: "env", name: "PLEXD_API" });
  const tokenFile = env.PLEXD_BOOTSTRAP_TOKEN_FILE;
  if (tokenFile !== undefined && tokenFile !== "") res.bootstrapTokenFile = tokenFile;
  const unknown = Object.keys(env)
    .filter((n) => n.startsWith("PLEXD_") && !known.has(n))
    .sort();
  if (unknown.length > 0) {
    res.warnings.push({ code: "unknown_env", message: `ignoring unknown environment variable${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")}` });
  }
  return res;
}

/** Overrides from the global flags (highest precedence). */
export function readFlags(flags: ConfigFlags): Override[] {
  const out: Override[] = [];
  if (flags.api !== undefined) out.push({ path: "api.url", value: flags.api, origin: "flag", name: "--api" });
  if (flags.logLevel !== undefined) out.push({ path: "log_level", value: flags.logLevel, origin: "flag", name: "--log-level" });
  if (flags.mode !== undefined) out.push({ path: "mode", value: flags.mode, origin: "flag", name: "--mode" });
  return out;
}
