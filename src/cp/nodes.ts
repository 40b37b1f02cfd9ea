/**
 * Node registry: registration, peers (with one PSK per pair), endpoints, WireGuard key rotation,
 * removal, and the heartbeat liveness state machine (online → unreachable → offline → online).
 */
import type { Db } from "./db.ts";
import type { EventLog } from "./events.ts";
import type { Ipam } from "./ipam.ts";
import type { TokenStore } from "./tokens.ts";
import { Policies, visible } from "./policies.ts";
import { random32, randomId } from "./secrets-crypto.ts";
import { HttpError, conflict, unauthorized } from "./errors.ts";

/** A row of the nodes table. */
export interface NodeRow {
  id: string;
  hostname: string;
  public_key: string;
  mesh_ip: string;
  nsk: string | null;
  reg_metadata: string;
  metadata: string;
  capabilities: string | null;
  endpoint: string;
  nat_type: string;
  status: "online" | "unreachable" | "offline" | "removed";
  last_seen: number;
  last_heartbeat: string | null;
  registered_at: number;
  removed_at: number | null;
  next_seq: number;
  pending_reconcile: number;
  pending_rotate: number;
}

/** Peer object of protocol.md §5. */
export interface Peer {
  id: string;
  public_key: string;
  mesh_ip: string;
  endpoint: string;
  allowed_ips: string[];
  psk: string;
}

/** Informational event sent to peers when a node misses 3 heartbeats or comes back from that. */
export const PEER_STATUS_EVENT = "peer_status_changed";

export interface RegisterInput {
  token: string;
  public_key: string;
  hostname: string;
  metadata?: Record<string, string> | null | undefined;
  capabilities?: unknown;
}

export class Nodes {
  constructor(
    private readonly db: Db,
    private readonly events: EventLog,
    private readonly ipam: Ipam,
    private readonly tokens: TokenStore,
    private readonly policies: Policies,
    private readonly signingKey: () => string,
    private readonly now: () => number = Date.now,
  ) {}

  /** Any node, removed or not. */
  get(id: string): NodeRow | undefined {
    return (this.db.query("SELECT * FROM nodes WHERE id = ?").get(id) as NodeRow | null) ?? undefined;
  }

  /** The active node whose NSK is `nsk`. */
  byNsk(nsk: string): NodeRow | undefined {
    return (
      (this.db.query("SELECT * FROM nodes WHERE nsk = ? AND removed_at IS NULL").get(nsk) as NodeRow | null) ??
      undefined
    );
  }

  /** Every node not removed. */
  active(): NodeRow[] {
    return this.db.query("SELECT * FROM nodes WHERE removed_at IS NULL ORDER BY registered_at, id").all() as NodeRow[];
  }

  /** The PSK shared by nodes a and b (created on first use; same value for both sides). */
  psk(a: string, b: string): string {
    const [x, y] = a < b ? [a, b] : [b, a];
    const row = this.db.query("SELECT psk FROM psks WHERE a = ? AND b = ?").get(x, y) as { psk: string } | null;
    if (row) return row.psk;
    const psk = random32();
    this.db.query("INSERT INTO psks (a, b, psk) VALUES (?, ?, ?)").run(x, y, psk);
    return psk;
  }

  /** `peer` as seen by `viewerId`. */
  peerView(viewerId: string, peer: NodeRow): Peer {
    return {
      id: peer.id,
      public_key: peer.public_key,
      mesh_ip: peer.mesh_ip,
      endpoint: peer.endpoint,
      allowed_ips: [`${peer.mesh_ip}/32`],
      psk: this.psk(viewerId, peer.id),
    };
  }

  /** Full peer list for a node (before policy filtering): every other active, non-offline node. */
  peersOf(nodeId: string): Peer[] {
    return this.active()
      .filter((n) => n.id !== nodeId && n.status !== "offline")
      .map((n) => this.peerView(nodeId, n));
  }

