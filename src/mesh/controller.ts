/**
 * The mesh subsystem: owns the desired peer set and policies (the last verified CP state),
 * persists them to the cache, and makes the kernel match (lifecycle.md §4.2). Two paths:
 *
 *  - `apply()` — the whole mesh against a fresh read-back of the kernel (configure, reconcile,
 *    policy changes): interface, address, routes, device diff + verification, firewall.
 *  - the event fast path (`upsertPeer`, `removePeer`, `setPeerEndpointFromEvent`) — one peer's
 *    delta, computed against an in-memory model of what the last successful `apply()` and the
 *    fast writes since put on the device, and written as one small peer write
 *    (docs/decisions.md "Mesh apply fast path"). Cost O(changed), not O(peers). Whenever the
 *    model cannot answer (no successful apply yet, settings or identity changed since, a failed
 *    step, a write error, duplicate keys, an allowed-IP conflict) the event takes `apply()`.
 *    Drift of the device away from the model is found by the periodic reconcile's `apply()`.
 *
 * Writes are serialised; a failing step is recorded and the other steps still run.
 *
 * Nothing here tears anything down because the CP is away: only `teardown()` (deregister)
 * removes the interface.
 */
import type { Logger } from "../log/index.ts";
import { nullLogger } from "../log/index.ts";
import type { Peer, Policy } from "../controlplane/schemas.ts";
import { diffDevice, keepRoamedEndpoint, normaliseDesiredPeer, ROAMING_WINDOW_MS, type NormPeer } from "../kernel/index.ts";
import type { DeviceChanges, EndpointKeepRule, Kernel, PeerField, WgDevice, WgSetPeer } from "../kernel/types.ts";
import { PeersCacheWriter, writePoliciesCache } from "./cache.ts";
import {
  computeDesired,
  desiredPeerOf,
  inMesh,
  isCandidate,
  meshRoutes,
  peerVisible,
  type MeshDesired,
  type MeshSelf,
  type MeshSettings,
} from "./desired.ts";

/** One drift correction (lifecycle.md §9.3). */
export interface Correction {
  readonly type: string;
  readonly detail: string;
}

/** Result of one apply. */
export interface ApplyOutcome {
  /** What was changed (or, for a dry run, would be). */
  readonly corrections: Correction[];
  /** Steps that failed: step name + message. */
  readonly errors: Array<{ step: string; message: string }>;
}

/** What the firewall step needs: the whole policy set, who we are, every known peer's mesh IP. */
export interface FirewallInput {
  readonly policies: readonly Policy[];
  readonly local: { nodeId: string; meshIp: string };
  readonly peers: Array<{ id: string; meshIp: string }>;
}

/**
 * Firewall seam (lifecycle.md §4.2 step 7); the supervisor plugs the policy Enforcer in here.
 * Absent = the firewall is not managed (and deregistration leaves any table alone).
 */
export interface MeshFirewall {
  /**
   * Makes `inet plexd` enforce `input`. Returns only `firewall_restored` corrections — policy
   * added/removed are the reconciler's (it compares the policy sets itself).
   */
  apply(input: FirewallInput): Promise<Correction[]>;
  /** Deregistration: deletes `inet plexd`; an absent table is not an error. */
  remove(): Promise<void>;
}

/** A targeted endpoint write (NAT refresh): which peer, where, and the keepalive to end with. */
export interface EndpointWrite {
  readonly peerId: string;
  readonly publicKey: string;
  readonly endpoint: string;
  /** Seconds; written after a 0 so WireGuard sends a keepalive at once (hole punch). */
  readonly keepaliveSec: number;
}

/** Constructor arguments of {@link MeshController}. */
export interface MeshControllerOptions {
  readonly kernel: Kernel;
  readonly dataDir: string;
  readonly settings: () => MeshSettings;
  /** Identity at this instant (keys rotate, mesh IP may change on re-registration). */
  readonly self: () => MeshSelf;
  readonly firewall?: MeshFirewall;
  readonly logger?: Logger;
  readonly now?: () => number;
  /** Handshake tie-break delay (HANDSHAKE_DEFER_MS in the agent); 0 or absent = off. */
  readonly handshakeDeferMs?: number;
}

/** A peer as shown by `plexd peers`. */
export interface PeerView {
  id: string;
  mesh_ip: string;
  public_key: string;
  endpoint: string;
  last_handshake: string | null;
  rx_bytes: number;
  tx_bytes: number;
  visible: boolean;
  configured: boolean;
}

/** What the model holds per applied peer: its id and the normalised device entry. */
interface AppliedPeer {
  readonly id: string;
  readonly peer: NormPeer;
}

