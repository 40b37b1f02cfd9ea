/**
 * Bootstrap token sources (lifecycle.md §3, config.md §2.5) and validation (protocol.md §2).
 * The token is never logged, never put in a URL or on a command line; errors name the source,
 * never the value.
 */
import { readFile } from "node:fs/promises";
import type { Logger } from "../log/index.ts";
import { nullLogger } from "../log/index.ts";
import { readBody, type FetchFn } from "../controlplane/http.ts";
import { abortableSleep } from "../controlplane/retry.ts";

/** protocol.md §2 limit. */
export const MAX_TOKEN_BYTES = 512;
/** Poll interval of {@link waitForToken}. */
export const TOKEN_POLL_MS = 5_000;

/** Where a token came from. File sources are deleted after a successful registration. */
export type TokenSource = "explicit" | "explicit_file" | "file" | "env" | "metadata";

/** A validated token. */
export interface ResolvedToken {
  readonly token: string;
  readonly source: TokenSource;
  /** Set for file sources. */
  readonly path?: string;
}

/** A token that fails validation, or none found; `code` is stable. */
export class TokenError extends Error {
  override readonly name = "TokenError";
  constructor(
    readonly code: "invalid_token" | "no_token",
    message: string,
  ) {
    super(message);
  }
}

/**
 * Trims surrounding whitespace and checks length ≤ 512 bytes and bytes 0x20–0x7E.
 * Returns undefined for an empty value (= source absent).
 * @throws TokenError naming `where`, never the value
 */
export function validateToken(raw: string, where = "token"): string | undefined {
  const t = raw.trim();
  if (t === "") return undefined;
  if (t.length > MAX_TOKEN_BYTES) throw new TokenError("invalid_token", `bootstrap token from ${where} is longer than ${MAX_TOKEN_BYTES} bytes`);
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) throw new TokenError("invalid_token", `bootstrap token from ${where} contains a byte outside 0x20–0x7E`);
  }
  return t;
}

/** The sources, in order (plain values; mapped from config by the caller). */
export interface TokenSourceOptions {
  /** Source 1: `plexd join` prompt / `--token-stdin`. */
  readonly explicitValue?: string;
  /** Source 1: `--token-file` or `PLEXD_BOOTSTRAP_TOKEN_FILE`. */
  readonly explicitFile?: string;
  /** Source 2: `token.file` (default /etc/plexd/bootstrap-token). */
  readonly file?: string;
  /** Source 3: the variable named by `token.env` (default PLEXD_BOOTSTRAP_TOKEN). */
  readonly envName?: string;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Source 4: metadata service when `token.metadata: true`. */
  readonly metadata?: { readonly url: string; readonly path: string; readonly timeoutMs?: number };
  readonly fetch?: FetchFn;
  readonly logger?: Logger;
}

async function readTokenFile(path: string, logger: Logger): Promise<string | undefined> {
  try {
    return await readFile(path, "latin1");
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== "ENOENT") logger.warn("bootstrap token file unreadable", { path, error: code ?? (err as Error).message });
    return undefined;
  }
}

/**
 * IMDSv2-style lookup: `PUT <url>/latest/api/token` (failure ignored), then
 * `GET <url><path>` with the session token when obtained. 2 s timeout each, body ≤ 512 bytes.
 */
