/**
 * The node's current identity as the running agent sees it. Mutable in exactly three places:
 * registration, key rotation (private key, optional NSK) and re-registration (§11). Everyone
 * else reads through the getters, so a change applies at once (bearer token, mesh IP, keys).
 */
import type { Identity } from "../identity/index.ts";

/** Holder of the current identity; see the file comment. */
export class NodeContext {
  #id: Identity | undefined;

  constructor(initial?: Identity) {
    this.#id = initial;
  }

  get registered(): boolean {
    return this.#id !== undefined;
  }

  /** @throws Error when not registered (a bug: callers run only after registration) */
  get identity(): Identity {
    if (!this.#id) throw new Error("node is not registered");
    return this.#id;
  }

  get maybe(): Identity | undefined {
    return this.#id;
  }

  /** Bearer token for CP calls (the NSK), undefined before registration. */
  bearer(): string | undefined {
    return this.#id?.nodeSecretKey;
  }

  set(identity: Identity): void {
    this.#id = identity;
  }

  update(patch: Partial<Identity>): void {
    this.#id = { ...this.identity, ...patch };
  }
}
