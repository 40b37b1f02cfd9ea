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
import { diffDevice, keepRoamedEndpoint } from "../kernel/index.ts";
import type { DeviceChanges, Kernel, WgDevice } from "../kernel/types.ts";
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

/** Firewall applier seam (the policy compiler plugs in here); absent = no firewall management. */
export interface MeshFirewall {
  /** Makes `inet plexd` match the rendered ruleset; true when it had to change it. */
  sync(policies: readonly Policy[], desired: MeshDesired): Promise<boolean>;
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
    const plan = diffDevice(actual, d.device, { keepEndpoint: keepRoamedEndpoint(), now: this.#now });
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
      const ch = await k.applyDevice(d.device, { keepEndpoint: keepRoamedEndpoint(), now: this.#now });
      corrections.push(...deviceCorrections(ch, d.ifname, this.#names(d)));
    });
    if (this.#o.firewall) {
      const fw = this.#o.firewall;
      await step("firewall", async () => {
        if (await fw.sync(this.#policies, d)) corrections.push({ type: "firewall_restored", detail: "table inet plexd differed from desired ruleset" });
      });
    }
    for (const s of d.skippedRules) this.#log.warn("policy rule skipped: address outside the mesh", { policy: s.policyId, rule: s.index, reason: s.reason });
    this.#lastApplyAt = this.#now();
    this.#healthy = errors.length === 0;
    return { corrections, errors };
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
      try {
        await k.applyFirewall({ family: "inet", table: "plexd", ops: [{ op: "deleteTable" }] });
        corrections.push({ type: "firewall_deleted", detail: "table inet plexd" });
      } catch (err) {
        const code = String((err as { code?: string }).code ?? "");
        // No table (never created, or the firewall is not managed) is the goal state.
        if (code !== "ENOENT" && code !== "NO_ADDON") errors.push({ step: "firewall", message: (err as Error).message });
      }
      return { corrections, errors };
    });
  }
}
