/**
 * The `registering` phase (lifecycle.md §3): wait for a bootstrap token (sources polled every
 * 5 s for `registration.token_wait`, or handed over by `plexd join` through the control
 * socket), then register and persist the identity (identity files 0600, token file removed).
 */
import type { CpApi } from "../controlplane/api.ts";
import type { CapabilitiesPayload } from "../controlplane/types.ts";
import type { Config } from "../config/index.ts";
import { register, resolveToken, TokenError, type Registration, type ResolvedToken, type TokenSourceOptions } from "../identity/index.ts";
import type { Logger } from "../log/index.ts";

/** Token sources of config.md §2.5 plus an explicit file (`PLEXD_BOOTSTRAP_TOKEN_FILE`). */
export function tokenSources(config: Config, env: Readonly<Record<string, string | undefined>>, explicit: { value?: string; file?: string } = {}, log?: Logger): TokenSourceOptions {
  return {
    ...(explicit.value !== undefined ? { explicitValue: explicit.value } : {}),
    ...(explicit.file ? { explicitFile: explicit.file } : {}),
    file: config.token.file,
    envName: config.token.env,
    env,
    ...(config.token.metadata
      ? { metadata: { url: config.token.metadata_url, path: config.token.metadata_path, timeoutMs: config.token.metadata_timeout } }
      : {}),
    ...(log ? { logger: log } : {}),
  };
}

/** A waiter that a `plexd join` can wake with a token. */
export class TokenMailbox {
  #token: string | undefined;
  #wake: (() => void) | undefined;

  /** Hands a token over (from the control socket). */
  put(token: string): void {
    this.#token = token;
    this.#wake?.();
  }

  take(): string | undefined {
    const t = this.#token;
    this.#token = undefined;
    return t;
  }

  /** Resolves after `ms`, on `put`, or on abort. */
  wait(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.#wake = undefined;
        signal.removeEventListener("abort", done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.#wake = done;
      signal.addEventListener("abort", done, { once: true });
    });
  }
}

/** Options of {@link waitAndRegister}. */
export interface RegisterPhaseOptions {
  readonly config: Config;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly explicitFile?: string;
  readonly api: CpApi;
  readonly capabilities: () => CapabilitiesPayload;
  readonly mailbox: TokenMailbox;
  readonly signal: AbortSignal;
  readonly log: Logger;
  readonly reusePrivateKey?: string;
  readonly pollMs?: number;
  readonly now?: () => number;
}

/**
 * Waits for a token and registers.
 * @throws TokenError `no_token` after the wait; RegistrationError from the CP exchange
 */
export async function waitAndRegister(o: RegisterPhaseOptions): Promise<Registration> {
  const now = o.now ?? Date.now;
  const deadline = now() + o.config.registration.token_wait;
  let token: ResolvedToken | undefined;
  let warned = false;
  for (;;) {
    const handed = o.mailbox.take();
    token = await resolveToken(tokenSources(o.config, o.env, { ...(handed !== undefined ? { value: handed } : {}), ...(o.explicitFile ? { file: o.explicitFile } : {}) }, o.log));
    if (token !== undefined || o.signal.aborted) break;
    if (now() >= deadline) break;
    if (!warned) {
      o.log.info("waiting for a bootstrap token", { file: o.config.token.file, env: o.config.token.env, wait_ms: o.config.registration.token_wait });
      warned = true;
    }
    await o.mailbox.wait(Math.min(o.pollMs ?? 5_000, Math.max(0, deadline - now())), o.signal);
  }
  if (token === undefined) {
    throw new TokenError("no_token", `no bootstrap token found (waited ${Math.round(o.config.registration.token_wait / 1000)} s); run \`plexd join\` or provide ${o.config.token.file}`);
  }
  return register({
    dataDir: o.config.data_dir,
    api: o.api,
    token,
    capabilities: o.capabilities(),
    hostname: o.config.hostname,
    metadata: o.config.metadata,
    natFallback: o.config.nat_traversal.fallback,
    maxRetryDurationMs: o.config.registration.max_retry_duration,
    logger: o.log,
    retry: { signal: o.signal },
    ...(o.reusePrivateKey ? { reusePrivateKey: o.reusePrivateKey } : {}),
  });
}
