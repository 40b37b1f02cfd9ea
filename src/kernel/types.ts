/**
 * The one kernel-facing interface the rest of the agent uses (architecture.md: "kernel/ is the
 * only place that knows netlink, UAPI or nftables exist"). Three implementations: native
 * (WireGuard genetlink through the addon), userspace (wireguard-go UAPI) and fake (tests).
 * Links, addresses and routes go through the addon's rtnetlink for both real backends.
 *
 * Keys are base64 strings (44 chars) everywhere in this interface.
 */

/** Which WireGuard implementation a Kernel drives. */
export type KernelBackend = "kernel" | "userspace" | "fake";

/** Minimal structured logger; the kernel layer never decides what is worth alerting on. */
export interface KernelLog {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** A peer as read back from the device. */
export interface WgPeer {
  publicKey: string;
  /** null when the peer has no preshared key (all-zero on the wire). */
  presharedKey: string | null;
  /** "ip:port" / "[v6]:port"; null when unknown. */
  endpoint: string | null;
  /** Normalised CIDRs, in device order. */
  allowedIps: string[];
  /** Seconds; 0 = off. */
  persistentKeepalive: number;
  /** Unix time in ms of the last completed handshake; null when none. */
  lastHandshakeMs: number | null;
  rxBytes: number;
  txBytes: number;
}

/** A WireGuard device as read back. */
export interface WgDevice {
  ifname: string;
  privateKey: string | null;
  publicKey: string | null;
  /** 0 when not listening yet. */
  listenPort: number;
  fwmark: number;
  peers: WgPeer[];
}

/** A peer as the agent wants it. */
export interface DesiredPeer {
  publicKey: string;
  /** Absent or null = no PSK (an existing one is removed). */
  presharedKey?: string | null;
  /** Absent, null or "" = leave the device's endpoint alone (lifecycle.md §4.2 step 6). */
  endpoint?: string | null;
  allowedIps: string[];
  /** Seconds; absent = 0 (off). */
  persistentKeepalive?: number;
}

/** The WHOLE desired device; peers not listed are removed. */
export interface DesiredDevice {
  ifname: string;
  privateKey: string;
  /** Absent = leave alone (0 lets the implementation pick a port). */
  listenPort?: number;
  /** Absent = leave alone. */
  fwmark?: number;
  peers: DesiredPeer[];
}

/** Changed peer fields, named as in the drift report (lifecycle.md §9.3). */
export type PeerField = "endpoint" | "psk" | "allowed_ips" | "keepalive";

/** What an apply changed (or would change). */
export interface DeviceChanges {
  privateKey: boolean;
  listenPort: boolean;
  fwmark: boolean;
  /** Public keys. */
  added: string[];
  removed: string[];
  updated: Array<{ publicKey: string; fields: PeerField[] }>;
  /** Peers whose desired endpoint was deliberately not applied (roaming rule). */
  keptEndpoints: string[];
  /** True when nothing was (or needs to be) written. */
  empty: boolean;
}

/**
 * Endpoint keep hook: return true to leave the device's current endpoint in place although the
 * desired one differs. See `keepRoamedEndpoint` in wg-diff.ts for the lifecycle.md §5.4 rule.
 */
export type EndpointKeepRule = (actual: WgPeer, desiredEndpoint: string, nowMs: number) => boolean;

/** Options of `applyDevice` / `diffDevice`. */
export interface ApplyOptions {
  keepEndpoint?: EndpointKeepRule;
  /** Clock for the keep rule; default Date.now. */
  now?: () => number;
}

/**
 * A low-level WireGuard write, mirroring UAPI `set=1` / netlink SET_DEVICE: every field optional,
 * absent = leave alone. Produced by the diff, consumed by both backends.
 */
export interface WgSet {
  /** null = clear the private key. */
  privateKey?: string | null;
  listenPort?: number;
  fwmark?: number;
  replacePeers?: boolean;
  peers: WgSetPeer[];
}

/** One peer section of a `WgSet`. */
export interface WgSetPeer {
  publicKey: string;
  remove?: boolean;
  updateOnly?: boolean;
  /** null = remove the PSK. */
  presharedKey?: string | null;
  endpoint?: string;
  persistentKeepalive?: number;
  replaceAllowedIps?: boolean;
  allowedIps?: string[];
}

/** Options of `ensureInterface`. */
export interface InterfaceOptions {
  mtu: number;
}

/** A link as read back, with its addresses. */
export interface InterfaceState {
  index: number;
  name: string;
  /** "wireguard" (kernel backend), "tun" (wireguard-go), … */
  kind: string;
  mtu: number;
  up: boolean;
  /** Normalised "addr/prefixlen", IPv6 link-local excluded. */
  addresses: string[];
}

/** A route on the mesh interface (main table). */
export interface KernelRoute {
  /** CIDR. */
  dst: string;
  src?: string;
}

/** What a declarative set call added and removed (normalised). */
export interface SetResult {
  added: string[];
  removed: string[];
}

/** What `ensureInterface` did. */
export type EnsureResult = "created" | "adopted";

/** The agent's single kernel seam. */
export interface Kernel {
  readonly backend: KernelBackend;
  // nftables is not part of this seam: the policy Enforcer's FirewallTarget (policy/target.ts,
  // over kernel/nft.ts NftTable) is the one path that writes `inet plexd`.

