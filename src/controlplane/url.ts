/**
 * Base URL and path rules of protocol.md §1: trailing `/` trimmed, `https://` required and
 * `http://` only for loopback hosts; every path parameter percent-encoded as one segment.
 */

/** Invalid base URL or path parameter; `code` is stable. */
export class CpUrlError extends Error {
  override readonly name = "CpUrlError";
  readonly code = "cp_invalid_url";
}

/** True for `localhost`, `127.0.0.0/8` and `::1` (the hosts `http://` is allowed for). */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[|\]$/g, "");
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  if (h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  return m !== null && m[1] === "127" && m.slice(2).every((x) => Number(x) <= 255);
}

/**
 * Validates and normalises the `api` base URL (trailing slashes trimmed, no query/fragment,
 * no credentials). Throws CpUrlError naming the problem (never echoing userinfo).
 */
export function normaliseBaseUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw.trim());
  } catch {
    throw new CpUrlError("api url is not a valid URL");
  }
  if (u.username !== "" || u.password !== "") throw new CpUrlError("api url must not contain credentials");
  if (u.search !== "" || u.hash !== "") throw new CpUrlError("api url must not contain a query or fragment");
  if (u.protocol === "http:") {
    if (!isLoopbackHost(u.hostname)) throw new CpUrlError(`api url must use https:// (http:// only for loopback), got host ${u.hostname}`);
  } else if (u.protocol !== "https:") {
    throw new CpUrlError(`api url must use https://, got ${u.protocol}`);
  }
  return `${u.protocol}//${u.host}${u.pathname}`.replace(/\/+$/, "");
}

/**
 * Encodes one path parameter as a single segment (`/` → `%2F`). Empty, `.` and `..` are refused:
 * URL parsers resolve dot segments (also `%2e`), which would move the request to another path.
 */
export function segment(value: string): string {
  if (value === "" || /^(?:\.|%2e){1,2}$/i.test(value)) {
    throw new CpUrlError(`path parameter ${JSON.stringify(value)} is not a usable segment`);
  }
  // encodeURIComponent leaves only unreserved chars and !'()* raw — all valid pchar.
  return encodeURIComponent(value);
}

/**
 * Tagged template for request paths: literal parts are kept, every interpolated value is one
 * encoded segment. `cpPath\`/v1/nodes/${id}/heartbeat\``.
 */
export function cpPath(strings: TemplateStringsArray, ...values: string[]): string {
  let out = strings[0] ?? "";
  values.forEach((v, i) => {
    out += segment(v) + (strings[i + 1] ?? "");
  });
  return out;
}