export async function fetchMetadataToken(
  meta: NonNullable<TokenSourceOptions["metadata"]>,
  fetchFn: FetchFn = (i, init) => fetch(i, init),
  logger: Logger = nullLogger,
): Promise<string | undefined> {
  const base = meta.url.replace(/\/+$/, "");
  const timeoutMs = meta.timeoutMs ?? 2_000;
  let session: string | undefined;
  try {
    const r = await fetchFn(`${base}/latest/api/token`, {
      method: "PUT",
      headers: { "X-aws-ec2-metadata-token-ttl-seconds": "21600" },
      signal: AbortSignal.timeout(timeoutMs),
      proxy: false,
      redirect: "manual",
    });
    const body = await readBody(r, 1024, true);
    if (r.ok) session = new TextDecoder().decode(body.bytes).trim() || undefined;
  } catch {
    /* IMDSv1-only or no metadata service: ignored by design */
  }
  try {
    const r = await fetchFn(`${base}${meta.path}`, {
      method: "GET",
      headers: session ? { "X-aws-ec2-metadata-token": session } : {},
      signal: AbortSignal.timeout(timeoutMs),
      proxy: false,
      redirect: "manual",
    });
    const body = await readBody(r, MAX_TOKEN_BYTES, false);
    if (!r.ok) return undefined;
    if (body.truncated) throw new TokenError("invalid_token", `bootstrap token from metadata service is longer than ${MAX_TOKEN_BYTES} bytes`);
    return new TextDecoder("latin1").decode(body.bytes);
  } catch (err) {
    if (err instanceof TokenError) throw err;
    logger.debug("metadata service gave no bootstrap token", { error: (err as Error).name });
    return undefined;
  }
}

/**
 * Checks the sources in order; the first non-empty one wins and is validated.
 * Returns undefined when every source is empty.
 * @throws TokenError when the winning value is invalid
 */
export async function resolveToken(opts: TokenSourceOptions): Promise<ResolvedToken | undefined> {
  const logger = opts.logger ?? nullLogger;
  if (opts.explicitValue !== undefined) {
    const t = validateToken(opts.explicitValue, "the explicit value");
    if (t !== undefined) return { token: t, source: "explicit" };
  }
  if (opts.explicitFile) {
    const raw = await readTokenFile(opts.explicitFile, logger);
    const t = raw === undefined ? undefined : validateToken(raw, opts.explicitFile);
    if (t !== undefined) return { token: t, source: "explicit_file", path: opts.explicitFile };
  }
  if (opts.file) {
    const raw = await readTokenFile(opts.file, logger);
    const t = raw === undefined ? undefined : validateToken(raw, opts.file);
    if (t !== undefined) return { token: t, source: "file", path: opts.file };
  }
  if (opts.envName) {
    const raw = (opts.env ?? process.env)[opts.envName];
    const t = raw === undefined ? undefined : validateToken(raw, `environment variable ${opts.envName}`);
    if (t !== undefined) return { token: t, source: "env" };
  }
  if (opts.metadata) {
    const raw = await fetchMetadataToken(opts.metadata, opts.fetch, logger);
    const t = raw === undefined ? undefined : validateToken(raw, "the metadata service");
    if (t !== undefined) return { token: t, source: "metadata" };
  }
  return undefined;
}

/** Polling options of {@link waitForToken}. */
export interface WaitOptions {
  /** `registration.token_wait`; 0 = one look only. */
  readonly waitMs: number;
  readonly pollMs?: number;
  readonly now?: () => number;
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly signal?: AbortSignal;
}

/**
 * Polls the sources every 5 s until one yields a token or `waitMs` has passed (cloud-init may
 * write the file after the unit started).
 * @throws TokenError `no_token` when the wait ends empty, `invalid_token` at once for a bad token
 */
export async function waitForToken(opts: TokenSourceOptions, wait: WaitOptions): Promise<ResolvedToken> {
  const now = wait.now ?? Date.now;
  const sleep = wait.sleep ?? abortableSleep;
  const pollMs = wait.pollMs ?? TOKEN_POLL_MS;
  const deadline = now() + wait.waitMs;
  for (;;) {
    const t = await resolveToken(opts);
    if (t !== undefined) return t;
    const remaining = deadline - now();
    if (remaining <= 0 || wait.signal?.aborted) break;
    await sleep(Math.min(pollMs, remaining), wait.signal);
  }
  throw new TokenError("no_token", `no bootstrap token found (waited ${Math.round(wait.waitMs / 1000)} s); run \`plexd join\` or provide ${opts.file ?? "a token file"}`);
}
