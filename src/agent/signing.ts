/**
 * The CP signing key set (lifecycle.md §10.2): what the verifier trusts, how
 * `signing_key_rotated` (both shapes) and `GET /state` change it, and its persistence
 * (`signing_keys.json` + `signing_public_key`). A timer drops `previous` at
 * `transition_expires`.
 */
import * as v from "valibot";
import { key32, rfc3339, SigningKeysSchema, type SigningKeys } from "../controlplane/schemas.ts";
import { ed25519KeyFromBase64, type TrustedKeys } from "../events/keys.ts";
import { writeSigningKeys } from "../identity/index.ts";
import { parseDurationMs, parseRfc3339 } from "../util/duration.ts";

/** Shape B of `signing_key_rotated`. */
const ShapeB = v.object({ new_signing_public_key: key32, valid_from: rfc3339, transition_period: v.string() });

/** Outcome of an adoption attempt. */
export type AdoptResult = { changed: boolean; keys: SigningKeys } | { changed: false; rejected: string };

const rfcMs = (s: string | null): number | undefined => (s === null ? undefined : parseRfc3339(s)?.epochMs);

/** Same set? (current, previous, transition_expires by instant) */
export function sameKeys(a: SigningKeys, b: SigningKeys): boolean {
  return a.current === b.current && (a.previous ?? null) === (b.previous ?? null) && rfcMs(a.transition_expires) === rfcMs(b.transition_expires);
}

/**
 * Parses a `signing_key_rotated` payload (Shape A or B) into the new key set.
 * @returns the new set, or an error string for a payload matching neither shape
 */
export function keysFromRotationEvent(payload: unknown, current: SigningKeys, nowMs: number): SigningKeys | string {
  const a = v.safeParse(SigningKeysSchema, payload);
  if (a.success) return a.output;
  const b = v.safeParse(ShapeB, payload);
  if (!b.success) return "payload is neither {current, previous, transition_expires} nor {new_signing_public_key, valid_from, transition_period}";
  let periodMs: number;
  try {
    periodMs = parseDurationMs(b.output.transition_period);
  } catch {
    return `transition_period ${JSON.stringify(b.output.transition_period)} is not a Go duration`;
  }
  const from = parseRfc3339(b.output.valid_from)!.epochMs;
  const expires = Math.max(from, nowMs) + periodMs;
  return { current: b.output.new_signing_public_key, previous: current.current, transition_expires: new Date(expires).toISOString() };
}

/** Options of {@link SigningKeyStore}. */
export interface SigningKeyStoreOptions {
  readonly dataDir: string;
  readonly initial: SigningKeys;
  readonly now?: () => number;
  /** Persists (default: identity's writeSigningKeys). */
  readonly persist?: (dataDir: string, keys: SigningKeys) => void;
}

/** See the file comment. */
export class SigningKeyStore {
  readonly #o: SigningKeyStoreOptions;
  readonly #now: () => number;
  #keys: SigningKeys;
  #trusted: TrustedKeys | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Set when GET /state offered keys without continuity (control_plane degraded). */
  continuityBroken = false;

  constructor(opts: SigningKeyStoreOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
    this.#keys = opts.initial;
    this.#rebuild();
  }

  get keys(): SigningKeys {
    return this.#keys;
  }

  /** The verifier's view (read per event). */
  trusted(): TrustedKeys | undefined {
    return this.#trusted;
  }

  #rebuild(): void {
    const k = this.#keys;
    const exp = rfcMs(k.transition_expires);
    let previous;
    if (k.previous && exp !== undefined && exp > this.#now()) {
      try {
        previous = ed25519KeyFromBase64(k.previous);
      } catch {
        previous = undefined;
      }
    }
    this.#trusted = {
      current: ed25519KeyFromBase64(k.current),
      ...(previous ? { previous, transitionExpiresMs: exp } : {}),
    };
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (previous && exp !== undefined) {
      // setTimeout holds at most ~24.8 days; re-arm in steps.
      const wait = Math.min(exp - this.#now(), 2 ** 31 - 1);
      this.#timer = setTimeout(() => this.#rebuild(), Math.max(0, wait));
      (this.#timer as { unref?: () => void }).unref?.();
    }
  }

  /** Adopts a new set (event path: the event was verified by a trusted key). Persists first. */
  adopt(next: SigningKeys, dryRun = false): AdoptResult {
    if (sameKeys(next, this.#keys)) return { changed: false, keys: this.#keys };
    try {
      ed25519KeyFromBase64(next.current);
    } catch (err) {
      return { changed: false, rejected: (err as Error).message };
    }
    if (dryRun) return { changed: true, keys: next };
    (this.#o.persist ?? writeSigningKeys)(this.#o.dataDir, next);
    this.#keys = next;
    this.#rebuild();
    return { changed: true, keys: next };
  }

  /**
   * Adopts keys from `GET /state` only with continuity: the new current or previous equals the
   * currently trusted current key (a TLS-only channel must not replace the trust anchor).
   */
  adoptFromState(next: SigningKeys, dryRun = false): AdoptResult {
    if (sameKeys(next, this.#keys)) {
      this.continuityBroken = false;
      return { changed: false, keys: this.#keys };
    }
    if (next.current !== this.#keys.current && next.previous !== this.#keys.current) {
      if (!dryRun) this.continuityBroken = true;
      return { changed: false, rejected: "signing key continuity broken" };
    }
    this.continuityBroken = false;
    return this.adopt(next, dryRun);
  }

  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
  }
}
