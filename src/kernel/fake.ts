/**
 * In-memory Kernel for fast tests of higher layers. WireGuard writes go through the same
 * apply algorithm and diff as the real backends (wg-apply.ts, wg-diff.ts), and the in-memory
 * device applies a WgSet with WireGuard's semantics (update_only, remove, replace_allowed_ips,
 * an allowed IP belongs to one peer only), so what passes here means the same thing there.
 *
 * Failure injection: `failNext(op, { code })` makes the next call of `op` reject with the
 * addon's own NativeError (errors.ts: code, errno, op, object); `afterPeers` makes an
 * applyDevice fail part-way like a non-atomic UAPI `set`.
 */
import { normaliseCidr } from "./cidr.ts";
import { NativeError } from "./errors.ts";
import { checkIfname, KernelError } from "./kernel-error.ts";
import { publicKeyOf } from "./keys.ts";
import { normaliseIfAddr } from "./links.ts";
import type {
  ApplyOptions,
  DesiredDevice,
  DeviceChanges,
  EnsureResult,
  InterfaceOptions,
  InterfaceState,
  Kernel,
  KernelRoute,
  SetResult,
  WgDevice,
  WgPeer,
  WgSet,
  WgSetPeer,
} from "./types.ts";
import { applyWithDriver, type WgDriver } from "./wg-apply.ts";

/** Operations of FakeKernel that can be made to fail. */
export type FakeOp =
  | "readDevice"
  | "applyDevice"
  | "ensureInterface"
  | "deleteInterface"
  | "setAddresses"
  | "setRoutes"
  | "readInterface"
  | "updatePeers"
  | "applyPeers";

/** An injected failure. */
export interface FakeFailure {
  /** Errno name, e.g. "EPERM", "EBUSY". */
  code: string;
  errno?: number;
  /** applyDevice / applyPeers only: apply this many peer operations, then fail (non-atomic UAPI set). */
  afterPeers?: number;
  /** How many consecutive calls fail [1]. */
  times?: number;
}

/** The error an injected failure rejects with: a real NativeError, as the addon would throw. */
export function injectedError(op: string, code: string, errno = 0, object = ""): NativeError {
  return new NativeError(`${op}: ${code} (injected)`, { code, errno, op, object });
}

interface FakeLink {
  index: number;
  kind: string;
  mtu: number;
  up: boolean;
  addresses: Set<string>;
  /** key → route */
  routes: Map<string, { dst: string; src?: string }>;
}

const clonePeer = (p: WgPeer): WgPeer => ({ ...p, allowedIps: [...p.allowedIps] });
const cloneDevice = (d: WgDevice): WgDevice => ({ ...d, peers: d.peers.map(clonePeer) });

/** In-memory Kernel; see the file comment. */
export class FakeKernel implements Kernel {
  readonly backend = "fake" as const;
  /** Every call, in order ("applyDevice plexd0", …), for assertions. */
  readonly calls: string[] = [];
  /** Number of WgSet writes that reached the device (a no-change apply writes nothing). */
  writes = 0;
  closed = false;
  private readonly links = new Map<string, FakeLink>();
  private readonly devices = new Map<string, WgDevice>();
  private readonly failures = new Map<FakeOp, FakeFailure>();
  private nextIndex = 10;

  /** Makes the next call(s) of `op` fail. */
  failNext(op: FakeOp, failure: FakeFailure): void {
    this.failures.set(op, { times: 1, ...failure });
  }

  private check(op: FakeOp, what: string): FakeFailure | null {
    this.calls.push(`${op} ${what}`.trim());
    if (this.closed) throw new KernelError("INVALID_ARGUMENT", `FakeKernel is closed (${op})`);
    const f = this.failures.get(op);
    if (!f) return null;
    if ((f.times ?? 1) <= 1) this.failures.delete(op);
    else f.times = (f.times ?? 1) - 1;
    if (f.afterPeers !== undefined && (op === "applyDevice" || op === "applyPeers")) return f;
    throw injectedError(op, f.code, f.errno, what);
  }

  /** Test helper: creates a link of any kind (e.g. a foreign "veth" holding the mesh name). */
  addLink(name: string, kind: string, mtu = 1500): void {
    checkIfname(name);
    this.links.set(name, { index: this.nextIndex++, kind, mtu, up: false, addresses: new Set(), routes: new Map() });
    if (kind === "wireguard") this.devices.set(name, { ifname: name, privateKey: null, publicKey: null, listenPort: 0, fwmark: 0, peers: [] });
  }

