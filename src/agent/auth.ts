/**
 * Re-authentication after 401 (lifecycle.md §11): the first 401 asks for one heartbeat retry
 * after 5 s; a second consecutive 401 turns the node `unauthorized` and tries to re-register
 * with a bootstrap token from the sources (existing key). Any success resets the count.
 * Local data is never deleted here.
 */
import type { Logger } from "../log/index.ts";
import type { AuthState } from "./types.ts";

/** Callbacks of {@link AuthMonitor}. */
export interface AuthMonitorOptions {
  /** One heartbeat now (the 5 s retry and the probe). */
  readonly heartbeatNow: () => void;
  /**
   * Tries re-registration with a token from the sources (or the one given by `plexd join`).
   * Resolves true on success; false when no token was available.
   */
  readonly reregister: (token?: string) => Promise<boolean>;
  readonly onStateChange?: (s: AuthState) => void;
  readonly log: Logger;
  readonly retryDelayMs?: number;
}

/** See the file comment. */
export class AuthMonitor {
  readonly #o: AuthMonitorOptions;
  #consecutive = 0;
  #state: AuthState = "ok";
  #timer: ReturnType<typeof setTimeout> | undefined;
  #reregistering: Promise<boolean> | undefined;

  constructor(opts: AuthMonitorOptions) {
    this.#o = opts;
  }

  get state(): AuthState {
    return this.#state;
  }

  get unauthorized(): boolean {
    return this.#state === "unauthorized";
  }

  /** A request was answered 401. */
  report401(source: string): void {
    this.#consecutive++;
    this.#o.log.warn("control plane answered 401", { source, consecutive: this.#consecutive });
    if (this.#consecutive === 1) {
      if (this.#timer) clearTimeout(this.#timer);
      this.#timer = setTimeout(() => this.#o.heartbeatNow(), this.#o.retryDelayMs ?? 5_000);
      return;
    }
    if (this.#state !== "unauthorized") {
      this.#set("unauthorized");
      this.#o.log.error("identity rejected by the control plane — run `plexd join` if no bootstrap token source is configured");
    }
    void this.tryReregister();
  }

  /** A NSK request succeeded. */
  reportSuccess(): void {
    this.#consecutive = 0;
    if (this.#state === "unauthorized") this.#set("ok");
  }

  /** Re-registration (also `plexd join` while the daemon runs). One at a time. */
  tryReregister(token?: string): Promise<boolean> {
    if (this.#reregistering) return this.#reregistering;
    this.#reregistering = this.#o
      .reregister(token)
      .then((ok) => {
        if (ok) {
          this.#consecutive = 0;
          this.#set("ok");
        }
        return ok;
      })
      .catch((err) => {
        this.#o.log.error("re-registration failed", { error: (err as Error).message });
        return false;
      })
      .finally(() => {
        this.#reregistering = undefined;
      });
    return this.#reregistering;
  }

  #set(s: AuthState): void {
    if (this.#state === s) return;
    this.#state = s;
    this.#o.onStateChange?.(s);
  }

  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
  }
}