/** Settings + identity the model was built for; any difference sends events to `apply()`. */
function basisOf(s: MeshSettings, self: MeshSelf): string {
  return JSON.stringify([s.ifname, s.listenPort, s.mtu, s.keepaliveSec, s.policyDefault, s.policyEnabled, self.nodeId, self.meshIp, self.privateKey]);
}

/**
 * Handshake tie-break: two nodes that add each other at the same moment (one policy event,
 * agents started together) would both initiate on the keepalive that turning it on sends;
 * crossing initiations make wireguard-go drop both and wait its 5 s retry. The node with the
 * greater public key adds a NEW peer with keepalive off and turns it on this much later, so
 * the other side's handshake normally completes first (docs/decisions.md "Mesh apply").
 */
export const HANDSHAKE_DEFER_MS = 300;

const sameList = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x) => b.includes(x));

/** Names a device change as drift corrections. */
export function deviceCorrections(ch: DeviceChanges, ifname: string, idByKey: ReadonlyMap<string, string>): Correction[] {
  const name = (k: string) => idByKey.get(k) ?? k;
  const out: Correction[] = [];
  if (ch.privateKey) out.push({ type: "interface_restored", detail: `${ifname} private key restored` });
  if (ch.listenPort) out.push({ type: "interface_restored", detail: `${ifname} listen port restored` });
  for (const k of ch.removed) out.push({ type: "peer_removed", detail: `peer ${name(k)}` });
  for (const u of ch.updated) {
    const fields = u.fields.filter((f) => !(f === "endpoint" && ch.keptEndpoints.includes(u.publicKey)));
    if (fields.length > 0) out.push({ type: "peer_updated", detail: `peer ${name(u.publicKey)}: ${fields.join(",")}` });
  }
  for (const k of ch.added) out.push({ type: "peer_added", detail: `peer ${name(k)}` });
  return out;
}

/** See the file comment. */
export class MeshController {
  readonly #o: MeshControllerOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  /** Desired peers by id, in list order (an upsert moves a peer to the end, like filter+concat). */
  #byId = new Map<string, Peer>();
  /** Public key → id over `#byId` (first holder when keys repeat). */
  #idByKey = new Map<string, string>();
  /** Keys held by more than one peer (a CP inconsistency): events then take `apply()`. */
  #dupKeys = 0;
  /** `[...#byId.values()]`, built on demand. */
  #list: Peer[] | null = [];
  #policies: Policy[] = [];
  /** Node ids named as a rule end: only these peers' mesh IPs reach the firewall's ruleset. */
  #namedIds = new Set<string>();
  readonly #cache: PeersCacheWriter;
  // The model of what is on the device (see the file comment); valid only with `#basis` set.
  #basis: string | null = null;
  #applied = new Map<string, AppliedPeer>();
  /** Normalised allowed IP → public key of the applied peer holding it. */
  #ipOwner = new Map<string, string>();
  /** Extra (bridge) route destination → number of applied peers that need it. */
  #routeRefs = new Map<string, number>();
  /** Public key → id of every peer we ever configured, to name removals of unknown keys. */
  readonly #knownKeys = new Map<string, string>();
  #lock: Promise<unknown> = Promise.resolve();
  #lastApplyAt: number | undefined;
  #healthy = true;
  /**
   * Public key → the endpoint plexd itself last wrote for that peer (device diff or NAT
   * refresh): the input of the refined roaming rule, shared by both write paths.
   */
  readonly #written = new Map<string, string>();

