/**
 * The mesh subsystem: owns the desired peer set and policies (the last verified CP state),
 * persists them to the cache, and makes the kernel match (lifecycle.md §4.2) — always computed
 * against a fresh read-back, never against the previous message. Writes are serialised; a
 * failing step is recorded and the other steps still run.
 *
 * Nothing here tears anything down because the CP is away: only `teardown()` (deregister)
 * removes the interface.
 */
import type { Logger } from "../log/index.ts";
import { nullLogger } from "../log/index.ts";
import type { Peer, Policy } from "../controlplane/schemas.ts";
import { diffDevice, keepRoamedEndpoint, ROAMING_WINDOW_MS } from "../kernel/index.ts";
import type { DeviceChanges, EndpointKeepRule, Kernel, WgDevice } from "../kernel/types.ts";
import { writePeersCache, writePoliciesCache } from "./cache.ts";
import { computeDesired, type MeshDesired, type MeshSelf, type MeshSettings } from "./desired.ts";

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
  #peers: Peer[] = [];
  #policies: Policy[] = [];
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

  constructor(opts: MeshControllerOptions) {
    this.#o = opts;
    this.#log = opts.logger ?? nullLogger;
    this.#now = opts.now ?? Date.now;
  }

  get peers(): readonly Peer[] {
    return this.#peers;
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
    this.#peers = [...peers];
    this.#policies = [...policies];
  }

  /**
   * Replaces peers and/or policies and persists them to the cache (only what was given).
   * @throws StoreError when the cache cannot be written
   */
  commit(next: { peers?: readonly Peer[]; policies?: readonly Policy[] }): void {
    if (next.peers) {
      this.#peers = [...next.peers];
      writePeersCache(this.#o.dataDir, this.#peers);
    }
    if (next.policies) {
      this.#policies = [...next.policies];
      writePoliciesCache(this.#o.dataDir, this.#policies);
    }
  }

  /** The desired mesh for the current (or a hypothetical) state. */
  desired(peers: readonly Peer[] = this.#peers, policies: readonly Policy[] = this.#policies): MeshDesired {
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
    for (const p of this.#peers) {
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
  async plan(peers: readonly Peer[] = this.#peers, policies: readonly Policy[] = this.#policies): Promise<Correction[]> {
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
    const d = this.desired();
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
    });
    if (this.#o.firewall) {
      const fw = this.#o.firewall;
      const self = this.#o.self();
      await step("firewall", async () => {
        const peers = this.#peers.filter((p) => p.id !== self.nodeId && p.mesh_ip !== "").map((p) => ({ id: p.id, meshIp: p.mesh_ip }));
        const got = await fw.apply({ policies: this.#policies, local: { nodeId: self.nodeId, meshIp: self.meshIp }, peers });
        corrections.push(...got.filter((c) => c.type === "firewall_restored"));
      });
    }
    for (const s of d.skippedRules) this.#log.warn("policy rule skipped: address outside the mesh", { policy: s.policyId, rule: s.index, reason: s.reason });
    this.#lastApplyAt = this.#now();
    this.#healthy = errors.length === 0;
    return { corrections, errors };
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
      const i = this.#peers.findIndex((p) => p.id === w.peerId && p.public_key === w.publicKey);
      if (i >= 0 && this.#peers[i]!.endpoint !== w.endpoint) {
        this.#peers[i] = { ...this.#peers[i]!, endpoint: w.endpoint };
        try {
          writePeersCache(this.#o.dataDir, this.#peers);
        } catch (err) {
          this.#log.warn("peer cache not updated with the NAT endpoint", { peer_id: w.peerId, error: (err as Error).message });
        }
      }
      await this.#o.kernel.updatePeers(ifname, [{ publicKey: w.publicKey, endpoint: w.endpoint, persistentKeepalive: 0 }]);
      this.#written.set(w.publicKey, w.endpoint);
      await this.#o.kernel.updatePeers(ifname, [{ publicKey: w.publicKey, persistentKeepalive: w.keepaliveSec }]);
    });
  }

  /** Configured peers as the NAT refresh sees them: peer id, key, kernel endpoint, last handshake. */
  async natPeers(): Promise<Array<{ peerId: string; publicKey: string; endpoint: string | null; lastHandshakeMs: number | null }>> {
    const dev = await this.#o.kernel.readDevice(this.#o.settings().ifname);
    const idByKey = new Map(this.#peers.map((p) => [p.public_key, p.id]));
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
    for (const p of this.#peers) {
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
    return this.#serial(async () => {
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
