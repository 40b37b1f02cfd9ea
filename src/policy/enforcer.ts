/**
 * Policy enforcement (lifecycle.md §4.3, §9): keeps `inet plexd` equal to the compiled policy.
 *
 *  - apply(desired): compile, diff against the kernel, commit ONE transaction (elements only
 *    when the structure is unchanged, so established flows and counters stay).
 *  - reconcile(): read the table back, compare structurally, repair → `firewall_restored`.
 *  - startWatch(): nftables notifications; a foreign change to our table (e.g. `nft flush
 *    ruleset`, a firewalld reload) triggers a reconcile within `debounceMs`. With firewalld
 *    running, the mesh interface is bound to its trusted zone.
 *  - status(): what `plexd policies` prints.
 *
 * All operations are serialised; stop() leaves the table in place (fail closed while the
 * agent is down; `plexd cleanup --all` removes it).
 */
import { existsSync } from "node:fs";
import type { NftMonitorEvent, NftMonitorHandle } from "../kernel/addon-api.ts";
import type { FwDump, FwOp, FwSet } from "../kernel/firewall-api.ts";
import { compile } from "./compile.ts";
import { incremental, snapshot } from "./incremental.ts";
import type { FirewalldControl } from "./firewalld.ts";
import { foreignWarnings, type ForeignChainWarning } from "./foreign.ts";
import { asDump, fullBatch, plan, type Plan } from "./plan.ts";
import type { FirewallTarget } from "./target.ts";
import { counterOf, ruleText } from "./text.ts";
import type { CompileNote, CompileOptions, Compiled, PolicySet, RuleReport, Ruleset } from "./types.ts";

/** One drift-report item (lifecycle.md §9.3). */
export interface Correction {
  type: "policy_added" | "policy_removed" | "firewall_restored";
  detail: string;
}
export type Corrections = Correction[];

/** The logger subset the enforcer uses. */
export interface EnforcerLog {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface EnforcerOptions extends CompileOptions {
  /** Debounce between a foreign change and the reconcile it triggers [50 ms]. */
  debounceMs?: number;
}

export interface EnforcerDeps {
  target: FirewallTarget;
  log: EnforcerLog;
  options: EnforcerOptions;
  /** null = do not manage firewalld. */
  firewalld?: FirewalldControl | null;
  /** True when `pid` (a committing thread, as nf_tables reports it) belongs to this process. */
  isOwnThread?: (pid: number) => boolean;
}

/** What `plexd policies` shows. */
export interface PolicyStatus {
  interface: string;
  default: "deny" | "allow";
  logDenied: boolean;
  /** null before the first apply. */
  synced: boolean | null;
  lastApply: string | null;
  lastReconcile: string | null;
  lastError: string | null;
  restored: number;
  rules: RuleReport[];
  notes: CompileNote[];
  firewall: {
    exists: boolean;
    rules: Array<{ chain: string; text: string; packets: number; bytes: number }>;
    sets: Array<{ name: string; elements: number }>;
  };
  foreign: ForeignChainWarning[];
  firewalld: { running: boolean; zone: string | null } | null;
}

const RESTORED: Correction = { type: "firewall_restored", detail: "table inet plexd differed from desired ruleset" };

const ownThread = (pid: number): boolean => pid > 0 && existsSync(`/proc/self/task/${pid}`);

/** The cached generation is stale (checked without a commit); the caller re-plans from the kernel. */
class GenerationMoved extends Error {
  override name = "GenerationMoved";
  readonly code = "ERESTART";
}

const codeOf = (err: unknown): unknown => (err instanceof Error ? (err as { code?: unknown }).code : undefined);

/** The generation nf_tables moves to on a commit (a 32-bit counter that skips 0). */
const nextGeneration = (g: number): number => ((g + 1) >>> 0) || 1;

export class Enforcer {
  private readonly target: FirewallTarget;
  private readonly log: EnforcerLog;
  private options: EnforcerOptions;
  private readonly firewalld: FirewalldControl | null;
  private readonly isOwnThread: (pid: number) => boolean;

