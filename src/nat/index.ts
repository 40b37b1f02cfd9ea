/**
 * NatDiscovery: the agent's STUN service (lifecycle.md §5). One cycle = open the transport
 * (raw socket from the WireGuard port, or the unprivileged fallback), classify, cache to
 * `cache/nat.json`, report through the injected `reportEndpoint` (PUT /endpoint) and apply the
 * returned peer endpoints with the §5.4 rule. Periodic refresh with ±10 % jitter; cycles never
 * overlap; everything with side effects is injected so the service runs on fakes in tests.
 */
import { networkInterfaces } from "node:os";
import * as v from "valibot";
import type { NativeAddon } from "../kernel/addon-api.ts";
import type { Logger } from "../log/logger.ts";
import { readJsonFile, writeJsonAtomic } from "../store/index.ts";
import { discoverMappings, type Mapping, type NatType, type ServerFailure } from "./classify.ts";
import { planPeerEndpoints, type EndpointPlan, type EndpointUpdate, type PeerView } from "./endpoints.ts";
import { resolveV4, type ResolveV4 } from "./stun-client.ts";
import { openStunTransport, type OpenedTransport } from "./transport.ts";

export { classifyMappings, discoverMappings, type Classification, type Mapping, type NatType } from "./classify.ts";
export { decideEndpoint, isIpv4Endpoint, keepaliveFor, planPeerEndpoints, ROAMING_WINDOW_MS, type PeerView } from "./endpoints.ts";
export { DgramTransport, openStunTransport, RawTransport, type StunTransport } from "./transport.ts";

/** `nat_traversal` settings (config.md §2.8) in ms. */
export interface NatConfig {
  enabled: boolean;
  stunServers: string[];
  refreshIntervalMs: number;
  timeoutMs: number;
}

/** Timers and time, injectable. */
export interface NatClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realClock: NatClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** Uniform [0, 1) from the crypto RNG (operations.md §8.5: a fleet started together spreads out). */
export function cryptoRandom(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]! / 2 ** 32;
}

/** IPv4 addresses on this host's interfaces (in the caller's network namespace). */
export function localIpv4Addresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === "IPv4") out.add(a.address);
  return out;
}

/** Dependencies of NatDiscovery. */
export interface NatDiscoveryOptions {
  config: NatConfig;
  /** `mesh.listen_port`. */
  listenPort: number;
  /** `<data_dir>/cache/nat.json`; null = no cache (tests). */
  cachePath: string | null;
  /** PUT /endpoint: returns the CP's `peer_endpoints`. Rejections count as "report pending". */
  reportEndpoint(publicEndpoint: string, natType: NatType): Promise<Array<{ peer_id: string; endpoint: string }>>;
  /** Configured peers with the kernel's current endpoint and last handshake. */
  peers(): Promise<PeerView[]>;
  /** Writes one peer endpoint to the device. */
  setPeerEndpoint(update: EndpointUpdate): Promise<void>;
  /** Addon for the raw socket; null = always the fallback. */
  addon?: NativeAddon | null;
  /** Transport factory override (tests); default openStunTransport(addon, listenPort). */
  openTransport?: (listenPort: number) => Promise<OpenedTransport>;
  resolve?: ResolveV4;
  localAddresses?: () => ReadonlySet<string>;
  clock?: NatClock;
  random?: () => number;
  /** Relative refresh jitter, default 0.1 (`schedule.jitter`). */
  jitter?: number;
  log?: Logger;
  /** Called after every cycle (journal `stun.discover`, systemd STATUS, keepalive re-apply). */
  onCycle?(result: NatCycle, state: NatState): void;
}

/** Everything `status --json`, the heartbeat and the `nat` indicator need. */
export interface NatState {
  enabled: boolean;
  /** Transport of the last cycle. */
  mode: "raw" | "fallback" | null;
  fallbackReason: string | null;
  /** null until the first successful discovery (or a cached one). */
  natType: NatType | null;
  publicEndpoint: string | null;
  mappings: Mapping[];
  failures: ServerFailure[];
  lastAttemptAt: number | null;
  lastSuccessAt: number | null;
  /** Why the last cycle failed; null after a success. */
  lastError: string | null;
  consecutiveFailures: number;
  reportedAt: number | null;
  /** The last result has not been accepted by the CP yet (offline): the next cycle re-sends. */
  reportPending: boolean;
  lastReportError: string | null;
  /** Endpoints this service wrote, by peer id (input of the §5.4 rule). */
  appliedEndpoints: Record<string, string>;
  /** `punched`: unchanged peers re-written after our own mapping changed (see apply()). */
  lastPlan: (Omit<EndpointPlan, "updates"> & { updated: string[]; punched: string[] }) | null;
  nextRefreshAt: number | null;
  /** The result shown was restored from cache/nat.json and not re-discovered yet. */
  fromCache: boolean;
}

