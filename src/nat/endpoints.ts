/**
 * Applying the peer endpoints the CP returns for PUT /endpoint (lifecycle.md §5.4), and the
 * keepalive rule for a NAT in the path. The decisions are pure functions; the I/O is injected.
 */
import type { NatType } from "../controlplane/types.ts";

/** WireGuard roaming window of §5.4. */
export const ROAMING_WINDOW_MS = 180_000;
/** Default `mesh.persistent_keepalive` (config.md §2.4), seconds. */
export const DEFAULT_KEEPALIVE_S = 25;

/** What to do with one returned endpoint. */
export type EndpointDecision =
  /** Write it to the device. */
  | "set"
  /** Device already has it. */
  | "unchanged"
  /** WireGuard roamed to a working path: leave the device alone. */
  | "keep_roamed";

/** Facts for {@link decideEndpoint}. */
export interface EndpointFacts {
  /** From the CP. */
  desired: string;
  /** The kernel's current endpoint; null when none. */
  current: string | null;
  /** Unix ms of the peer's last completed handshake; null when never. */
  lastHandshakeMs: number | null;
  /**
   * The endpoint plexd itself last wrote for this peer, when known. If the kernel still holds
   * exactly that, WireGuard has not roamed anywhere, so a recent handshake only shows that the
   * OLD path worked — the CP's newer mapping wins (NAT rebinding). Undefined = not known (e.g.
   * after a restart): the plain §5.4 rule applies.
   */
  lastApplied?: string | null;
  nowMs: number;
  windowMs?: number;
}

/**
 * §5.4: set the endpoint unless the kernel's current endpoint differs AND the peer completed a
 * handshake within the last 180 s (roaming found a working path) — refined by `lastApplied`
 * (see {@link EndpointFacts.lastApplied}, docs/decisions.md "NAT traversal").
 */
export function decideEndpoint(f: EndpointFacts): EndpointDecision {
  if (f.current === f.desired) return "unchanged";
  if (f.current === null) return "set";
  const roamed = f.lastApplied === undefined || f.lastApplied === null ? true : f.current !== f.lastApplied;
  const recent = f.lastHandshakeMs !== null && f.nowMs - f.lastHandshakeMs <= (f.windowMs ?? ROAMING_WINDOW_MS);
  return roamed && recent ? "keep_roamed" : "set";
}

/** A configured peer as the kernel sees it now. */
export interface PeerView {
  /** CP node id of the peer. */
  peerId: string;
  publicKey: string;
  endpoint: string | null;
  lastHandshakeMs: number | null;
}

/** One planned write. */
export interface EndpointUpdate {
  peerId: string;
  publicKey: string;
  endpoint: string;
}

/** Result of {@link planPeerEndpoints}. */
export interface EndpointPlan {
  updates: EndpointUpdate[];
  kept: string[];
  unchanged: string[];
  /** peer_ids not configured here (ignored, §5.4). */
  unknown: string[];
  /** Entries with an unusable endpoint (empty or not ip:port). */
  invalid: string[];
}

const ENDPOINT = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3}):(\d{1,5})$/;

/** True for an IPv4 `ip:port` with octets ≤ 255 and port 1–65535. */
export function isIpv4Endpoint(s: string): boolean {
  const m = ENDPOINT.exec(s);
  if (!m) return false;
  const port = Number(m[5]);
  return m.slice(1, 5).every((o) => Number(o) <= 255) && port >= 1 && port <= 65535;
}

/** Pure: decides every returned `{peer_id, endpoint}` against the kernel's peers. */
export function planPeerEndpoints(
  returned: ReadonlyArray<{ peer_id: string; endpoint: string }>,
  peers: readonly PeerView[],
  lastApplied: ReadonlyMap<string, string>,
  nowMs: number,
): EndpointPlan {
  const byId = new Map(peers.map((p) => [p.peerId, p]));
  const plan: EndpointPlan = { updates: [], kept: [], unchanged: [], unknown: [], invalid: [] };
  for (const r of returned) {
    const p = byId.get(r.peer_id);
    if (!p) {
      plan.unknown.push(r.peer_id);
      continue;
    }
    if (!isIpv4Endpoint(r.endpoint)) {
      plan.invalid.push(r.peer_id);
      continue;
    }
    const d = decideEndpoint({
      desired: r.endpoint,
      current: p.endpoint,
      lastHandshakeMs: p.lastHandshakeMs,
      lastApplied: lastApplied.get(p.peerId),
      nowMs,
    });
    if (d === "set") plan.updates.push({ peerId: p.peerId, publicKey: p.publicKey, endpoint: r.endpoint });
    else if (d === "keep_roamed") plan.kept.push(p.peerId);
    else plan.unchanged.push(p.peerId);
  }
  return plan;
}

/**
 * Persistent keepalive to configure on every peer. A NAT in the path (`nat_type` ≠ `none`)
 * needs it, so a configured 0 is replaced by the default 25 s there; without a NAT the
 * configured value stands (0 = off). Before the first discovery (`null`) a NAT is assumed.
 */
export function keepaliveFor(natType: NatType | null, configuredS: number): number {
  if (natType === "none") return configuredS;
  return configuredS > 0 ? configuredS : DEFAULT_KEEPALIVE_S;
}
