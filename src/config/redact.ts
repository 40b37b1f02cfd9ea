/**
 * Display form of a config (durations as Go strings, sizes with binary units) and secret
 * redaction for everything that leaves the process (dump, start log, `config.dump` action).
 *
 * Redacted (Decision — the config holds no inline tokens; files such as `token.file` or
 * `node_api.http.token_file` are named, never read):
 * - every value of `telemetry.tracing.headers` (API keys travel there);
 * - entries of free-form maps (`metadata`) whose key looks secret (`SECRET_KEY_NAME`);
 * - userinfo (user and password) in URL-valued keys (`api.url`, `token.metadata_url`,
 *   `telemetry.tracing.endpoint`, `access.kubernetes.api_server`) and URL query parameters
 *   whose name looks secret.
 */
import { keyInfo } from "./catalog.ts";
import { formatDuration, formatSize } from "./units.ts";
import { joinPath } from "./yaml.ts";

/** The replacement text for secret values. */
export const REDACTED = "***";

/** Key names treated as secret in free-form maps and URL query strings. */
export const SECRET_KEY_NAME = /secret|passw|token|api[-_]?key|auth|credential|private[-_]?key|cookie|session|signature/i;

/** A display value: what YAML/JSON output shows. */
export type Display = string | number | boolean | null | Display[] | { [k: string]: Display };

/** Converts a typed config (or part of it at `path`) to its display form. */
export function toDisplay(value: unknown, path = ""): Display {
  const info = path === "" ? undefined : keyInfo(path);
  if (info?.kind === "duration" && typeof value === "number") return formatDuration(value);
  if (info?.kind === "size" && typeof value === "number") return formatSize(value);
  if (Array.isArray(value)) return value.map((x, i) => toDisplay(x, joinPath(path, i)));
  if (typeof value === "object" && value !== null) {
    const out: { [k: string]: Display } = {};
    for (const [k, x] of Object.entries(value)) if (x !== undefined) out[k] = toDisplay(x, joinPath(path, k));
    return out;
  }
  return value as Display;
}

/** Redacts credentials in a URL; returns the input unchanged when there is nothing to hide. */
export function redactUrl(text: string): string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return text;
  }
  let changed = false;
  if (u.username !== "" || u.password !== "") {
    u.username = REDACTED;
    u.password = "";
    changed = true;
  }
  for (const name of [...u.searchParams.keys()]) {
    if (SECRET_KEY_NAME.test(name)) {
      u.searchParams.set(name, REDACTED);
      changed = true;
    }
  }
  return changed ? u.toString() : text;
}

/** Returns a redacted copy of a display tree rooted at `path` (the whole config by default). */
export function redactDisplay(value: Display, path = ""): Display {
  const info = path === "" ? undefined : keyInfo(path);
  if (info?.meta.url && typeof value === "string") return redactUrl(value);
  if (info?.kind === "map" && typeof value === "object" && value !== null && !Array.isArray(value)) {
    const out: { [k: string]: Display } = {};
    for (const [k, x] of Object.entries(value)) out[k] = info.meta.secretValues || SECRET_KEY_NAME.test(k) ? REDACTED : x;
    return out;
  }
  if (Array.isArray(value)) return value.map((x, i) => redactDisplay(x, joinPath(path, i)));
  if (typeof value === "object" && value !== null) {
    const out: { [k: string]: Display } = {};
    for (const [k, x] of Object.entries(value)) out[k] = redactDisplay(x, joinPath(path, k));
    return out;
  }
  return value;
}