  /** Test helper: a completed handshake from `endpoint` (WireGuard roaming updates the endpoint). */
  simulateHandshake(ifname: string, publicKey: string, atMs: number, endpoint?: string): void {
    const p = this.devices.get(ifname)?.peers.find((x) => x.publicKey === publicKey);
    if (!p) throw new Error(`no peer ${publicKey} on ${ifname}`);
    p.lastHandshakeMs = atMs;
    if (endpoint !== undefined) p.endpoint = endpoint;
  }

  /** Test helper: mutates the device behind the agent's back (drift). */
  mutateDevice(ifname: string, fn: (d: WgDevice) => void): void {
    const d = this.devices.get(ifname);
    if (!d) throw new Error(`no device ${ifname}`);
    fn(d);
    dropIndex(d);
  }

  async readDevice(ifname: string): Promise<WgDevice | null> {
    this.check("readDevice", ifname);
    const d = this.devices.get(ifname);
    return d ? cloneDevice(d) : null;
  }

  async applyDevice(desired: DesiredDevice, opts?: ApplyOptions): Promise<DeviceChanges> {
    const failure = this.check("applyDevice", desired.ifname);
    const driver: WgDriver = {
      get: async (ifname) => {
        const d = this.devices.get(ifname);
        return d ? cloneDevice(d) : null;
      },
      set: async (ifname, set) => {
        const d = this.devices.get(ifname);
        if (!d) throw new KernelError("NO_DEVICE", `no device ${ifname}`);
        this.writes++;
        applySet(d, set, failure?.afterPeers);
        if (failure) throw injectedError("applyDevice", failure.code, failure.errno, ifname);
      },
    };
    return applyWithDriver(driver, desired, opts);
  }

  async ensureInterface(name: string, opts: InterfaceOptions): Promise<EnsureResult> {
    this.check("ensureInterface", name);
    let result: EnsureResult = "adopted";
    let link = this.links.get(name);
    if (link && link.kind !== "wireguard") {
      throw new KernelError("WRONG_LINK_KIND", `interface ${name} exists with kind ${JSON.stringify(link.kind)}, want wireguard`);
    }
    if (!link) {
      this.addLink(name, "wireguard", opts.mtu);
      link = this.links.get(name)!;
      result = "created";
    }
    link.mtu = opts.mtu;
    link.up = true;
    return result;
  }

  async deleteInterface(name: string): Promise<void> {
    this.check("deleteInterface", name);
    this.links.delete(name);
    this.devices.delete(name);
  }

  private need(ifname: string): FakeLink {
    const l = this.links.get(ifname);
    if (!l) throw new KernelError("NO_DEVICE", `interface ${ifname} does not exist`);
    return l;
  }

  async setAddresses(ifname: string, cidrs: string[]): Promise<SetResult> {
    this.check("setAddresses", ifname);
    const l = this.need(ifname);
    const want = new Set(cidrs.map(normaliseIfAddr));
    const removed = [...l.addresses].filter((a) => !want.has(a));
    const added = [...want].filter((a) => !l.addresses.has(a));
    l.addresses = want;
    return { added, removed };
  }

  async setRoutes(ifname: string, routes: KernelRoute[]): Promise<SetResult> {
    this.check("setRoutes", ifname);
    const l = this.need(ifname);
    const want = new Map<string, { dst: string; src?: string }>();
    for (const r of routes) {
      const dst = normaliseCidr(r.dst);
      want.set(r.src ? `${dst} src ${r.src}` : dst, r.src ? { dst, src: r.src } : { dst });
    }
    const removed = [...l.routes.keys()].filter((k) => !want.has(k));
    const added = [...want.keys()].filter((k) => !l.routes.has(k));
    l.routes = want;
    return { added, removed };
  }

  async readInterface(ifname: string): Promise<InterfaceState | null> {
    this.check("readInterface", ifname);
    const l = this.links.get(ifname);
    if (!l) return null;
    return { index: l.index, name: ifname, kind: l.kind, mtu: l.mtu, up: l.up, addresses: [...l.addresses] };
  }

  /** Test helper: the routes on a link (keys as reported by setRoutes). */
  routesOf(ifname: string): string[] {
    return [...this.need(ifname).routes.keys()];
  }

