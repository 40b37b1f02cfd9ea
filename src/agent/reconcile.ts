/**
 * One reconcile cycle (lifecycle.md §9.2): GET /state → validate (schema, per item) → persist
 * the cache → diff desired against what the KERNEL reports → apply → update node state and
 * signing keys → POST /drift when anything was corrected. A failed GET stops the cycle; the
 * kernel keeps the last applied configuration.
 */
import type { CpApi } from "../controlplane/api.ts";
import type { CpError } from "../controlplane/errors.ts";
import type { Policy, StateResponse } from "../controlplane/schemas.ts";
import type { Logger } from "../log/index.ts";
import type { Correction, MeshController } from "../mesh/controller.ts";
import { formatRfc3339Ms } from "../util/duration.ts";
import type { NodeStateStore } from "./node-state.ts";
import type { SigningKeyStore } from "./signing.ts";

/** Collaborators of {@link Reconciler}. */
export interface ReconcilerDeps {
  readonly api: CpApi;
  readonly nodeId: () => string;
  readonly mesh: MeshController;
  readonly nodeState: NodeStateStore;
  readonly signing: SigningKeyStore;
  /** Paused while unauthorized (§11). */
  readonly paused: () => boolean;
  readonly onSuccess: () => void;
  readonly on401: () => void;
  readonly onFailure: (err: CpError) => void;
  readonly log: Logger;
  readonly now?: () => number;
  /**
   * Firewall read-back (the Enforcer's `reconcile()`): the apply inside `mesh.apply()` may diff
   * against memory while the ruleset generation is unchanged; every cycle also reads the table
   * back so drift is found even without a monitor event. Returns `firewall_restored` items.
   */
  readonly firewall?: { reconcile(): Promise<Correction[]> };
}

/** Result of one cycle. */
export interface CycleResult {
  readonly ok: boolean;
  readonly corrections: Correction[];
  readonly errors: Array<{ step: string; message: string }>;
  readonly driftSent: boolean;
}

/** Policy-level corrections between two policy sets (by id and content). */
export function policyCorrections(before: readonly Policy[], after: readonly Policy[]): Correction[] {
  const b = new Map(before.map((p) => [p.id, JSON.stringify(p.rules)]));
  const a = new Map(after.map((p) => [p.id, JSON.stringify(p.rules)]));
  const out: Correction[] = [];
  for (const [id, rules] of a) {
    if (!b.has(id)) out.push({ type: "policy_added", detail: `policy ${id}` });
    // §9.3 names only added/removed; a changed rule set is reported as (re-)added.
    else if (b.get(id) !== rules) out.push({ type: "policy_added", detail: `policy ${id} (rules changed)` });
  }
  for (const id of b.keys()) if (!a.has(id)) out.push({ type: "policy_removed", detail: `policy ${id}` });
  return out;
}

/** See the file comment. */
export class Reconciler {
  readonly #d: ReconcilerDeps;
  readonly #now: () => number;
  lastRunAt: number | undefined;
  lastOkAt: number | undefined;
  lastCorrections = 0;

  constructor(deps: ReconcilerDeps) {
    this.#d = deps;
    this.#now = deps.now ?? Date.now;
  }

  /** Runs one cycle (the scheduler guarantees no overlap). */
  async cycle(reason: string): Promise<CycleResult> {
    const d = this.#d;
    this.lastRunAt = this.#now();
    if (d.paused()) return { ok: false, corrections: [], errors: [{ step: "state", message: "unauthorized" }], driftSent: false };
    const nodeId = d.nodeId();
    const r = await d.api.getState(nodeId);
    if (!r.ok) {
      if (r.error.status === 401) d.on401();
      else d.onFailure(r.error);
      d.log.warn("reconcile: state fetch failed; keeping the applied configuration", { reason, kind: r.error.kind, status: r.error.status });
      // "Keeping the applied configuration" includes the firewall: repair it locally (offline).
      const corrections: Correction[] = [];
      const errors: CycleResult["errors"] = [{ step: "state", message: r.error.message }];
      await this.#firewallReadBack(corrections, errors);
      if (corrections.length > 0) d.log.warn("reconcile: firewall restored while the control plane is unreachable (not reported)");
      return { ok: false, corrections, errors, driftSent: false };
    }
    d.onSuccess();
    return this.applyState(r.value, reason);
  }

  async #firewallReadBack(corrections: Correction[], errors: CycleResult["errors"]): Promise<void> {
    const fw = this.#d.firewall;
    if (!fw) return;
    try {
      for (const c of await fw.reconcile()) {
        if (c.type === "firewall_restored" && !corrections.some((x) => x.type === c.type)) corrections.push(c);
      }
    } catch (err) {
      errors.push({ step: "firewall", message: (err as Error).message });
    }
  }

  /** Steps 2–7 for a fetched state (also used by tests). */
  async applyState(state: StateResponse, reason: string): Promise<CycleResult> {
    const d = this.#d;
    const corrections: Correction[] = [];
    const errors: CycleResult["errors"] = [];
    if (state.peers.rejected.length > 0) {
      d.log.warn("reconcile: invalid peers skipped", { count: state.peers.rejected.length, first: state.peers.rejected[0]?.reason });
    }
    corrections.push(...policyCorrections(d.mesh.policies, state.policies));
    try {
      d.mesh.commit({ peers: state.peers.peers, policies: state.policies });
    } catch (err) {
      errors.push({ step: "cache", message: (err as Error).message });
      d.mesh.load(state.peers.peers, state.policies);
    }
    const applied = await d.mesh.apply();
    corrections.push(...applied.corrections);
    errors.push(...applied.errors);
    if (!applied.errors.some((e) => e.step === "firewall")) await this.#firewallReadBack(corrections, errors);
    const guard = (step: string, fn: () => void) => {
      try {
        fn();
      } catch (err) {
        errors.push({ step, message: (err as Error).message });
      }
    };
    guard("metadata", () => {
      if (d.nodeState.setMetadata(state.metadata)) corrections.push({ type: "metadata_updated", detail: "metadata updated" });
    });
    guard("data", () => {
      if (d.nodeState.setData(state.data)) corrections.push({ type: "data_updated", detail: "data updated" });
    });
    guard("secret_refs", () => {
      if (d.nodeState.setSecretRefs(state.secret_refs)) corrections.push({ type: "secret_refs_updated", detail: "secret refs updated" });
    });
    if (state.signing_keys) {
      const keys = state.signing_keys;
      guard("signing_keys", () => {
        const res = d.signing.adoptFromState(keys);
        if ("rejected" in res) d.log.warn("reconcile: signing keys from state not adopted", { reason: res.rejected });
        else if (res.changed) corrections.push({ type: "signing_keys_updated", detail: "signing keys rotated" });
      });
    }
    let driftSent = false;
    if (corrections.length > 0) {
      const res = await d.api.postDrift(d.nodeId(), { timestamp: formatRfc3339Ms(this.#now()), corrections: corrections.map((c) => ({ type: c.type, detail: c.detail })) });
      driftSent = res.ok;
      if (!res.ok) d.log.warn("reconcile: drift report not delivered (best effort)", { kind: res.error.kind, status: res.error.status });
      d.log.info("reconcile: corrected drift", { reason, corrections: corrections.length });
    }
    for (const e of errors) d.log.warn("reconcile step failed", e);
    this.lastCorrections = corrections.length;
    if (errors.length === 0) this.lastOkAt = this.#now();
    return { ok: errors.length === 0, corrections, errors, driftSent };
  }
}