/** Result of one cycle. */
export type NatCycle =
  | { ok: true; natType: NatType; publicEndpoint: string; changed: boolean; reported: boolean }
  | { ok: false; reason: string };

const CacheSchema = v.object({
  version: v.literal(1),
  public_endpoint: v.string(),
  nat_type: v.picklist(["none", "full_cone", "symmetric", "unknown"]),
  mode: v.picklist(["raw", "fallback"]),
  discovered_at: v.string(),
  mappings: v.array(v.object({ server: v.string(), serverIp: v.string(), serverPort: v.number(), ip: v.string(), port: v.number() })),
  applied_endpoints: v.record(v.string(), v.string()),
});

/** The `nat` health indicator (operations.md §5.1). */
export interface NatIndicator {
  name: "nat";
  status: "healthy" | "degraded";
  critical: false;
  message: string;
  details: { type: NatType | null; public_endpoint: string | null; last_success_age_s: number | null; mode: "raw" | "fallback" | null };
}

/** Pure: the indicator for `s` at `nowMs`. */
export function natIndicator(s: NatState, refreshIntervalMs: number, nowMs: number): NatIndicator {
  const age = s.lastSuccessAt === null ? null : Math.floor((nowMs - s.lastSuccessAt) / 1000);
  const details = { type: s.natType, public_endpoint: s.publicEndpoint, last_success_age_s: age, mode: s.mode };
  const degraded = (message: string): NatIndicator => ({ name: "nat", status: "degraded", critical: false, message, details });
  if (!s.enabled) return { name: "nat", status: "healthy", critical: false, message: "NAT traversal disabled", details };
  if (s.mode === "fallback") return degraded(`fallback mode: ${s.fallbackReason ?? "raw socket unavailable"}; NAT type unknown`);
  if (s.lastSuccessAt === null || nowMs - s.lastSuccessAt > 3 * refreshIntervalMs) {
    return degraded(`STUN discovery failed${s.lastError ? `: ${s.lastError}` : ""}`);
  }
  if (s.natType === "unknown") return degraded("NAT type unknown (fewer than two STUN servers answered)");
  return { name: "nat", status: "healthy", critical: false, message: `${s.natType} ${s.publicEndpoint}`, details };
}

/** The STUN service of one agent. */
export class NatDiscovery {
  private readonly clock: NatClock;
  private readonly random: () => number;
  private readonly jitter: number;
  private readonly st: NatState;
  private running: Promise<NatCycle> | null = null;
  private again = false;
  private timer: unknown = null;
  private started = false;
  private abort = new AbortController();

  constructor(private readonly o: NatDiscoveryOptions) {
    this.clock = o.clock ?? realClock;
    this.random = o.random ?? cryptoRandom;
    this.jitter = o.jitter ?? 0.1;
    if (!(this.jitter >= 0 && this.jitter < 1)) throw new RangeError(`NatDiscovery: jitter must be in [0, 1), got ${o.jitter}`);
    if (!(o.config.refreshIntervalMs > 0)) throw new RangeError(`NatDiscovery: refreshIntervalMs must be > 0, got ${o.config.refreshIntervalMs}`);
    if (!(o.config.timeoutMs > 0)) throw new RangeError(`NatDiscovery: timeoutMs must be > 0, got ${o.config.timeoutMs}`);
    if (!Number.isInteger(o.listenPort) || o.listenPort < 1 || o.listenPort > 65535) throw new RangeError(`NatDiscovery: bad listenPort ${o.listenPort}`);
    this.st = {
      enabled: o.config.enabled,
      mode: null,
      fallbackReason: null,
      natType: null,
      publicEndpoint: null,
      mappings: [],
      failures: [],
      lastAttemptAt: null,
      lastSuccessAt: null,
      lastError: null,
      consecutiveFailures: 0,
      reportedAt: null,
      reportPending: false,
      lastReportError: null,
      appliedEndpoints: {},
      lastPlan: null,
      nextRefreshAt: null,
      fromCache: false,
    };
    this.restore();
  }

  /** A copy of the current state (status --json, heartbeat, indicator). */
  state(): NatState {
    return structuredClone(this.st);
  }

  /** The heartbeat `nat` block; undefined until the first result (protocol.md §6.3). */
  heartbeatNat(): { public_endpoint: string; type: NatType } | undefined {
    if (this.st.publicEndpoint === null || this.st.natType === null) return undefined;
    return { public_endpoint: this.st.publicEndpoint, type: this.st.natType };
  }

  /** The `nat` health indicator now. */
  indicator(): NatIndicator {
    return natIndicator(this.st, this.o.config.refreshIntervalMs, this.clock.now());
  }