  constructor(opts: MeshControllerOptions & { cacheDelayMs?: number }) {
    this.#o = opts;
    this.#log = opts.logger ?? nullLogger;
    this.#now = opts.now ?? Date.now;
    this.#cache = new PeersCacheWriter({
      dataDir: opts.dataDir,
      snapshot: () => this.peers,
      ...(opts.cacheDelayMs !== undefined ? { delayMs: opts.cacheDelayMs } : {}),
      onError: (err) => this.#log.warn("peer cache write failed; retrying on the next change or at stop", { error: err.message }),
    });
  }

  get peers(): readonly Peer[] {
    return (this.#list ??= [...this.#byId.values()]);
  }

  /** The desired peer with this id (O(1)). */
  peer(id: string): Peer | undefined {
    return this.#byId.get(id);
  }

  /** True while the last event's change is not yet in `cache/peers.json`. */
  get cachePending(): boolean {
    return this.#cache.pending;
  }

  /** Writes a pending peers cache change now (stop, teardown). */
  flush(): Promise<void> {
    return this.#cache.flush();
  }

  /** Stop: flushes the peers cache. The kernel stays as it is. */
  async close(): Promise<void> {
    this.#cancelDeferred();
    await this.#serial(async () => undefined);
    await this.#cache.flush();
  }

  #deferred = new Map<string, ReturnType<typeof setTimeout>>();

  /** True when this node is the one that waits (see HANDSHAKE_DEFER_MS). */
  #defers(peerKey: string, keepalive: number): boolean {
    return (this.#o.handshakeDeferMs ?? 0) > 0 && keepalive > 0 && this.#o.self().publicKey > peerKey;
  }

  /** Turns the keepalive of a peer added with it off on after HANDSHAKE_DEFER_MS. */
  #deferKeepalive(publicKey: string, keepalive: number): void {
    clearTimeout(this.#deferred.get(publicKey));
    const t = setTimeout(() => {
      this.#deferred.delete(publicKey);
      void this.#serial(async () => {
        const a = this.#applied.get(publicKey);
        if (a ? a.peer.keepalive !== 0 : !this.#idByKey.has(publicKey)) return; // turned on meanwhile, or gone
        await this.#o.kernel.updatePeers(this.#o.settings().ifname, [{ publicKey, persistentKeepalive: keepalive }]);
        if (a) this.#applied.set(publicKey, { ...a, peer: { ...a.peer, keepalive } });
      }).catch((err) => this.#log.warn("deferred keepalive failed; reconcile will set it", { error: (err as Error).message }));
    }, this.#o.handshakeDeferMs);
    t.unref?.();
    this.#deferred.set(publicKey, t);
  }

  #cancelDeferred(): void {
    for (const t of this.#deferred.values()) clearTimeout(t);
    this.#deferred.clear();
  }

  #setPeers(peers: readonly Peer[]): void {
    this.#byId = new Map();
    this.#idByKey = new Map();
    this.#dupKeys = 0;
    for (const p of peers) {
      // A repeated id: the first entry wins, as in computeDesired.
      if (this.#byId.has(p.id)) continue;
      this.#byId.set(p.id, p);
      if (p.public_key === "") continue;
      if (this.#idByKey.has(p.public_key)) this.#dupKeys++;
      else this.#idByKey.set(p.public_key, p.id);
    }
    this.#list = null;
  }

  #setPolicies(policies: readonly Policy[]): void {
    this.#policies = [...policies];
    this.#namedIds = new Set(policies.flatMap((p) => p.rules.flatMap((r) => [r.src, r.dst])));
  }

  /** Removes one entry (and its key index). */
  #deletePeer(p: Peer): void {
    this.#byId.delete(p.id);
    if (this.#idByKey.get(p.public_key) === p.id) this.#idByKey.delete(p.public_key);
    this.#list = null;
  }

  /** Appends (or replaces in place, when the id exists) one entry. */
  #putPeer(p: Peer): void {
    this.#byId.set(p.id, p);
    if (p.public_key !== "") this.#idByKey.set(p.public_key, p.id);
    this.#list = null;
  }

  get policies(): readonly Policy[] {
    return this.#policies;
  }

  /** False after an apply that had failing steps (mesh health indicator). */
  get healthy(): boolean {
    return this.#healthy;
  }

  get lastApplyAt(): number | undefined {
    return this.#lastApplyAt;
  }

  /** Replaces the desired state in memory (no write to disk). */
  load(peers: readonly Peer[], policies: readonly Policy[]): void {
    this.#setPeers(peers);
    this.#setPolicies(policies);
  }

  /**
   * Replaces peers and/or policies and persists them to the cache (only what was given).
   * @throws StoreError when the cache cannot be written
   */
  commit(next: { peers?: readonly Peer[]; policies?: readonly Policy[] }): void {
    if (next.peers) {
      this.#setPeers(next.peers);
      this.#cache.writeNow(this.peers);
    }
    if (next.policies) {
      this.#setPolicies(next.policies);
      writePoliciesCache(this.#o.dataDir, this.#policies);
    }
  }

  /** The desired mesh for the current (or a hypothetical) state. */
  desired(peers: readonly Peer[] = this.peers, policies: readonly Policy[] = this.#policies): MeshDesired {
    const d = computeDesired(this.#o.settings(), this.#o.self(), peers, policies);
    for (const [k, id] of d.idByKey) this.#knownKeys.set(k, id);
    return d;
  }

  /** The roaming rule of both write paths (lifecycle.md §5.4, refined: docs/decisions.md). */
  #keepRule(): EndpointKeepRule {
    return keepRoamedEndpoint(ROAMING_WINDOW_MS, (k) => this.#written.get(k));
  }

  /** The endpoint plexd last wrote for a peer (by public key), when known. */
  writtenEndpoint(publicKey: string): string | undefined {
    return this.#written.get(publicKey);
  }

  /**
   * Seeds "what plexd last wrote" after a restart (e.g. from `cache/nat.json`), by peer id;
   * ids not in the current peer set are ignored.
   */
  seedWrittenEndpoints(byPeerId: Readonly<Record<string, string>>): void {
    for (const p of this.#byId.values()) {
      const e = byPeerId[p.id];
      if (e !== undefined && !this.#written.has(p.public_key)) this.#written.set(p.public_key, e);
    }
  }

  #names(d: MeshDesired): Map<string, string> {
    return new Map([...this.#knownKeys, ...d.idByKey]);
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(fn, fn);
    this.#lock = run.catch(() => undefined);
    return run;
  }

  /**
   * What applying `peers`/`policies` would change on the kernel, without writing anything
   * (handler dry runs). Routes cannot be read back here and are not included.
   */
  async plan(peers: readonly Peer[] = this.peers, policies: readonly Policy[] = this.#policies): Promise<Correction[]> {
    const d = this.desired(peers, policies);
    const out: Correction[] = [];
    const link = await this.#o.kernel.readInterface(d.ifname).catch(() => null);
    if (link === null) out.push({ type: "interface_restored", detail: `${d.ifname} recreated` });
    else {
      if (!link.addresses.includes(d.addresses[0]!)) out.push({ type: "interface_restored", detail: "address restored" });
      if (link.mtu !== d.mtu || !link.up) out.push({ type: "interface_restored", detail: `${d.ifname} mtu/up restored` });
    }
    const actual = await this.#o.kernel.readDevice(d.ifname).catch(() => null);
    const plan = diffDevice(actual, d.device, { keepEndpoint: this.#keepRule(), now: this.#now });
    out.push(...deviceCorrections(plan.changes, d.ifname, this.#names(d)));
    return out;
  }

  /**
   * Makes the kernel match the current desired state, in the order of lifecycle.md §4.2:
   * interface (create/adopt, MTU, up) → address → routes → device (key, port, peers) →
   * firewall. Each step's failure is recorded and the next step still runs.
   */
  apply(): Promise<ApplyOutcome> {
    return this.#serial(() => this.#apply());
  }

  async #apply(): Promise<ApplyOutcome> {
    const k = this.#o.kernel;
    const settings = this.#o.settings();
    const me = this.#o.self();
    const wanted = computeDesired(settings, me, this.peers, this.#policies);
    // Peers new to this device that we wait for (HANDSHAKE_DEFER_MS) start with keepalive off.
    const deferred: [string, number][] = [];
    const d: MeshDesired = {
      ...wanted,
      device: {
        ...wanted.device,
        peers: wanted.device.peers.map((p) => {
          const ka = p.persistentKeepalive ?? 0;
          if (this.#applied.has(p.publicKey) || !this.#defers(p.publicKey, ka)) return p;
          deferred.push([p.publicKey, ka]);
          return { ...p, persistentKeepalive: 0 };
        }),
      },
    };
    for (const [key, id] of d.idByKey) this.#knownKeys.set(key, id);
    // The model is rebuilt below only when every step succeeded; until then events come here.
    this.#basis = null;
    const corrections: Correction[] = [];
    const errors: ApplyOutcome["errors"] = [];
    const step = async (name: string, fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (err) {
        errors.push({ step: name, message: (err as Error).message });
        this.#log.warn("mesh apply step failed", { step: name, error: (err as Error).message, code: (err as { code?: string }).code });
      }
    };
    let linkOk = false;
    await step("interface", async () => {
      const before = await k.readInterface(d.ifname);
      if (before === null || before.mtu !== d.mtu || !before.up) {
        const r = await k.ensureInterface(d.ifname, { mtu: d.mtu });
        if (before === null && r === "created") corrections.push({ type: "interface_restored", detail: `${d.ifname} recreated` });
        else if (before !== null) corrections.push({ type: "interface_restored", detail: `${d.ifname} mtu/up restored` });
      } else if (k.backend === "userspace") {
        // Adopt the running wireguard-go into supervision (no-op when already supervised).
        await k.ensureInterface(d.ifname, { mtu: d.mtu });
      }
      linkOk = true;
    });
    if (linkOk) {
      await step("address", async () => {
        const r = await k.setAddresses(d.ifname, d.addresses);
        if (r.added.length > 0 || r.removed.length > 0) corrections.push({ type: "interface_restored", detail: "address restored" });
      });
      await step("routes", async () => {
        const r = await k.setRoutes(d.ifname, d.routes);
        for (const dst of r.added) corrections.push({ type: "route_restored", detail: `${dst.split(" ")[0]} dev ${d.ifname}` });
      });
    }
    await step("peers", async () => {
      const ch = await k.applyDevice(d.device, { keepEndpoint: this.#keepRule(), now: this.#now });
      this.#noteWrites(d, ch);
      corrections.push(...deviceCorrections(ch, d.ifname, this.#names(d)));
      for (const [key, ka] of deferred) this.#deferKeepalive(key, ka);
    });
    if (this.#o.firewall) {
      const fw = this.#o.firewall;
      const self = this.#o.self();
      await step("firewall", async () => {
        corrections.push(...(await this.#firewallApply(fw, self)));
      });
    }
    for (const s of d.skippedRules) this.#log.warn("policy rule skipped: address outside the mesh", { policy: s.policyId, rule: s.index, reason: s.reason });
    this.#lastApplyAt = this.#now();
    this.#healthy = errors.length === 0;
    if (errors.length === 0) this.#rebuildModel(d, basisOf(settings, me));
    return { corrections, errors };
  }

  async #firewallApply(fw: MeshFirewall, self: MeshSelf): Promise<Correction[]> {
    const peers: FirewallInput["peers"] = [];
    for (const p of this.#byId.values()) if (p.id !== self.nodeId && p.mesh_ip !== "") peers.push({ id: p.id, meshIp: p.mesh_ip });
    const got = await fw.apply({ policies: this.#policies, local: { nodeId: self.nodeId, meshIp: self.meshIp }, peers });
    return got.filter((c) => c.type === "firewall_restored");
  }

  /** After a fully successful `apply()`: the device now holds exactly `d` (read back). */
  #rebuildModel(d: MeshDesired, basis: string): void {
    const idOf = new Map<string, string>();
    for (const p of d.visible.values()) idOf.set(p.public_key, p.id);
    this.#applied = new Map();
    this.#ipOwner = new Map();
    this.#routeRefs = new Map();
    for (const dp of d.device.peers) {
      const n = normaliseDesiredPeer(dp);
      this.#modelAdd({ id: idOf.get(n.publicKey) ?? "", peer: n });
    }
    this.#basis = basis;
  }

  #modelAdd(a: AppliedPeer): void {
    this.#applied.set(a.peer.publicKey, a);
    for (const c of a.peer.allowedIps) {
      this.#ipOwner.set(c, a.peer.publicKey);
      if (!inMesh(c)) this.#routeRefs.set(c, (this.#routeRefs.get(c) ?? 0) + 1);
    }
  }

  #modelDelete(key: string): void {
    const a = this.#applied.get(key);
    if (!a) return;
    this.#applied.delete(key);
    for (const c of a.peer.allowedIps) {
      if (this.#ipOwner.get(c) === key) this.#ipOwner.delete(c);
      if (!inMesh(c)) {
        const n = (this.#routeRefs.get(c) ?? 0) - 1;
        if (n > 0) this.#routeRefs.set(c, n);
        else this.#routeRefs.delete(c);
      }
    }
  }

  // ------------------------------------------------------------------------------------------
  // Event fast path (docs/decisions.md "Mesh apply fast path")

  /**
   * `peer_added` / `peer_key_rotated`: the peer replaces any entry with its id or its key and
   * goes to the end of the list; the device gets that peer's delta only. Falls back to
   * `apply()` whenever the model cannot answer (see the file comment).
   */
  upsertPeer(p: Peer): Promise<ApplyOutcome> {
    return this.#serial(async () => {
      const removed: Peer[] = [];
      if (this.#dupKeys > 0) {
        // Keys repeat: every holder goes (the index names only the first).
        for (const x of this.#byId.values()) if (x.id === p.id || (p.public_key !== "" && x.public_key === p.public_key)) removed.push(x);
      } else {
        const byId = this.#byId.get(p.id);
        if (byId) removed.push(byId);
        const holder = p.public_key === "" ? undefined : this.#idByKey.get(p.public_key);
        const byKey = holder !== undefined && holder !== p.id ? this.#byId.get(holder) : undefined;
        if (byKey) removed.push(byKey);
      }
      for (const r of removed) this.#deletePeer(r);
      this.#putPeer(p);
      if (p.public_key !== "") this.#knownKeys.set(p.public_key, p.id);
      this.#cache.schedule();
      return (await this.#fast(removed, p)) ?? this.#apply();
    });
  }

  /** `peer_removed`: drops the peer; an unknown id changes nothing. */
  removePeer(id: string): Promise<ApplyOutcome> {
    return this.#serial(async () => {
      const old = this.#byId.get(id);
      if (!old) return this.#basis !== null ? { corrections: [], errors: [] } : this.#apply();
      this.#deletePeer(old);
      this.#cache.schedule();
      return (await this.#fast([old], undefined)) ?? this.#apply();
    });
  }

  /**
   * `peer_endpoint_changed` for a known peer (keeps its place in the list). An applied peer's
   * endpoint is decided by the roaming rule, which needs that peer's handshake as the device
   * reports it: one device read, then a one-peer write. Unknown id → nothing.
   */
  setPeerEndpointFromEvent(id: string, endpoint: string): Promise<ApplyOutcome> {
    return this.#serial(async () => {
      const old = this.#byId.get(id);
      if (!old) return { corrections: [], errors: [] };
      const next = { ...old, endpoint };
      this.#putPeer(next);
      if (old.endpoint !== endpoint) this.#cache.schedule();
      return (await this.#fast([old], next)) ?? this.#apply();
    });
  }

  /**
   * The delta of one event against the model: `removed` entries left the desired list (already
   * taken out), `next` entered it (already put in). Returns null when `apply()` must decide.
   */
  async #fast(removed: readonly Peer[], next: Peer | undefined): Promise<ApplyOutcome | null> {
    if (this.#basis === null || this.#dupKeys > 0) return null;
    const settings = this.#o.settings();
    const me = this.#o.self();
    if (basisOf(settings, me) !== this.#basis) return null;
    const k = this.#o.kernel;
    const ifname = settings.ifname;
    const corrections: Correction[] = [];

    // What the device should hold for `next` (null = nothing).
    let want: NormPeer | null = null;
    if (next && isCandidate(me, next) && peerVisible(settings, me, next, this.#policies)) {
      try {
        want = normaliseDesiredPeer(desiredPeerOf(settings, next));
      } catch {
        return null; // invalid: let apply() report it as before
      }
    }
    const gone = new Set<string>();
    for (const r of removed) {
      const a = this.#applied.get(r.public_key);
      if (a && a.id === r.id && r.public_key !== want?.publicKey) gone.add(r.public_key);
    }
    if (next && want === null) {
      const a = this.#applied.get(next.public_key);
      if (a && a.id === next.id) gone.add(next.public_key);
    }
    const have = want ? this.#applied.get(want.publicKey) : undefined;
    if (want) {
      for (const c of want.allowedIps) {
        const o = this.#ipOwner.get(c);
        // An allowed IP belongs to one peer: a conflict is apply()'s to report.
        if (o !== undefined && o !== want.publicKey && !gone.has(o)) return null;
      }
    }

    const sections: WgSetPeer[] = [];
    for (const key of gone) {
      sections.push({ publicKey: key, remove: true });
      corrections.push({ type: "peer_removed", detail: `peer ${this.#applied.get(key)!.id || key}` });
    }
    let endpointWritten: string | null = null;
    // New peers and new endpoints both start a handshake: the tie-break applies to both.
    let deferKa = want !== null && !have && this.#defers(want.publicKey, want.keepalive);
    if (want && !have) {
      // Every field explicit: the key may still be on the device (drift), with other values.
      sections.push({
        publicKey: want.publicKey,
        presharedKey: want.presharedKey,
        ...(want.endpoint !== null ? { endpoint: want.endpoint } : {}),
        persistentKeepalive: deferKa ? 0 : want.keepalive,
        replaceAllowedIps: true,
        allowedIps: want.allowedIps,
      });
      endpointWritten = want.endpoint;
      corrections.push({ type: "peer_added", detail: `peer ${next!.id}` });
    } else if (want && have) {
      const upd: WgSetPeer = { publicKey: want.publicKey, updateOnly: true };
      const fields: PeerField[] = [];
      if (want.endpoint !== null && want.endpoint !== have.peer.endpoint) {
        const decided = await this.#endpointDecision(ifname, want.publicKey, want.endpoint);
        if (decided === null) return null;
        if (decided === "set") {
          upd.endpoint = want.endpoint;
          endpointWritten = want.endpoint;
          fields.push("endpoint");
        }
      }
      if (want.presharedKey !== have.peer.presharedKey) {
        upd.presharedKey = want.presharedKey;
        fields.push("psk");
      }
      if (!sameList(want.allowedIps, have.peer.allowedIps)) {
        upd.replaceAllowedIps = true;
        upd.allowedIps = want.allowedIps;
        fields.push("allowed_ips");
      }
      if (want.keepalive !== have.peer.keepalive) {
        upd.persistentKeepalive = want.keepalive;
        fields.push("keepalive");
      }
      if (fields.length > 0) {
        sections.push(upd);
        corrections.push({ type: "peer_updated", detail: `peer ${next!.id}: ${fields.join(",")}` });
        // A new endpoint: keepalive 0 then N in the same write makes WireGuard send to it at once
        // (hole punch through the peer's NAT), as the NAT refresh's own endpoint writes do.
        if (upd.endpoint !== undefined && want.keepalive > 0) {
          upd.persistentKeepalive = 0;
          deferKa = this.#defers(want.publicKey, want.keepalive);
          if (!deferKa) sections.push({ publicKey: want.publicKey, updateOnly: true, persistentKeepalive: want.keepalive });
        }
      }
    }

    // Routes: only when the set of extra (bridge) destinations changes.
    const before = new Set(this.#routeRefs.keys());
    for (const key of gone) this.#modelDelete(key);
    if (want) {
      this.#modelDelete(want.publicKey);
      this.#modelAdd({ id: next!.id, peer: deferKa ? { ...want, keepalive: 0 } : want });
    }
    const after = [...this.#routeRefs.keys()];
    const routesChanged = after.length !== before.size || after.some((r) => !before.has(r));
    const errors: ApplyOutcome["errors"] = [];
    try {
      if (routesChanged) {
        const r = await k.setRoutes(ifname, meshRoutes(me, after));
        for (const dst of r.added) corrections.unshift({ type: "route_restored", detail: `${dst.split(" ")[0]} dev ${ifname}` });
      }
      // Removals, then the update or addition (§4.2 step 6); one write.
      if (sections.length > 0) await k.applyPeers(ifname, sections);
    } catch (err) {
      // A UAPI set is not atomic and the model may be wrong now: the whole apply decides.
      this.#basis = null;
      this.#log.warn("mesh fast write failed; applying the whole mesh", { error: (err as Error).message, code: (err as { code?: string }).code });
      return null;
    }
    for (const key of gone) this.#written.delete(key);
    if (want && endpointWritten !== null) this.#written.set(want.publicKey, endpointWritten);
    if (deferKa) this.#deferKeepalive(want!.publicKey, want!.keepalive);

    // Firewall: only peers named in a rule are part of the ruleset.
    const fw = this.#o.firewall;
    if (fw && [...removed, ...(next ? [next] : [])].some((x) => this.#namedIds.has(x.id))) {
      try {
        corrections.push(...(await this.#firewallApply(fw, me)));
      } catch (err) {
        errors.push({ step: "firewall", message: (err as Error).message });
        this.#log.warn("mesh apply step failed", { step: "firewall", error: (err as Error).message });
        this.#basis = null;
      }
    }
    this.#lastApplyAt = this.#now();
    this.#healthy = errors.length === 0;
    return { corrections, errors };
  }

  /**
   * The roaming rule (§5.4, refined) for one applied peer whose desired endpoint changed:
   * "set", "keep" (the device's roamed endpoint stays), or null when the device does not hold
   * the peer (drift: `apply()` decides).
   */
  async #endpointDecision(ifname: string, key: string, endpoint: string): Promise<"set" | "keep" | null> {
    const dev = await this.#o.kernel.readDevice(ifname).catch(() => null);
    const a = dev?.peers.find((x) => x.publicKey === key);
    if (!a) return null;
    return this.#keepRule()(a, endpoint, this.#now()) ? "keep" : "set";
  }

  /** Records the endpoints a device write set; forgets peers no longer desired. */
  #noteWrites(d: MeshDesired, ch: DeviceChanges): void {
    const want = new Map(d.device.peers.map((p) => [p.publicKey, p]));
    const wrote = new Set([...ch.added, ...ch.updated.filter((u) => u.fields.includes("endpoint")).map((u) => u.publicKey)]);
    for (const k of wrote) {
      const e = want.get(k)?.endpoint;
      if (e) this.#written.set(k, e);
    }
    for (const k of [...this.#written.keys()]) if (!want.has(k)) this.#written.delete(k);
  }

  /**
   * The NAT refresh's endpoint write (docs/decisions.md "Hole punch on every endpoint write"):
   * update-only, endpoint with keepalive 0, then keepalive N — WireGuard sends a keepalive the
   * moment keepalive turns on, which opens our own NAT towards the new endpoint at once. The
   * cached peer takes the endpoint too (it came from the CP's PUT /endpoint answer), so the
   * next whole-device apply from cache does not write the older one back.
   */
  setPeerEndpoint(w: EndpointWrite): Promise<void> {
    return this.#serial(async () => {
      const ifname = this.#o.settings().ifname;
      const cur = this.#byId.get(w.peerId);
      if (cur && cur.public_key === w.publicKey && cur.endpoint !== w.endpoint) {
        this.#putPeer({ ...cur, endpoint: w.endpoint });
        this.#cache.schedule();
        // The model follows: the device gets this endpoint below.
        const a = this.#applied.get(w.publicKey);
        if (a) {
          try {
            const peer = normaliseDesiredPeer({ publicKey: w.publicKey, endpoint: w.endpoint, allowedIps: [] });
            this.#applied.set(w.publicKey, { id: a.id, peer: { ...a.peer, endpoint: peer.endpoint } });
          } catch {
            this.#basis = null;
          }
        }
      }
      await this.#o.kernel.updatePeers(ifname, [{ publicKey: w.publicKey, endpoint: w.endpoint, persistentKeepalive: 0 }]);
      this.#written.set(w.publicKey, w.endpoint);
      if (this.#defers(w.publicKey, w.keepaliveSec)) {
        const a = this.#applied.get(w.publicKey);
        if (a) this.#applied.set(w.publicKey, { ...a, peer: { ...a.peer, keepalive: 0 } });
        this.#deferKeepalive(w.publicKey, w.keepaliveSec);
      } else await this.#o.kernel.updatePeers(ifname, [{ publicKey: w.publicKey, persistentKeepalive: w.keepaliveSec }]);
    });
  }

  /** Configured peers as the NAT refresh sees them: peer id, key, kernel endpoint, last handshake. */
  async natPeers(): Promise<Array<{ peerId: string; publicKey: string; endpoint: string | null; lastHandshakeMs: number | null }>> {
    const dev = await this.#o.kernel.readDevice(this.#o.settings().ifname);
    const idByKey = this.#idByKey;
    return (dev?.peers ?? []).flatMap((p) => {
      const id = idByKey.get(p.publicKey);
      return id === undefined ? [] : [{ peerId: id, publicKey: p.publicKey, endpoint: p.endpoint, lastHandshakeMs: p.lastHandshakeMs }];
    });
  }

  /** Reads the device (null when absent or unreadable). */
  async readDevice(): Promise<WgDevice | null> {
    return this.#o.kernel.readDevice(this.#o.settings().ifname).catch(() => null);
  }

  /** Peers configured on the interface right now (heartbeat `peer_count`). */
  async peerCount(): Promise<number> {
    return (await this.readDevice())?.peers.length ?? 0;
  }

  /** The `plexd peers` view: every known peer plus anything on the device we do not know. */
  async peerViews(): Promise<PeerView[]> {
    const d = this.desired();
    const dev = await this.readDevice();
    const byKey = new Map((dev?.peers ?? []).map((p) => [p.publicKey, p]));
    const views: PeerView[] = [];
    const self = this.#o.self();
    for (const p of this.#byId.values()) {
      if (p.id === self.nodeId) continue;
      const w = byKey.get(p.public_key);
      byKey.delete(p.public_key);
      views.push({
        id: p.id,
        mesh_ip: p.mesh_ip,
        public_key: p.public_key,
        endpoint: w?.endpoint ?? p.endpoint,
        last_handshake: w?.lastHandshakeMs ? new Date(w.lastHandshakeMs).toISOString() : null,
        rx_bytes: w?.rxBytes ?? 0,
        tx_bytes: w?.txBytes ?? 0,
        visible: d.visible.has(p.id),
        configured: w !== undefined,
      });
    }
    for (const w of byKey.values()) {
      views.push({
        id: this.#knownKeys.get(w.publicKey) ?? "",
        mesh_ip: "",
        public_key: w.publicKey,
        endpoint: w.endpoint ?? "",
        last_handshake: w.lastHandshakeMs ? new Date(w.lastHandshakeMs).toISOString() : null,
        rx_bytes: w.rxBytes,
        tx_bytes: w.txBytes,
        visible: false,
        configured: true,
      });
    }
    return views;
  }

  /**
   * Deregistration teardown (lifecycle.md §14.2 step 4): remove all peers, delete the interface
   * (routes and addresses go with it) and the `inet plexd` table. Each step is attempted.
   */
  teardown(): Promise<ApplyOutcome> {
    this.#cancelDeferred();
    return this.#serial(async () => {
      // Local state is kept unless purged; either way nothing may be written after this.
      await this.#cache.flush();
      this.#basis = null;
      const k = this.#o.kernel;
      const s = this.#o.settings();
      const corrections: Correction[] = [];
      const errors: ApplyOutcome["errors"] = [];
      try {
        const dev = await k.readDevice(s.ifname);
        if (dev && dev.peers.length > 0 && dev.privateKey) {
          await k.applyDevice({ ifname: s.ifname, privateKey: dev.privateKey, peers: [] });
          corrections.push({ type: "peers_removed", detail: `${dev.peers.length} peers` });
        }
      } catch (err) {
        errors.push({ step: "peers", message: (err as Error).message });
      }
      try {
        await k.deleteInterface(s.ifname);
        corrections.push({ type: "interface_deleted", detail: s.ifname });
      } catch (err) {
        errors.push({ step: "interface", message: (err as Error).message });
      }
      if (this.#o.firewall) {
        try {
          await this.#o.firewall.remove();
          corrections.push({ type: "firewall_deleted", detail: "table inet plexd" });
        } catch (err) {
          errors.push({ step: "firewall", message: (err as Error).message });
        }
      }
      return { corrections, errors };
    });
  }
}
