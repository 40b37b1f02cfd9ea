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

interface NormPeer {
  publicKey: string;
  presharedKey: string | null;
  endpoint: string | null;
  allowedIps: string[];
  keepalive: number;
}

function normaliseDesiredPeer(p: DesiredPeer): NormPeer {
  if (!isBase64Key(p.publicKey)) throw new KernelError("INVALID_ARGUMENT", `peer public key is not base64: ${p.publicKey}`);
  const psk = p.presharedKey ?? null;
  if (psk !== null && !isBase64Key(psk)) throw new KernelError("INVALID_ARGUMENT", `peer ${p.publicKey}: bad preshared key`);
  const keepalive = p.persistentKeepalive ?? 0;
  if (!Number.isInteger(keepalive) || keepalive < 0 || keepalive > 65535) {
    throw new KernelError("INVALID_ARGUMENT", `peer ${p.publicKey}: persistentKeepalive ${keepalive} out of range`);
  }
  let allowedIps: string[];
  try {
    allowedIps = [...new Set(p.allowedIps.map(normaliseCidr))];
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

function sameSet(a: readonly string[], b: ReadonlySet<string>): boolean {
  if (a.length !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

function checkDesired(desired: DesiredDevice): NormPeer[] {
  if (!isBase64Key(desired.privateKey)) throw new KernelError("INVALID_ARGUMENT", "private key is not base64");
  for (const [name, v, max] of [["listenPort", desired.listenPort, 65535], ["fwmark", desired.fwmark, 0xffffffff]] as const) {
    if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > max)) {
      throw new KernelError("INVALID_ARGUMENT", `${name} ${v} out of range`);
    }
  }
  const self = publicKeyOf(desired.privateKey);
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
  return peers;
}

/**
 * Computes the minimal write turning `actual` (null = empty device) into `desired`.
 * Throws KernelError INVALID_ARGUMENT for desired states that could never be read back equal.
 */
export function diffDevice(actual: WgDevice | null, desired: DesiredDevice, opts: ApplyOptions = {}): DevicePlan {
  const want = checkDesired(desired);
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

  const wantByKey = new Map(want.map((p) => [p.publicKey, p]));
  const have = actual?.peers ?? [];
  const haveByKey = new Map(have.map((p) => [p.publicKey, p]));
  const removals: WgSetPeer[] = [];
  const updates: WgSetPeer[] = [];
  const additions: WgSetPeer[] = [];

  for (const a of have) {
    if (!wantByKey.has(a.publicKey)) {
      removals.push({ publicKey: a.publicKey, remove: true });
      changes.removed.push(a.publicKey);
    }
  }
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
    const fields: PeerField[] = [];
    const upd: WgSetPeer = { publicKey: w.publicKey, updateOnly: true };
    if (w.endpoint !== null) {
      const cur = a.endpoint === null ? null : normaliseEndpoint(a.endpoint);
      if (cur !== w.endpoint) {
        if (opts.keepEndpoint?.(a, w.endpoint, now)) {
          changes.keptEndpoints.push(w.publicKey);
        } else {
          upd.endpoint = w.endpoint;
          fields.push("endpoint");
        }
      }
    }
    if ((a.presharedKey ?? null) !== w.presharedKey) {
      upd.presharedKey = w.presharedKey;
      fields.push("psk");
    }
    const haveIps = new Set(a.allowedIps.map(normaliseCidr));
    if (!sameSet(w.allowedIps, haveIps)) {
      upd.replaceAllowedIps = true;
      upd.allowedIps = w.allowedIps;
      fields.push("allowed_ips");
    }
    if (a.persistentKeepalive !== w.keepalive) {
      upd.persistentKeepalive = w.keepalive;
      fields.push("keepalive");
    }
    if (fields.length > 0) {
      updates.push(upd);
      changes.updated.push({ publicKey: w.publicKey, fields });
    }
  }
  set.peers = [...removals, ...updates, ...additions];
  changes.empty = set.peers.length === 0 && !changes.privateKey && !changes.listenPort && !changes.fwmark;
  return { set, changes };
}
