/**
 * Kernel WireGuard backend: generic netlink through the addon (wgGetDevice / wgSetDevice).
 * Cannot run on a machine without the wireguard module; the conversions are unit-tested with
 * a stub addon and the message building has golden-byte tests in native/.
 */
import type { NativeAddon, WgDeviceNative, WgPeerNative } from "./addon-api.ts";
import { normaliseCidr } from "./cidr.ts";
import { keyFromBase64, keyToBase64, isZeroKey } from "./keys.ts";
import type { WgDevice, WgPeer, WgSet } from "./types.ts";
import type { WgDriver } from "./wg-apply.ts";

const ZERO = new Uint8Array(32);

function isAbsent(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "ENODEV" || code === "ENOENT";
}

/** WgDeviceNative (read-back) → WgDevice. */
export function fromNative(n: WgDeviceNative): WgDevice {
  const key = (k: Uint8Array | undefined) => (k === undefined || isZeroKey(k) ? null : keyToBase64(k));
  return {
    ifname: n.ifname,
    privateKey: key(n.privateKey),
    publicKey: key(n.publicKey),
    listenPort: n.listenPort ?? 0,
    fwmark: n.fwmark ?? 0,
    peers: n.peers.map(
      (p): WgPeer => ({
        publicKey: keyToBase64(p.publicKey),
        presharedKey: key(p.presharedKey),
        endpoint: p.endpoint ?? null,
        allowedIps: (p.allowedIps ?? []).map(normaliseCidr),
        persistentKeepalive: p.persistentKeepalive ?? 0,
        lastHandshakeMs: p.lastHandshakeSec ? p.lastHandshakeSec * 1000 : null,
        rxBytes: p.rxBytes ?? 0,
        txBytes: p.txBytes ?? 0,
      }),
    ),
  };
}

/** WgSet → WgDeviceNative (the addon splits large peer lists across messages). */
export function toNative(ifname: string, set: WgSet): WgDeviceNative {
  const dev: WgDeviceNative = { ifname, peers: [] };
  if (set.privateKey !== undefined) dev.privateKey = set.privateKey === null ? ZERO : keyFromBase64(set.privateKey);
  if (set.listenPort !== undefined) dev.listenPort = set.listenPort;
  if (set.fwmark !== undefined) dev.fwmark = set.fwmark;
  if (set.replacePeers) dev.replacePeers = true;
  for (const p of set.peers) {
    const n: WgPeerNative = { publicKey: keyFromBase64(p.publicKey) };
    if (p.remove) n.remove = true;
    if (p.updateOnly) n.updateOnly = true;
    if (p.presharedKey !== undefined) n.presharedKey = p.presharedKey === null ? ZERO : keyFromBase64(p.presharedKey);
    if (p.endpoint !== undefined) n.endpoint = p.endpoint;
    if (p.persistentKeepalive !== undefined) n.persistentKeepalive = p.persistentKeepalive;
    if (p.replaceAllowedIps) n.replaceAllowedIps = true;
    if (p.allowedIps !== undefined) n.allowedIps = p.allowedIps;
    dev.peers.push(n);
  }
  return dev;
}

/** WgDriver over the addon's WireGuard genetlink calls. */
export function nativeWgDriver(addon: NativeAddon): WgDriver {
  return {
    async get(ifname) {
      try {
        return fromNative(await addon.wgGetDevice(ifname));
      } catch (err) {
        if (isAbsent(err)) return null;
        throw err;
      }
    },
    set: (ifname, set) => addon.wgSetDevice(toNative(ifname, set)),
  };
}
