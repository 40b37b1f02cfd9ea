/**
 * Pure WireGuard diff: actual device (read back) × whole desired device → the minimal write
 * plus a report of what it changes. Shared by the native and the userspace backend and by the
 * fake, so all three agree on what "equal" means (lifecycle.md §9.2 table, row "peers"):
 * by public key; allowed IPs as sets of normalised CIDRs; PSK; endpoint (subject to the roaming
 * rule, §5.4); keepalive. Peer operations are ordered removals, then updates, then additions
 * (§4.2 step 6), so an allowed IP moving between peers never lands on two at once.
 */
import { normaliseCidr, normaliseEndpoint } from "./cidr.ts";
import { KernelError } from "./kernel-error.ts";
import { isBase64Key, publicKeyOf } from "./keys.ts";
import type {
  ApplyOptions,
  DesiredDevice,
  DesiredPeer,
  DeviceChanges,
  EndpointKeepRule,
  PeerField,
  WgDevice,
  WgPeer,
  WgSet,
  WgSetPeer,
} from "./types.ts";

/** The write to perform and the change report; `set.peers` is empty when nothing changes. */
export interface DevicePlan {
  set: WgSet;
  changes: DeviceChanges;
}

/** Default window of the roaming rule: a handshake this recent means roaming found a path. */
export const ROAMING_WINDOW_MS = 180_000;

/**
 * What plexd itself last wrote as a peer's endpoint, by public key: a string when known, null /
 * undefined when not (after a restart without cache, or written by another path).
 */
export type LastWrittenEndpoint = (publicKey: string) => string | null | undefined;

/**
 * lifecycle.md §5.4: keep the device's endpoint when it differs from the desired one and the
 * peer completed a handshake within `windowMs` — WireGuard roaming already found a working path.
 *
 * Refined by `lastWritten` exactly like the NAT path's `decideEndpoint` (src/nat/endpoints.ts,
 * docs/decisions.md "NAT traversal"): when the kernel still holds the endpoint plexd itself last
 * wrote, WireGuard has not roamed anywhere — a recent handshake only proves the OLD path worked
 * (e.g. just before a NAT rebinding) — so the desired endpoint is set. Unknown → the literal rule.
 */
export function keepRoamedEndpoint(windowMs: number = ROAMING_WINDOW_MS, lastWritten?: LastWrittenEndpoint): EndpointKeepRule {
  if (!Number.isFinite(windowMs) || windowMs < 0) {
    throw new KernelError("INVALID_ARGUMENT", `keepRoamedEndpoint: windowMs must be ≥ 0, got ${windowMs}`);
  }
  return (actual, _desired, nowMs) => {
    if (actual.endpoint === null || actual.lastHandshakeMs === null || nowMs - actual.lastHandshakeMs > windowMs) return false;
    const last = lastWritten?.(actual.publicKey);
    if (last !== undefined && last !== null && sameEndpoint(last, actual.endpoint)) return false;
    return true;
  };
}

function sameEndpoint(a: string, b: string): boolean {
  try {
    return normaliseEndpoint(a) === normaliseEndpoint(b);
  } catch {
    return a === b;
  }
}

/** A desired peer validated and normalised (CIDRs deduplicated, endpoint canonical). */
export interface NormPeer {
  publicKey: string;
  presharedKey: string | null;
  endpoint: string | null;
  allowedIps: string[];
  keepalive: number;
}

/**
 * A desired device validated and normalised once (keys, CIDRs, endpoints, the device's own
 * public key): `applyDevice` diffs twice against it (plan and read-back verification).
 */
export interface PreparedDevice {
  readonly desired: DesiredDevice;
  readonly peers: readonly NormPeer[];
}

/**
 * Validates and normalises one desired peer as the diff sees it.
 * @throws KernelError INVALID_ARGUMENT for a bad key, keepalive or CIDR
 */