  async updatePeers(ifname: string, peers: WgSetPeer[]): Promise<void> {
    this.check("updatePeers", ifname);
    const d = this.devices.get(ifname);
    if (!d) throw new KernelError("NO_DEVICE", `no device ${ifname}`);
    this.writes++;
    applySet(d, { peers: peers.map((p) => ({ ...p, updateOnly: true })) });
  }

  async applyPeers(ifname: string, peers: WgSetPeer[]): Promise<void> {
    const failure = this.check("applyPeers", ifname);
    checkIfname(ifname);
    if (peers.length === 0) return;
    const d = this.devices.get(ifname);
    if (!d) throw new KernelError("NO_DEVICE", `no device ${ifname}`);
    this.writes++;
    applySet(d, { peers }, failure?.afterPeers);
    if (failure) throw injectedError("applyPeers", failure.code, failure.errno, ifname);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/** Lookup structures over one in-memory device, so a one-peer write does not scan 10k peers. */
interface DeviceIndex {
  byKey: Map<string, WgPeer>;
  /** Allowed IP → the peer holding it. */
  owner: Map<string, WgPeer>;
}

// Built lazily per device object and dropped when a test mutates the device directly.
const indexes = new WeakMap<WgDevice, DeviceIndex>();

function indexOf(d: WgDevice): DeviceIndex {
  let ix = indexes.get(d);
  if (!ix) {
    ix = { byKey: new Map(), owner: new Map() };
    for (const p of d.peers) {
      ix.byKey.set(p.publicKey, p);
      for (const c of p.allowedIps) ix.owner.set(c, p);
    }
    indexes.set(d, ix);
  }
  return ix;
}

/** Forgets the lookup structures of a device changed behind applySet's back. */
function dropIndex(d: WgDevice): void {
  indexes.delete(d);
}

/**
 * Applies a WgSet to an in-memory device with WireGuard semantics. `limit` stops after that
 * many peer sections (simulating a failing line in a non-atomic UAPI set).
 */
export function applySet(d: WgDevice, set: WgSet, limit?: number): void {
  if (set.privateKey !== undefined) {
    d.privateKey = set.privateKey;
    d.publicKey = set.privateKey === null ? null : publicKeyOf(set.privateKey);
  }
  if (set.listenPort !== undefined) d.listenPort = set.listenPort === 0 ? 51820 : set.listenPort;
  if (set.fwmark !== undefined) d.fwmark = set.fwmark;
  if (set.replacePeers) {
    d.peers = [];
    dropIndex(d);
  }
  const ix = indexOf(d);
  let n = 0;
  for (const op of set.peers) {
    if (limit !== undefined && n++ >= limit) return;
    let p = ix.byKey.get(op.publicKey);
    if (op.remove) {
      if (p) {
        d.peers.splice(d.peers.indexOf(p), 1);
        ix.byKey.delete(op.publicKey);
        for (const c of p.allowedIps) if (ix.owner.get(c) === p) ix.owner.delete(c);
      }
      continue;
    }
    if (!p) {
      if (op.updateOnly) continue;
      p = { publicKey: op.publicKey, presharedKey: null, endpoint: null, allowedIps: [], persistentKeepalive: 0, lastHandshakeMs: null, rxBytes: 0, txBytes: 0 };
      d.peers.push(p);
      ix.byKey.set(op.publicKey, p);
    }
    if (op.presharedKey !== undefined) p.presharedKey = op.presharedKey;
    if (op.endpoint !== undefined) p.endpoint = op.endpoint;
    if (op.persistentKeepalive !== undefined) p.persistentKeepalive = op.persistentKeepalive;
    if (op.replaceAllowedIps) {
      for (const c of p.allowedIps) if (ix.owner.get(c) === p) ix.owner.delete(c);
      p.allowedIps = [];
    }
    for (const raw of op.allowedIps ?? []) {
      const c = normaliseCidr(raw);
      // An allowed IP belongs to exactly one peer: taking it removes it from the other.
      const o = ix.owner.get(c);
      if (o !== undefined && o !== p) o.allowedIps = o.allowedIps.filter((x) => x !== c);
      ix.owner.set(c, p);
      if (!p.allowedIps.includes(c)) p.allowedIps.push(c);
    }
  }
}
