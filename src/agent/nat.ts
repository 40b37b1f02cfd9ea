/**
 * NAT discovery wiring (lifecycle.md §5, the NAT engineer's instructions): NatDiscovery with
 * the CP's PUT /endpoint as `reportEndpoint`, the kernel's peers (mapped to peer ids through
 * the cached peer set) as `peers`, and the mesh controller's hole-punching endpoint write as
 * `setPeerEndpoint`. Also the keepalive every peer gets (`keepaliveFor`) and the status view.
 */
import { join } from "node:path";
import type { Config } from "../config/index.ts";
import type { CpApi } from "../controlplane/api.ts";
import type { NativeAddon } from "../kernel/addon-api.ts";
import type { Logger } from "../log/index.ts";
import type { MeshController } from "../mesh/controller.ts";
import { keepaliveFor, NatDiscovery, type NatCycle, type NatDiscoveryOptions, type NatState } from "../nat/index.ts";

/** NatDiscovery's `config` from `nat_traversal` (durations are ms already). */
export function natConfig(c: Config): NatDiscoveryOptions["config"] {
  const n = c.nat_traversal;
  return { enabled: n.enabled, stunServers: [...n.stun_servers], refreshIntervalMs: n.refresh_interval, timeoutMs: n.timeout };
}

/**
 * Persistent keepalive for every peer, in seconds. With NAT traversal on, `keepaliveFor` (a NAT
 * in the path, or not known yet, turns a configured 0 into 25 s). With it off nothing is known
 * about the path and the configured value stands (lifecycle.md §4.2 step 6).
 */
export function peerKeepaliveSec(c: Config, nat: NatDiscovery | undefined): number {
  const configured = Math.round(c.mesh.persistent_keepalive / 1000);
  if (!c.nat_traversal.enabled || !nat) return configured;
  return keepaliveFor(nat.state().natType, configured);
}

/** Collaborators of {@link createNatDiscovery}. */
export interface NatWiring {
  readonly config: Config;
  readonly addon: NativeAddon | null;
  readonly api: CpApi;
  readonly nodeId: () => string;
  readonly mesh: MeshController;
  /** Keepalive to end each endpoint write with (the same value reconcile uses). */
  readonly keepaliveSec: () => number;
  readonly log: Logger;
  /** A CP call succeeded (connectivity). */
  readonly onCpSuccess: () => void;
  readonly onCycle?: (r: NatCycle, s: NatState) => void;
  /** Test seams: transport, resolver, clock, local addresses. */
  readonly overrides?: Partial<NatDiscoveryOptions>;
}

/** Builds the NatDiscovery of one agent. */
export function createNatDiscovery(w: NatWiring): NatDiscovery {
  const c = w.config;
  return new NatDiscovery({
    config: natConfig(c),
    listenPort: c.mesh.listen_port,
    cachePath: join(c.data_dir, "cache", "nat.json"),
    addon: w.addon,
    jitter: c.schedule.jitter,
    log: w.log,
    async reportEndpoint(public_endpoint, nat_type) {
      const r = await w.api.putEndpoint(w.nodeId(), { public_endpoint, nat_type });
      if (!r.ok) throw r.error;
      w.onCpSuccess();
      return r.value.peer_endpoints;
    },
    peers: () => w.mesh.natPeers(),
    setPeerEndpoint: (u) => w.mesh.setPeerEndpoint({ ...u, keepaliveSec: w.keepaliveSec() }),
    ...(w.onCycle ? { onCycle: w.onCycle } : {}),
    ...w.overrides,
  });
}

/** `status --json` `nat` block. */
export interface NatStatus {
  enabled: boolean;
  type: string;
  public_endpoint: string | null;
  mode: "raw" | "fallback" | null;
  last_success_age_s: number | null;
  report_pending: boolean;
  last_error: string | null;
}

/** The status view of the NAT state (type `unknown` until a result exists). */
export function natStatus(s: NatState | undefined, enabled: boolean, nowMs: number): NatStatus {
  if (!s) return { enabled, type: "unknown", public_endpoint: null, mode: null, last_success_age_s: null, report_pending: false, last_error: null };
  return {
    enabled,
    type: s.natType ?? "unknown",
    public_endpoint: s.publicEndpoint,
    mode: s.mode,
    last_success_age_s: s.lastSuccessAt === null ? null : Math.max(0, Math.floor((nowMs - s.lastSuccessAt) / 1000)),
    report_pending: s.reportPending,
    last_error: s.lastError ?? s.lastReportError,
  };
}