export function normaliseDesiredPeer(p: DesiredPeer): NormPeer {
  if (!isBase64Key(p.publicKey)) throw new KernelError("INVALID_ARGUMENT", `peer public key is not base64: ${p.publicKey}`);
  const psk = p.presharedKey ?? null;
  if (psk !== null && !isBase64Key(psk)) throw new KernelError("INVALID_ARGUMENT", `peer ${p.publicKey}: bad preshared key`);
  const keepalive = p.persistentKeepalive ?? 0;
  if (!Number.isInteger(keepalive) || keepalive < 0 || keepalive > 65535) {
    throw new KernelError("INVALID_ARGUMENT", `peer ${p.publicKey}: persistentKeepalive ${keepalive} out of range`);
  }
  let allowedIps: string[];
  try {
    if (p.allowedIps.length === 1) allowedIps = [normaliseCidr(p.allowedIps[0]!)];
    else allowedIps = [...new Set(p.allowedIps.map(normaliseCidr))];
  } catch (cause) {
    throw new KernelError("INVALID_ARGUMENT", `peer ${p.publicKey}: ${(cause as Error).message}`, { cause });
  }
  return {
    publicKey: p.publicKey,
    presharedKey: psk,
    endpoint: p.endpoint ? normaliseEndpoint(p.endpoint) : null,
    allowedIps,
    keepalive,
  };
}

/** Same members, any order; `have` as read back (already normalised by every driver). */
function sameIps(want: readonly string[], have: readonly string[]): boolean {
  if (want.length === 1 && have.length === 1) return want[0] === have[0] || want[0] === normaliseCidr(have[0]!);
  const h = new Set(have.map(normaliseCidr));
  if (want.length !== h.size) return false;
  for (const x of want) if (!h.has(x)) return false;
  return true;
}

// The device's own public key (X25519) is derived for every prepare; the key rarely changes.
let lastPrivate = "";
let lastPublic = "";
function selfKeyOf(priv: string): string {
  if (priv !== lastPrivate) {
    lastPublic = publicKeyOf(priv);
    lastPrivate = priv;
  }
  return lastPublic;
}

/**
 * Validates and normalises a desired device for {@link diffDevice}. Throws KernelError
 * INVALID_ARGUMENT for desired states that could never be read back equal.
 */
export function prepareDesired(desired: DesiredDevice): PreparedDevice {
  if (!isBase64Key(desired.privateKey)) throw new KernelError("INVALID_ARGUMENT", "private key is not base64");
  for (const [name, v, max] of [["listenPort", desired.listenPort, 65535], ["fwmark", desired.fwmark, 0xffffffff]] as const) {
    if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > max)) {
      throw new KernelError("INVALID_ARGUMENT", `${name} ${v} out of range`);
    }
  }
  const self = selfKeyOf(desired.privateKey);
  const peers = desired.peers.map(normaliseDesiredPeer);
  const seenKeys = new Set<string>();
  const owner = new Map<string, string>();
  for (const p of peers) {
    // Both would make the read-back differ forever: WireGuard ignores a peer with the device's
    // own key, and an allowed IP belongs to one peer only (the last one wins).
    if (p.publicKey === self) throw new KernelError("INVALID_ARGUMENT", `peer ${p.publicKey} is the device itself`);
    if (seenKeys.has(p.publicKey)) throw new KernelError("INVALID_ARGUMENT", `duplicate peer ${p.publicKey}`);
    seenKeys.add(p.publicKey);
    for (const c of p.allowedIps) {
      const prev = owner.get(c);
      if (prev !== undefined) throw new KernelError("INVALID_ARGUMENT", `allowed IP ${c} on two peers: ${prev}, ${p.publicKey}`);
      owner.set(c, p.publicKey);
    }
  }
  return { desired, peers };
}

const isPrepared = (d: DesiredDevice | PreparedDevice): d is PreparedDevice => "desired" in d;

/**
 * Computes the minimal write turning `actual` (null = empty device) into `desired` (a desired
 * device, or one already prepared with {@link prepareDesired}).
 * Throws KernelError INVALID_ARGUMENT for desired states that could never be read back equal.
 */