  /**
   * Runs one cycle now (the nat_discovery phase, §5.5 triggers). Concurrent calls share the
   * running cycle; a call arriving during a cycle queues exactly one more.
   * `deadlineMs` bounds the whole STUN part (the phase's 15 s).
   */
  discover(opts: { reason?: string; deadlineMs?: number } = {}): Promise<NatCycle> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    const run = this.cycle(opts)
      .then((r) => {
        try {
          this.o.onCycle?.(r, this.state());
        } catch (err) {
          this.log("warn", "onCycle callback failed", { error: (err as Error).message });
        }
        return r;
      })
      .finally(() => {
      this.running = null;
      if (this.again && !this.abort.signal.aborted) {
        this.again = false;
        void this.discover({ reason: "queued trigger" });
      }
    });
    this.running = run;
    return run;
  }

  /** Starts the periodic refresh; the first one follows one jittered interval (after the initial discovery). */
  start(): void {
    if (this.started || !this.st.enabled) return;
    this.started = true;
    this.schedule();
  }

  /** §5.5 extra triggers (route change, mesh.reconnect, offline → online): refresh now, then re-arm. */
  trigger(reason: string): Promise<NatCycle> {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    const p = this.discover({ reason });
    void p.finally(() => this.schedule());
    return p;
  }

  /** Stops the refresh loop and aborts a running cycle; resolves when it has ended. */
  async stop(): Promise<void> {
    this.started = false;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.st.nextRefreshAt = null;
    this.abort.abort();
    await this.running?.catch(() => undefined);
    this.abort = new AbortController();
  }

  private schedule(): void {
    if (!this.started) return;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    const delay = Math.round(this.o.config.refreshIntervalMs * (1 - this.jitter + 2 * this.jitter * this.random()));
    this.st.nextRefreshAt = this.clock.now() + delay;
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      void this.discover({ reason: "refresh" }).finally(() => this.schedule());
    }, delay);
  }

  private log(level: "debug" | "info" | "warn", msg: string, fields?: Record<string, unknown>): void {
    this.o.log?.[level](msg, fields);
  }

  private async cycle(opts: { reason?: string; deadlineMs?: number }): Promise<NatCycle> {
    if (!this.st.enabled) return { ok: false, reason: "NAT traversal disabled" };
    const now = () => this.clock.now();
    this.st.lastAttemptAt = now();
    let opened: OpenedTransport;
    try {
      opened = await (this.o.openTransport ?? ((port) => openStunTransport(this.o.addon ?? null, port)))(this.o.listenPort);
    } catch (err) {
      return this.failed(`cannot open STUN socket: ${(err as Error).message}`);
    }
    let c;
    try {
      c = await discoverMappings(this.o.config.stunServers, {
        transport: opened.transport,
        resolve: this.o.resolve ?? resolveV4,
        timeoutMs: this.o.config.timeoutMs,
        localAddresses: (this.o.localAddresses ?? localIpv4Addresses)(),
        listenPort: this.o.listenPort,
        now,
        signal: this.abort.signal,
        deadline: opts.deadlineMs === undefined ? undefined : now() + opts.deadlineMs,
      });
    } finally {
      await opened.transport.close().catch(() => undefined);
    }
    this.st.mode = opened.transport.mode;
    this.st.fallbackReason = opened.fallbackReason ?? null;
    this.st.failures = c.failures;
    if (!c.ok) return this.failed(`${c.reason} (${c.failures.map((f) => `${f.server}: ${f.reason}`).join("; ")})`);

    const changed = c.publicEndpoint !== this.st.publicEndpoint || c.natType !== this.st.natType;
    // Our mapping moved (NAT rebinding, or a new one since the cached result): see apply().
    const rebound = this.st.publicEndpoint !== null && c.publicEndpoint !== this.st.publicEndpoint;
    Object.assign(this.st, {
      natType: c.natType,
      publicEndpoint: c.publicEndpoint,
      mappings: c.mappings,
      lastSuccessAt: now(),
      lastError: null,
      consecutiveFailures: 0,
      fromCache: false,
    });
    this.log(changed ? "info" : "debug", "STUN discovery", {
      reason: opts.reason ?? "manual",
      nat_type: c.natType,
      public_endpoint: c.publicEndpoint,
      mode: this.st.mode,
      changed,
    });
    this.persist();
    const reported = await this.report(c.publicEndpoint, c.natType, rebound);
    return { ok: true, natType: c.natType, publicEndpoint: c.publicEndpoint, changed, reported };
  }

  private failed(reason: string): NatCycle {
    this.st.lastError = reason;
    this.st.consecutiveFailures++;
    this.log("warn", "STUN discovery failed", { reason, failures: this.st.consecutiveFailures });
    return { ok: false, reason };
  }

  /** PUT /endpoint (also when unchanged, §5.4), then apply the returned peer endpoints. */
  private async report(publicEndpoint: string, natType: NatType, rebound: boolean): Promise<boolean> {
    let returned;
    try {
      returned = await this.o.reportEndpoint(publicEndpoint, natType);
    } catch (err) {
      this.st.reportPending = true;
      this.st.lastReportError = (err as Error).message;
      this.log("warn", "endpoint report failed; retried with the next discovery", { error: this.st.lastReportError });
      return false;
    }
    this.st.reportPending = false;
    this.st.lastReportError = null;
    this.st.reportedAt = this.clock.now();
    await this.apply(returned, rebound);
    return true;
  }

  /**
   * `rebound`: our own mapping just changed. Peers still send to the old one (dead), and a NAT
   * with address/port-dependent filtering drops their packets to the new one until we have sent
   * to them from it. So the peers whose endpoint is already right ("unchanged") are written
   * again with that same endpoint: the write re-arms keepalive, and WireGuard sends to each of
   * them at once from the new mapping (hole punch) instead of after up to `keepalive` seconds.
   * Recording it as written is exact (kernel and CP agree); roamed peers are not touched.
   */
  private async apply(returned: Array<{ peer_id: string; endpoint: string }>, rebound = false): Promise<void> {
    let peers: PeerView[];
    try {
      peers = await this.o.peers();
    } catch (err) {
      this.log("warn", "cannot read peers to apply endpoints", { error: (err as Error).message });
      return;
    }
    const plan = planPeerEndpoints(returned, peers, new Map(Object.entries(this.st.appliedEndpoints)), this.clock.now());
    const updated: string[] = [];
    const punched: string[] = [];
    const writes = [...plan.updates];
    if (rebound) {
      const byId = new Map(peers.map((p) => [p.peerId, p]));
      for (const id of plan.unchanged) {
        const p = byId.get(id);
        if (p?.endpoint) writes.push({ peerId: id, publicKey: p.publicKey, endpoint: p.endpoint });
      }
    }
    const punch = new Set(writes.slice(plan.updates.length).map((u) => u.peerId));
    for (const u of writes) {
      try {
        await this.o.setPeerEndpoint(u);
        this.st.appliedEndpoints[u.peerId] = u.endpoint;
        (punch.has(u.peerId) ? punched : updated).push(u.peerId);
      } catch (err) {
        this.log("warn", "setting peer endpoint failed", { peer_id: u.peerId, endpoint: u.endpoint, error: (err as Error).message });
      }
    }
    // Forget peers that are gone so the map cannot grow without bound.
    const known = new Set(peers.map((p) => p.peerId));
    for (const id of Object.keys(this.st.appliedEndpoints)) if (!known.has(id)) delete this.st.appliedEndpoints[id];
    this.st.lastPlan = { updated, kept: plan.kept, unchanged: plan.unchanged, unknown: plan.unknown, invalid: plan.invalid, punched };
    if (updated.length || plan.kept.length || punched.length) {
      this.log("info", "peer endpoints from STUN exchange", { updated, kept_roamed: plan.kept, ignored_unknown: plan.unknown, punched });
    }
    this.persist();
  }

  private persist(): void {
    if (this.o.cachePath === null || this.st.publicEndpoint === null || this.st.natType === null || this.st.mode === null) return;
    try {
      writeJsonAtomic(this.o.cachePath, {
        version: 1,
        public_endpoint: this.st.publicEndpoint,
        nat_type: this.st.natType,
        mode: this.st.mode,
        discovered_at: new Date(this.st.lastSuccessAt ?? this.clock.now()).toISOString(),
        mappings: this.st.mappings,
        applied_endpoints: this.st.appliedEndpoints,
      } satisfies v.InferOutput<typeof CacheSchema>);
    } catch (err) {
      this.log("warn", "cannot write NAT cache", { path: this.o.cachePath, error: (err as Error).message });
    }
  }

  private restore(): void {
    if (this.o.cachePath === null) return;
    try {
      const c = readJsonFile(this.o.cachePath, CacheSchema);
      if (!c) return;
      const at = Date.parse(c.discovered_at);
      Object.assign(this.st, {
        natType: c.nat_type,
        publicEndpoint: c.public_endpoint,
        mode: c.mode,
        mappings: c.mappings,
        appliedEndpoints: { ...c.applied_endpoints },
        lastSuccessAt: Number.isFinite(at) ? at : null,
        fromCache: true,
      });
    } catch (err) {
      // A corrupt cache is only a lost hint: rediscovery replaces it.
      this.log("warn", "ignoring unreadable NAT cache", { path: this.o.cachePath, error: (err as Error).message });
    }
  }
}