  /** Peers the node may see under the current policies (register response). */
  visiblePeersOf(node: NodeRow): Peer[] {
    const pols = this.policies.list();
    return this.active()
      .filter((n) => n.id !== node.id && n.status !== "offline" && visible(pols, node, n))
      .map((n) => this.peerView(node.id, n));
  }

  /** Sends one event to every other active node, payload built per receiver. */
  private toOthers(nodeId: string, type: string, payload: (viewerId: string) => unknown): void {
    for (const n of this.active()) if (n.id !== nodeId) this.events.publish(n.id, type, payload(n.id));
  }

  /** Registration (protocol.md §6.1). Re-registration with an existing public key keeps id and IP. */
  register(input: RegisterInput): Record<string, unknown> {
    const problem = this.tokens.check(input.token);
    if (problem) throw unauthorized(`bootstrap token ${problem === "unknown" ? "invalid" : problem}`);
    const now = this.now();
    const nsk = random32();
    let wasOffline = false;
    let fresh = false;
    const node = this.db.transaction((): NodeRow => {
      const byKey = this.db
        .query("SELECT * FROM nodes WHERE public_key = ? AND removed_at IS NULL")
        .get(input.public_key) as NodeRow | null;
      const byHost = this.db
        .query("SELECT * FROM nodes WHERE hostname = ? AND removed_at IS NULL")
        .get(input.hostname) as NodeRow | null;
      if (byHost && (!byKey || byHost.id !== byKey.id)) {
        throw conflict("hostname already registered in tenant", { node_id: byHost.id });
      }
      const meta = JSON.stringify(input.metadata ?? {});
      const caps = input.capabilities === undefined ? null : JSON.stringify(input.capabilities);
      let id: string;
      if (byKey) {
        id = byKey.id;
        wasOffline = byKey.status === "offline";
        this.db
          .query(
            `UPDATE nodes SET hostname = ?, nsk = ?, reg_metadata = ?, capabilities = COALESCE(?, capabilities),
             status = 'online', last_seen = ?, pending_reconcile = 1 WHERE id = ?`,
          )
          .run(input.hostname, nsk, meta, caps, now, id);
      } else {
        fresh = true;
        id = randomId("n");
        this.db
          .query(
            `INSERT INTO nodes (id, hostname, public_key, mesh_ip, nsk, reg_metadata, capabilities, status,
             last_seen, registered_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'online', ?, ?)`,
          )
          .run(id, input.hostname, input.public_key, this.ipam.allocate(), nsk, meta, caps, now, now);
      }
      this.tokens.consume(input.token, id);
      return this.get(id) as NodeRow;
    })();
    if (fresh || wasOffline) this.toOthers(node.id, "peer_added", (v) => this.peerView(v, node));
    return {
      node_id: node.id,
      mesh_ip: node.mesh_ip,
      signing_public_key: this.signingKey(),
      node_secret_key: nsk,
      peers: this.visiblePeersOf(node),
    };
  }

  /** Deregistration or admin removal: IP released (cooldown), PSKs dropped, peers told. */
  remove(id: string): boolean {
    const node = this.get(id);
    if (!node || node.removed_at !== null) return false;
    this.db.transaction(() => {
      this.db.query("UPDATE nodes SET removed_at = ?, nsk = NULL, status = 'removed' WHERE id = ?").run(this.now(), id);
      this.db.query("DELETE FROM psks WHERE a = ? OR b = ?").run(id, id);
      this.ipam.release(node.mesh_ip);
    })();
    this.toOthers(id, "peer_removed", () => ({ peer_id: id }));
    this.events.closeStreams(id);
    return true;
  }

