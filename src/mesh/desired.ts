/**
 * The desired kernel state of the mesh (lifecycle.md §4.2): interface, key, port, address,
 * MTU, routes and the peer set = CP peers ∩ policy visibility − self. Pure.
 */
import type { Peer, Policy } from "../controlplane/schemas.ts";
import type { DesiredDevice, DesiredPeer, KernelRoute } from "../kernel/types.ts";
import { visiblePeers } from "../policy/visibility.ts";

/** The mesh range; one covering route for it (lifecycle.md §4.2 step 5, **Decision:**). */
export const MESH_CIDR = "10.100.0.0/16";

/** Settings that shape the mesh (from config + identity). */
export interface MeshSettings {
  readonly ifname: string;
  readonly listenPort: number;
  readonly mtu: number;
  /** Seconds; 0 disables. */
  readonly keepaliveSec: number;
  readonly policyDefault: "allow" | "deny";
  /** config `policy.enabled`; false → every peer visible (nothing to enforce). */
  readonly policyEnabled: boolean;
}

/** Who we are. */
export interface MeshSelf {
  readonly nodeId: string;
  readonly meshIp: string;
  readonly privateKey: string;
  readonly publicKey: string;
}

/** The whole desired mesh. */
export interface MeshDesired {
  readonly ifname: string;
  readonly mtu: number;
  readonly addresses: string[];
  readonly routes: KernelRoute[];
  readonly device: DesiredDevice;
  /** Visible peers by id (the ones on the device). */
  readonly visible: ReadonlyMap<string, Peer>;
  /** Public key → peer id for every known peer (for naming corrections). */
  readonly idByKey: ReadonlyMap<string, string>;
  /** Policy rules skipped for naming addresses outside the mesh. */
  readonly skippedRules: Array<{ policyId: string; index: number; reason: string }>;
}

/** True for a CIDR inside the mesh range (covered by the one mesh route). */
export const inMesh = (cidr: string): boolean => {
  const [ip = "", plen = "32"] = cidr.split("/");
  const o = ip.split(".").map(Number);
  return o[0] === 10 && o[1] === 100 && Number(plen) >= 16;
};

/** A CP peer that can be configured at all: not ourselves (by id or key), has a key. */
export function isCandidate(self: MeshSelf, p: Peer): boolean {
  return p.id !== self.nodeId && p.public_key !== self.publicKey && p.public_key !== "";
}

/**
 * The device entry of one visible peer (lifecycle.md §4.2 step 6). Keepalive only once the
 * peer's endpoint is known (docs/decisions.md "Mesh apply"): a keepalive to a peer without an
 * endpoint cannot be sent, and wireguard-go counts the failed attempt as a handshake sent, so
 * the real first handshake would wait its 5 s retry once the endpoint arrives.
 */
export function desiredPeerOf(settings: MeshSettings, p: Peer): DesiredPeer {
  return {
    publicKey: p.public_key,
    presharedKey: p.psk === "" ? null : p.psk,
    ...(p.endpoint !== "" ? { endpoint: p.endpoint } : {}),
    allowedIps: p.allowed_ips.length > 0 ? [...p.allowed_ips] : [`${p.mesh_ip}/32`],
    persistentKeepalive: p.endpoint !== "" ? settings.keepaliveSec : 0,
  };
}

/**
 * Visibility of ONE peer (§4.3): it depends only on that peer, self and the policies, which is
 * what lets an event change one peer without recomputing the others.
 */
export function peerVisible(settings: MeshSettings, self: MeshSelf, p: Peer, policies: readonly Policy[]): boolean {
  return visiblePeers({
    self: { id: self.nodeId, meshIp: self.meshIp },
    peers: [{ id: p.id, meshIp: p.mesh_ip }],
    policies,
    defaultAction: settings.policyEnabled ? settings.policyDefault : "allow",
  }).visible.has(p.id);
}

/** The route list: the mesh route, then one per extra (bridge) destination, sorted. */
export function meshRoutes(self: MeshSelf, extra: Iterable<string>): KernelRoute[] {
  const routes: KernelRoute[] = [{ dst: MESH_CIDR, src: self.meshIp }];
  for (const dst of [...extra].sort()) routes.push({ dst });
  return routes;
}

/** Computes the desired mesh from settings, identity, CP peers and policies. */
export function computeDesired(settings: MeshSettings, self: MeshSelf, peers: readonly Peer[], policies: readonly Policy[]): MeshDesired {
  const others = peers.filter((p) => isCandidate(self, p));
  const vis = visiblePeers({
    self: { id: self.nodeId, meshIp: self.meshIp },
    peers: others.map((p) => ({ id: p.id, meshIp: p.mesh_ip })),
    policies,
    defaultAction: settings.policyEnabled ? settings.policyDefault : "allow",
  });
  const visible = new Map<string, Peer>();
  const seenKeys = new Set<string>();
  const idByKey = new Map<string, string>();
  for (const p of others) {
    idByKey.set(p.public_key, p.id);
    if (!vis.visible.has(p.id) || seenKeys.has(p.public_key) || visible.has(p.id)) continue;
    seenKeys.add(p.public_key);
    visible.set(p.id, p);
  }
  const devicePeers: DesiredPeer[] = [...visible.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map((p) => desiredPeerOf(settings, p));
  const extra = new Set<string>();
  for (const p of devicePeers) for (const a of p.allowedIps) if (!inMesh(a)) extra.add(a);
  return {
    ifname: settings.ifname,
    mtu: settings.mtu,
    addresses: [`${self.meshIp}/32`],
    routes: meshRoutes(self, extra),
    device: { ifname: settings.ifname, privateKey: self.privateKey, listenPort: settings.listenPort, peers: devicePeers },
    visible,
    idByKey,
    skippedRules: vis.skipped,
  };
}