  /** Reads the WireGuard device; null when the interface (or its UAPI socket) is absent. */
  readDevice(ifname: string): Promise<WgDevice | null>;
  /**
   * Makes the device equal to `desired` with the minimal change, computed against a fresh
   * read-back (never against the previous call). Verifies with a second read-back after
   * writing. A device that already matches costs one read.
   */
  applyDevice(desired: DesiredDevice, opts?: ApplyOptions): Promise<DeviceChanges>;

  /**
   * Creates (or adopts) the mesh link, sets MTU and brings it up. Kernel backend: a link of
   * kind wireguard (a link of another kind with that name is an error). Userspace backend:
   * starts the supervised wireguard-go, which creates the TUN link.
   */
  ensureInterface(name: string, opts: InterfaceOptions): Promise<EnsureResult>;
  /** Removes the link (userspace: stops wireguard-go). Absent is not an error. */
  deleteInterface(name: string): Promise<void>;
  /** Makes the link's addresses equal to `cidrs` (IPv6 link-local is left alone). */
  setAddresses(ifname: string, cidrs: string[]): Promise<SetResult>;
  /** Makes the main-table routes via `ifname` equal to `routes` (compared by dst). */
  setRoutes(ifname: string, routes: KernelRoute[]): Promise<SetResult>;
  /** Reads the link; null when absent. */
  readInterface(ifname: string): Promise<InterfaceState | null>;

  /**
   * One update-only write of the given peer sections, in order (a peer that is not on the
   * device is not added). For targeted writes outside the whole-device diff: the NAT endpoint
   * refresh with its keepalive hole punch (docs/decisions.md "NAT traversal").
   */
  updatePeers(ifname: string, peers: WgSetPeer[]): Promise<void>;

  /**
   * One write of the given peer sections exactly as given — add (no `updateOnly`),
   * update-only, or `remove` — in order, without reading the device first or back afterwards.
   * The event fast path (docs/decisions.md "Mesh apply fast path"): the caller computed the
   * delta against its own model of what it last applied; drift between that model and the
   * device is found by the periodic whole-device {@link applyDevice}. Values are validated like
   * every write. UAPI `set=1` is not atomic: on failure the device may hold a prefix of the
   * sections, so a caller must fall back to `applyDevice`. An empty list writes nothing.
   */
  applyPeers(ifname: string, peers: WgSetPeer[]): Promise<void>;

  /** Stops supervised processes and releases resources; idempotent. */
  close(): Promise<void>;
}