  private desired: PolicySet | null = null;
  private compiled: Compiled | null = null;
  /** The options object `compiled` was built with (setOptions replaces it). */
  private compiledWith: EnforcerOptions | null = null;
  /** Generation right after our last commit: when unchanged, the kernel still holds `compiled`. */
  private cachedGen: number | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private noteKey = "";
  private synced: boolean | null = null;
  private lastApply: Date | null = null;
  private lastReconcile: Date | null = null;
  private lastError: string | null = null;
  private restored = 0;

  private monitor: NftMonitorHandle | null = null;
  private pending: NftMonitorEvent[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private reconcileQueued = false;
  private dirty = false;
  private again = false;
  private firewalldQueued = false;
  private stopped = false;

  constructor(deps: EnforcerDeps) {
    this.target = deps.target;
    this.log = deps.log;
    this.options = deps.options;
    this.firewalld = deps.firewalld ?? null;
    this.isOwnThread = deps.isOwnThread ?? ownThread;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** New options (config reload); applied with the next apply/reconcile. */
  setOptions(options: EnforcerOptions): Promise<Corrections> {
    this.options = options;
    return this.desired ? this.apply(this.desired) : Promise.resolve([]);
  }

  /** Makes the table enforce `desired` (the whole policy set, identity and peers). */
  apply(desired: PolicySet): Promise<Corrections> {
    return this.serial(async () => {
      const prev = this.compiled;
      const prevSet = this.desired;
      const corrections: Correction[] = [];
      if (prevSet) {
        const ids = new Set(desired.policies.map((p) => p.id));
        const prevIds = new Set(prevSet.policies.map((p) => p.id));
        for (const id of ids) if (!prevIds.has(id)) corrections.push({ type: "policy_added", detail: `policy ${id}` });
        for (const id of prevIds) if (!ids.has(id)) corrections.push({ type: "policy_removed", detail: `policy ${id}` });
      }
      const snap = snapshot(desired);
      // The kernel still holds exactly what we last committed when the generation is unchanged.
      // A target with conditional commits (applyAt) checks that inside the commit itself — the
      // kernel refuses the batch if anything changed since — so no separate round trip first.
      const conditional = this.target.applyAt !== undefined;
      // commit() forgets the cached generation; a refused batch changes nothing, so keep it here.
      const gen0 = this.cachedGen;
      let cacheValid =
        prev !== null &&
        gen0 !== null &&
        (conditional || (this.target.generation !== undefined && (await this.target.generation()) === gen0));

      // Fast path: rules appended → compile and add only their elements.
      if (cacheValid && prev && prevSet && this.compiledWith === this.options) {
        const inc = incremental(prevSet, prev, snap, this.options);
        if (inc) {
          this.logNotes(inc.compiled.notes);
          const ops: FwOp[] = [...inc.adds].map(([set, elements]) => ({ op: "addElements", set, elements }));
          const p: Plan = { kind: ops.length ? "elements" : "none", batch: { family: "inet", table: this.target.table, ops }, reasons: [], added: ops.length, removed: 0 };
          try {
            await this.commit(p, inc.compiled.ruleset, false, conditional ? gen0 : null);
            this.desired = snap;
            this.compiled = inc.compiled;
            this.lastApply = new Date();
            return corrections;
          } catch (err) {
            if (err instanceof GenerationMoved || codeOf(err) === "ERESTART") {
              this.log.debug("nftables ruleset changed since our last commit; reading it back", {});
              cacheValid = false;
            } else this.log.warn("incremental nftables update rejected; recomputing", { error: String(err) });
          }
        }
      }

      const next = compile(snap, this.options);
      this.logNotes(next.notes);
      for (;;) {
        const fromKernel = !(cacheValid && prev);
        const expect = conditional && !fromKernel ? gen0 : null;
        const actual = fromKernel ? await this.target.dump() : asDump((prev as Compiled).ruleset);
        const p = plan(next.ruleset, actual);
        // Drift: the kernel did not hold what we last applied (first apply: an old table that is
        // not what we want now).
        const drifted = fromKernel && actual.exists && (prev ? plan(prev.ruleset, actual).kind !== "none" : p.kind !== "none");
        this.desired = snap;
        this.compiled = next;
        this.compiledWith = this.options;
        try {
          await this.commit(p, next.ruleset, true, expect);
        } catch (err) {
          // The ruleset changed since our last commit: plan again against what the kernel holds.
          if (expect !== null && (err instanceof GenerationMoved || codeOf(err) === "ERESTART")) {
            this.log.debug("nftables ruleset changed since our last commit; reading it back", {});
            cacheValid = false;
            continue;
          }
          throw err;
        }
        this.lastApply = new Date();
        if (drifted) {
          this.restored++;
          corrections.push(RESTORED);
        }
        return corrections;
      }
    });
  }

  /** Reads the table back and repairs it; `firewall_restored` when anything differed. */
  reconcile(): Promise<Corrections> {
    return this.serial(async () => {
      const c = this.compiled;
      if (!c) return [];
      const actual = await this.target.dump();
      const p = plan(c.ruleset, actual);
      this.lastReconcile = new Date();
      if (p.kind === "none") {
        this.synced = true;
        if (this.target.generation) this.cachedGen = await this.target.generation();
        return [];
      }
      this.log.warn("nftables table differed from the desired ruleset; restoring", { plan: p.kind, reasons: p.reasons.slice(0, 5) });
      await this.commit(p, c.ruleset);
      this.restored++;
      return [RESTORED];
    });
  }

  /**
   * One transaction; a failed partial plan is retried once as a full replace (`fallback`).
   * `expect` (conditional targets only): the generation the plan was computed against; the
   * commit is refused when the ruleset moved on (GenerationMoved / ERESTART, for the caller to
   * re-plan from the kernel), and the new generation is cached only when it is exactly the
   * next one, i.e. nobody else committed in between.
   */
  private async commit(p: Plan, rs: Ruleset, fallback = true, expect: number | null = null): Promise<void> {
    const sets = new Map<string, FwSet>(rs.sets.map((s) => [s.name, s]));
    const applyAt = this.target.applyAt?.bind(this.target);
    this.cachedGen = null;
    let gen: number | null = null;
    if (p.kind === "none") {
      // Nothing to commit; with a conditional target the cache has not been checked yet.
      const now = applyAt && this.target.generation ? await this.target.generation() : null;
      if (expect !== null && now !== expect) throw new GenerationMoved();
      gen = now;
    } else {
      try {
        if (applyAt) gen = await applyAt(p.batch, sets, expect);
        else await this.target.apply(p.batch, sets);
        if (expect !== null && gen !== nextGeneration(expect)) gen = null; // someone else committed too
      } catch (err) {
        if (expect !== null && codeOf(err) === "ERESTART") throw err;
        if (!fallback) {
          this.cachedGen = null;
          throw err;
        }
        if (p.kind === "full") return this.fail(err);
        this.log.warn("nftables delta rejected; replacing the whole table", { plan: p.kind, error: String(err) });
        try {
          if (applyAt) gen = await applyAt(fullBatch(rs), sets, null);
          else await this.target.apply(fullBatch(rs), sets);
        } catch (err2) {
          return this.fail(err2);
        }
      }
      this.log.debug("nftables table updated", { plan: p.kind, added: p.added, removed: p.removed });
    }
    this.synced = true;
    this.lastError = null;
    if (applyAt) this.cachedGen = gen || null;
    else if (this.target.generation) this.cachedGen = await this.target.generation();
  }

  private fail(err: unknown): never {
    this.synced = false;
    this.lastError = err instanceof Error ? err.message : String(err);
    throw err;
  }

  private logNotes(notes: CompileNote[]): void {
    const key = JSON.stringify(notes);
    if (key === this.noteKey) return;
    this.noteKey = key;
    for (const n of notes) {
      const f = { policy: n.policy, rule: n.index };
      if (n.level === "warn") this.log.warn(`policy rule skipped: ${n.message}`, f);
      else this.log.info(`policy rule matches nothing: ${n.message}`, f);
    }
  }

  /** Starts the nftables monitor (and firewalld handling); idempotent. */
  startWatch(): void {
    this.stopped = false;
    if (!this.monitor && this.target.monitor) {
      try {
        this.monitor = this.target.monitor((evs) => this.onEvents(evs));
        this.monitor.unref();
      } catch (err) {
        this.log.warn("nftables monitor unavailable; relying on periodic reconcile", { error: String(err) });
      }
    }
    this.queueFirewalld();
  }

  /** Stops watching; waits for the running operation. The table stays. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.monitor?.close();
    this.monitor = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.pending = [];
    await this.queue;
  }

  private concernsUs(e: NftMonitorEvent): boolean {
    return "table" in e && e.family === "inet" && e.table === this.target.table;
  }

  private onEvents(evs: NftMonitorEvent[]): void {
    if (this.stopped) return;
    let ours = false;
    let fw = false;
    for (const e of evs) {
      if (e.type === "overflow") ours = true;
      else if (e.type === "error") {
        this.log.warn("nftables monitor stopped; restarting", { code: e.code });
        this.monitor?.close();
        this.monitor = null;
        setTimeout(() => this.stopped || this.startWatch(), 1000).unref?.();
        ours = true;
      } else if (e.type === "newgen") {
        if (!this.isOwnThread(e.pid)) {
          ours ||= this.pending.some((x) => this.concernsUs(x));
          fw ||= this.pending.some((x) => "table" in x && x.table === "firewalld" && x.type === "newtable");
        }
        this.pending = [];
      } else this.pending.push(e);
    }
    if (fw) this.queueFirewalld();
    if (ours) this.dirty = true;
    // Object events without their generation yet: decide when the debounce fires.
    if (ours || this.pending.some((x) => this.concernsUs(x))) this.arm();
  }

  private arm(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      // Events still pending had no NEWGEN (lost or split): treat them as foreign.
      const go = this.dirty || this.pending.some((x) => this.concernsUs(x));
      this.dirty = false;
      if (go) this.queueReconcile();
    }, this.options.debounceMs ?? 50);
    this.timer.unref?.();
  }

  private queueReconcile(): void {
    if (this.stopped) return;
    if (this.reconcileQueued) {
      // A change during a running reconcile may postdate its read-back: run once more.
      this.again = true;
      return;
    }
    this.reconcileQueued = true;
    void this.reconcile()
      .then((c) => c.length && this.log.info("restored the plexd nftables table after an outside change"))
      .catch((err: unknown) => this.log.error("restoring the plexd nftables table failed", { error: String(err) }))
      .finally(() => {
        this.reconcileQueued = false;
        if (this.again) {
          this.again = false;
          this.queueReconcile();
        }
      });
  }

  private queueFirewalld(): void {
    const fwd = this.firewalld;
    if (!fwd || this.firewalldQueued) return;
    this.firewalldQueued = true;
    void (async () => {
      try {
        if (!(await fwd.running())) return;
        const ifname = this.options.interface;
        const zone = await fwd.zoneOf(ifname);
        if (zone === "trusted") return;
        await fwd.trust(ifname);
        this.log.info("firewalld: mesh interface bound to the trusted zone", { interface: ifname, previous: zone });
      } catch (err) {
        this.log.warn("firewalld: could not put the mesh interface into the trusted zone", { error: String(err) });
      } finally {
        this.firewalldQueued = false;
      }
    })();
  }

  /** Everything `plexd policies` shows (reads the kernel for counters and foreign chains). */
  async status(): Promise<PolicyStatus> {
    const d = await this.target.dump();
    const foreign = this.target.foreignTables ? await this.target.foreignTables().catch(() => []) : [];
    let firewalld: PolicyStatus["firewalld"] = null;
    if (this.firewalld) {
      const running = await this.firewalld.running().catch(() => false);
      firewalld = { running, zone: running ? await this.firewalld.zoneOf(this.options.interface).catch(() => null) : null };
    }
    return {
      interface: this.options.interface,
      default: this.options.default,
      logDenied: this.options.logDenied,
      synced: this.compiled ? plan(this.compiled.ruleset, d).kind === "none" : this.synced,
      lastApply: this.lastApply?.toISOString() ?? null,
      lastReconcile: this.lastReconcile?.toISOString() ?? null,
      lastError: this.lastError,
      restored: this.restored,
      rules: this.compiled?.rules ?? [],
      notes: this.compiled?.notes ?? [],
      firewall: statusOfDump(d),
      foreign: foreignWarnings(foreign, this.options.interface),
      firewalld,
    };
  }
}

/** The firewall part of the status from a dump (also used by the CLI's local fallback). */
export function statusOfDump(d: FwDump): PolicyStatus["firewall"] {
  return {
    exists: d.exists,
    rules: d.rules.map((r) => ({ chain: r.chain, text: ruleText(r), ...counterOf(r) })),
    sets: d.sets.map((s) => ({ name: s.name, elements: s.elements.length })),
  };
}