  /** Stores the node's public endpoint; tells peers when it changed; returns peer endpoints. */
  setEndpoint(id: string, endpoint: string, natType: string): { peer_id: string; endpoint: string }[] {
    const node = this.get(id) as NodeRow;
    this.db.query("UPDATE nodes SET endpoint = ?, nat_type = ? WHERE id = ?").run(endpoint, natType, id);
    if (node.endpoint !== endpoint) {
      this.toOthers(id, "peer_endpoint_changed", () => ({ id, peer_id: id, endpoint }));
    }
    return this.peersOf(id)
      .filter((p) => p.endpoint !== "")
      .map((p) => ({ peer_id: p.id, endpoint: p.endpoint }));
  }

  /** WireGuard key rotation (protocol.md §6.5). A retry with the same key changes nothing. */
  rotateKey(id: string, newKey: string): Peer[] {
    const node = this.get(id) as NodeRow;
    if (node.public_key !== newKey) {
      const other = this.db
        .query("SELECT id FROM nodes WHERE public_key = ? AND removed_at IS NULL AND id != ?")
        .get(newKey, id) as { id: string } | null;
      if (other) throw new HttpError(409, "conflict", "public key in use by another node");
      this.db.transaction(() => {
        this.db.query("UPDATE nodes SET public_key = ?, pending_rotate = 0 WHERE id = ?").run(newKey, id);
        // Fresh PSKs with the fresh key: both sides learn them in the same round
        // (updated_peers for this node, peer_key_rotated for each peer).
        this.db.query("DELETE FROM psks WHERE a = ? OR b = ?").run(id, id);
      })();
      const updated = this.get(id) as NodeRow;
      this.toOthers(id, "peer_key_rotated", (v) => this.peerView(v, updated));
    }
    return this.peersOf(id);
  }

  /** Records a heartbeat; brings an unreachable/offline node back. Returns the directives. */
  heartbeat(id: string, body: unknown): { reconcile: boolean; rotate_keys: boolean } {
    const node = this.get(id) as NodeRow;
    this.db
      .query("UPDATE nodes SET last_seen = ?, last_heartbeat = ?, status = 'online', pending_reconcile = 0, pending_rotate = 0 WHERE id = ?")
      .run(this.now(), JSON.stringify(body), id);
    if (node.status === "offline") {
      const back = this.get(id) as NodeRow;
      this.toOthers(id, "peer_added", (v) => this.peerView(v, back));
    } else if (node.status === "unreachable") {
      this.toOthers(id, PEER_STATUS_EVENT, () => ({ peer_id: id, status: "online" }));
    }
    return {
      reconcile: node.pending_reconcile === 1 || node.status === "offline",
      rotate_keys: node.pending_rotate === 1,
    };
  }

  /** Sets one-shot heartbeat directives. */
  setPending(id: string, what: { reconcile?: boolean; rotate?: boolean }): void {
    if (what.reconcile) this.db.query("UPDATE nodes SET pending_reconcile = 1 WHERE id = ?").run(id);
    if (what.rotate) this.db.query("UPDATE nodes SET pending_rotate = 1 WHERE id = ?").run(id);
  }

  /** Liveness sweep: 3 missed intervals → unreachable, 10 → offline (peer_removed to peers). */
  sweep(intervalMs: number): void {
    const now = this.now();
    for (const n of this.active()) {
      const missed = Math.floor((now - n.last_seen) / intervalMs);
      if (missed >= 10 && n.status !== "offline") {
        this.db.query("UPDATE nodes SET status = 'offline' WHERE id = ?").run(n.id);
        this.toOthers(n.id, "peer_removed", () => ({ peer_id: n.id }));
      } else if (missed >= 3 && n.status === "online") {
        this.db.query("UPDATE nodes SET status = 'unreachable' WHERE id = ?").run(n.id);
        this.toOthers(n.id, PEER_STATUS_EVENT, () => ({
          peer_id: n.id,
          status: "unreachable",
          last_seen: new Date(n.last_seen).toISOString(),
        }));
      }
    }
  }

  /** Stores the capability payload. */
  setCapabilities(id: string, caps: unknown): void {
    this.db.query("UPDATE nodes SET capabilities = ? WHERE id = ?").run(JSON.stringify(caps), id);
  }
}