export function diffDevice(actual: WgDevice | null, target: DesiredDevice | PreparedDevice, opts: ApplyOptions = {}): DevicePlan {
  const prepared = isPrepared(target) ? target : prepareDesired(target);
  const desired = prepared.desired;
  const want = prepared.peers;
  const now = (opts.now ?? Date.now)();
  const set: WgSet = { peers: [] };
  const changes: DeviceChanges = {
    privateKey: false,
    listenPort: false,
    fwmark: false,
    added: [],
    removed: [],
    updated: [],
    keptEndpoints: [],
    empty: true,
  };
  if (actual?.privateKey !== desired.privateKey) {
    set.privateKey = desired.privateKey;
    changes.privateKey = true;
  }
  if (desired.listenPort !== undefined && desired.listenPort !== (actual?.listenPort ?? 0)) {
    set.listenPort = desired.listenPort;
    changes.listenPort = true;
  }
  if (desired.fwmark !== undefined && desired.fwmark !== (actual?.fwmark ?? 0)) {
    set.fwmark = desired.fwmark;
    changes.fwmark = true;
  }

  const have = actual?.peers ?? [];
  const haveByKey = new Map<string, WgPeer>();
  for (const p of have) haveByKey.set(p.publicKey, p);
  const removals: WgSetPeer[] = [];
  const updates: WgSetPeer[] = [];
  const additions: WgSetPeer[] = [];

  // Walk the desired peers first, ticking off what the device has; the rest are removals.
  const matched = new Set<string>();
  for (const w of want) {
    const a = haveByKey.get(w.publicKey);
    if (!a) {
      const add: WgSetPeer = { publicKey: w.publicKey };
      if (w.presharedKey !== null) add.presharedKey = w.presharedKey;
      if (w.endpoint !== null) add.endpoint = w.endpoint;
      if (w.keepalive !== 0) add.persistentKeepalive = w.keepalive;
      add.replaceAllowedIps = true;
      add.allowedIps = w.allowedIps;
      additions.push(add);
      changes.added.push(w.publicKey);
      continue;
    }
    matched.add(w.publicKey);
    let fields: PeerField[] | null = null;
    let upd: WgSetPeer | null = null;
    const field = (f: PeerField): WgSetPeer => {
      (fields ??= []).push(f);
      return (upd ??= { publicKey: w.publicKey, updateOnly: true });
    };
    if (w.endpoint !== null && a.endpoint !== w.endpoint) {
      const cur = a.endpoint === null ? null : normaliseEndpoint(a.endpoint);
      if (cur !== w.endpoint) {
        if (opts.keepEndpoint?.(a, w.endpoint, now)) changes.keptEndpoints.push(w.publicKey);
        else field("endpoint").endpoint = w.endpoint;
      }
    }
    if ((a.presharedKey ?? null) !== w.presharedKey) field("psk").presharedKey = w.presharedKey;
    if (!sameIps(w.allowedIps, a.allowedIps)) {
      const u = field("allowed_ips");
      u.replaceAllowedIps = true;
      u.allowedIps = w.allowedIps;
    }
    if (a.persistentKeepalive !== w.keepalive) field("keepalive").persistentKeepalive = w.keepalive;
    if (upd !== null && fields !== null) {
      updates.push(upd);
      changes.updated.push({ publicKey: w.publicKey, fields });
    }
  }
  if (matched.size !== have.length) {
    for (const a of have) {
      if (!matched.has(a.publicKey)) {
        removals.push({ publicKey: a.publicKey, remove: true });
        changes.removed.push(a.publicKey);
      }
    }
  }
  set.peers = removals.length === 0 && updates.length === 0 ? additions : [...removals, ...updates, ...additions];
  changes.empty = set.peers.length === 0 && !changes.privateKey && !changes.listenPort && !changes.fwmark;
  return { set, changes };
}
