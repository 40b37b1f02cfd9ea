/**
 * The agent's firewall step (lifecycle.md §4.2 step 7, §4.3): the policy Enforcer behind the
 * mesh controller's `MeshFirewall` seam. One nftables path: the Enforcer's FirewallTarget
 * (policy/target.ts over kernel/nft.ts) both enforces and — at deregistration — deletes
 * `inet plexd`. Keeps the few facts the health indicator needs so status and heartbeat never
 * dump the table.
 */
import type { Config } from "../config/index.ts";
import type { Logger } from "../log/index.ts";
import type { Correction, FirewallInput, MeshFirewall } from "../mesh/controller.ts";
import { Enforcer, type EnforcerOptions, type FirewallTarget, type FirewalldControl, type PolicyStatus } from "../policy/index.ts";

/** Enforcer options from config (the policy engineer's wiring). */
export function enforcerOptions(c: Config): EnforcerOptions {
  return { interface: c.mesh.interface, default: c.policy.default, logDenied: c.policy.log_denied, forward: true };
}

/** What the `firewall` health indicator reads (operations.md §5.1). */
export interface FirewallHealth {
  readonly enabled: boolean;
  readonly lastError: string | null;
  readonly lastAppliedAt: number | null;
  readonly lastRestoredAt: number | null;
}

const isAbsent = (err: unknown): boolean => ["ENOENT", "NO_ADDON"].includes(String((err as { code?: unknown } | null)?.code ?? ""));

/** Constructor arguments of {@link AgentFirewall}. */
export interface AgentFirewallOptions {
  /** null = no nftables here (no addon: tests with the fake kernel and no fake target). */
  readonly target: FirewallTarget | null;
  readonly config: () => Config;
  readonly log: Logger;
  readonly firewalld?: FirewalldControl | null;
  readonly now?: () => number;
}

/** See the file comment. */
export class AgentFirewall implements MeshFirewall {
  readonly enforcer: Enforcer | null;
  readonly #o: AgentFirewallOptions;
  readonly #now: () => number;
  #lastError: string | null = null;
  #lastAppliedAt: number | null = null;
  #lastRestoredAt: number | null = null;
  #staleChecked = false;

  constructor(o: AgentFirewallOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
    const c = o.config();
    this.enforcer =
      c.policy.enabled && o.target
        ? new Enforcer({ target: o.target, log: o.log, options: enforcerOptions(c), firewalld: o.firewalld ?? null })
        : null;
  }

  health(): FirewallHealth {
    return { enabled: this.enforcer !== null, lastError: this.#lastError, lastAppliedAt: this.#lastAppliedAt, lastRestoredAt: this.#lastRestoredAt };
  }

  /** nftables monitor + firewalld trust (at start). */
  startWatch(): void {
    this.enforcer?.startWatch();
  }

  /** Stops watching; the table stays (fail closed while the agent is down). */
  async stop(): Promise<void> {
    await this.enforcer?.stop();
  }

  /** Config reload: `policy.default` / `policy.log_denied` apply at once. */
  async reload(): Promise<Correction[]> {
    if (!this.enforcer) return [];
    return this.#track(() => this.enforcer!.setOptions(enforcerOptions(this.#o.config())));
  }

  async apply(input: FirewallInput): Promise<Correction[]> {
    if (!this.enforcer) {
      await this.#removeStaleOnce();
      return [];
    }
    const e = this.enforcer;
    return this.#track(() =>
      e.apply({
        policies: input.policies.map((p) => ({ id: p.id, rules: p.rules })),
        local: input.local,
        peers: input.peers,
      }),
    );
  }

  /** Read-back and repair (every reconcile cycle). */
  async reconcile(): Promise<Correction[]> {
    if (!this.enforcer) return [];
    return this.#track(() => this.enforcer!.reconcile());
  }

  /** `plexd policies`; null when enforcement is off. */
  async status(): Promise<PolicyStatus | null> {
    return this.enforcer ? this.enforcer.status() : null;
  }

  async remove(): Promise<void> {
    const t = this.#o.target;
    if (!t) return;
    try {
      await t.apply({ family: "inet", table: t.table, ops: [{ op: "deleteTable" }] }, new Map());
    } catch (err) {
      // No table (never created, or already gone) is the goal state.
      if (!isAbsent(err)) throw err;
    }
  }

  async #track(fn: () => Promise<Array<{ type: string; detail: string }>>): Promise<Correction[]> {
    try {
      const out = (await fn()).filter((c) => c.type === "firewall_restored");
      this.#lastError = null;
      this.#lastAppliedAt = this.#now();
      if (out.length > 0) this.#lastRestoredAt = this.#now();
      return out;
    } catch (err) {
      this.#lastError = (err as Error).message;
      throw err;
    }
  }

  /**
   * `policy.enabled: false` with a table left by an earlier run: every peer is now visible, but
   * the old table would keep dropping their traffic — delete it once.
   */
  async #removeStaleOnce(): Promise<void> {
    if (this.#staleChecked || !this.#o.target) return;
    this.#staleChecked = true;
    const d = await this.#o.target.dump().catch(() => null);
    if (!d?.exists) return;
    this.#o.log.warn("policy enforcement is disabled; deleting the table inet plexd left by an earlier run");
    await this.remove();
  }
}
