/**
 * Event handlers (protocol.md §9) for the journal dispatcher. Every handler is declarative
 * (it changes the desired state; the mesh writes the difference), so running it twice changes
 * nothing the second time. Peer events take the mesh's fast path: one peer's delta against the
 * model of what was applied, O(changed) (docs/decisions.md "Mesh apply fast path"); the
 * periodic reconcile verifies against the kernel. With `ctx.dryRun` nothing is written and the
 * change list is returned (planned against a fresh read-back). Schema failures are permanent
 * (`dead`), kernel failures retryable.
 */
import * as v from "valibot";
import { DataEntrySchema, parsePeer, PolicySchema, SecretRefSchema, type Peer } from "../controlplane/schemas.ts";
import { HandlerError, type EventHandler } from "../journal/index.ts";
import type { Logger } from "../log/index.ts";
import type { ApplyOutcome, Correction, MeshController } from "../mesh/controller.ts";
import type { NodeStateStore } from "./node-state.ts";
import { keysFromRotationEvent, type SigningKeyStore } from "./signing.ts";

/** Collaborators of the handlers. */
export interface HandlerDeps {
  readonly mesh: MeshController;
  readonly signing: SigningKeyStore;
  readonly nodeState: NodeStateStore;
  readonly triggerReconcile: (reason: string) => void;
  readonly rotateKeys: (reason: string) => void;
  readonly log: Logger;
  readonly now?: () => number;
}

const fmt = (c: Correction) => `${c.type} ${c.detail}`;

function permanent(message: string): HandlerError {
  return new HandlerError(message, { retryable: false });
}

function peerIdOf(payload: unknown): string | undefined {
  if (payload === null || typeof payload !== "object") return undefined;
  const p = payload as Record<string, unknown>;
  const id = typeof p.id === "string" && p.id !== "" ? p.id : p.peer_id;
  return typeof id === "string" && id !== "" ? id : undefined;
}

function fullPeer(payload: unknown): Peer {
  const r = parsePeer(payload, true);
  if (!r.ok) throw permanent(`invalid peer payload: ${r.reason}`);
  return r.peer;
}

/** Dry run: what the whole-mesh apply of `next` would change (O(peers); replay only). */
async function planPeers(mesh: MeshController, next: Peer[]): Promise<string[]> {
  return (await mesh.plan(next)).map(fmt);
}

function outcome(r: ApplyOutcome): string[] {
  if (r.errors.length > 0) {
    throw new HandlerError(`mesh apply failed: ${r.errors.map((e) => `${e.step}: ${e.message}`).join("; ")}`, { retryable: true });
  }
  return r.corrections.map(fmt);
}

/** Builds the handler table for the dispatcher. */
export function createHandlers(d: HandlerDeps): Record<string, EventHandler> {
  const now = d.now ?? Date.now;
  const { mesh } = d;
  return {
    peer_added: async (_e, payload, ctx) => {
      const p = fullPeer(payload);
      // A peer id owns one entry; another entry holding the same key is stale.
      if (ctx.dryRun) return planPeers(mesh, mesh.peers.filter((x) => x.id !== p.id && x.public_key !== p.public_key).concat(p));
      return outcome(await mesh.upsertPeer(p));
    },
    peer_removed: async (_e, payload, ctx) => {
      const id = peerIdOf(payload);
      if (id === undefined) throw permanent("peer_removed payload has no peer_id");
      if (ctx.dryRun) return mesh.peer(id) ? planPeers(mesh, mesh.peers.filter((x) => x.id !== id)) : [];
      return outcome(await mesh.removePeer(id));
    },
    peer_key_rotated: async (_e, payload, ctx) => {
      const p = fullPeer(payload);
      const old = mesh.peer(p.id);
      const merged: Peer = { ...p, endpoint: p.endpoint !== "" ? p.endpoint : (old?.endpoint ?? "") };
      if (ctx.dryRun) return planPeers(mesh, mesh.peers.filter((x) => x.id !== p.id && x.public_key !== p.public_key).concat(merged));
      return outcome(await mesh.upsertPeer(merged));
    },
    peer_endpoint_changed: async (_e, payload, ctx) => {
      const r = parsePeer(payload, false);
      if (!r.ok) throw permanent(`invalid peer_endpoint_changed payload: ${r.reason}`);
      const old = mesh.peer(r.peer.id);
      if (!old) return []; // unknown peer: nothing to do (lifecycle.md §5.4)
      // The roaming rule (recent handshake keeps the kernel's endpoint) is applied by the mesh.
      if (ctx.dryRun) return planPeers(mesh, mesh.peers.map((x) => (x.id === old.id ? { ...x, endpoint: r.peer.endpoint } : x)));
      return outcome(await mesh.setPeerEndpointFromEvent(old.id, r.peer.endpoint));
    },
    policy_updated: async (_e, payload, ctx) => {
      let changes: string[] = [];
      const raw = payload !== null && typeof payload === "object" ? (payload as Record<string, unknown>).policies : undefined;
      if (raw !== undefined && raw !== null) {
        const r = v.safeParse(v.array(PolicySchema), raw);
        if (!r.success) throw permanent(`invalid policies: ${r.issues[0]?.message ?? "invalid"}`);
        if (ctx.dryRun) changes = (await mesh.plan(mesh.peers, r.output)).map(fmt);
        else {
          mesh.commit({ policies: r.output });
          changes = outcome(await mesh.apply());
        }
      }
      if (ctx.dryRun) return [...changes, "reconcile"];
      d.triggerReconcile("policy_updated");
      return changes;
    },
    rotate_keys: async (_e, _payload, ctx) => {
      if (ctx.dryRun) return ["rotate_keys: WireGuard key rotation"];
      d.rotateKeys("event");
      return ["rotate_keys: started"];
    },
    signing_key_rotated: async (_e, payload, ctx) => {
      const next = keysFromRotationEvent(payload, d.signing.keys, now());
      if (typeof next === "string") throw permanent(next);
      const r = d.signing.adopt(next, ctx.dryRun);
      if ("rejected" in r) throw permanent(r.rejected);
      return r.changed ? ["signing_keys_updated signing keys rotated"] : [];
    },
    node_state_updated: async (_e, payload, ctx) => {
      const r = v.safeParse(
        v.object({ metadata: v.nullish(v.record(v.string(), v.string()), () => ({})), data: v.nullish(v.array(DataEntrySchema), () => []) }),
        payload,
      );
      if (!r.success) throw permanent(`invalid node_state_updated payload: ${r.issues[0]?.message ?? "invalid"}`);
      const out: string[] = [];
      if (d.nodeState.setMetadata(r.output.metadata, ctx.dryRun)) out.push("metadata_updated metadata updated");
      if (d.nodeState.setData(r.output.data, ctx.dryRun)) out.push("data_updated data updated");
      return out;
    },
    node_secrets_updated: async (_e, payload, ctx) => {
      const r = v.safeParse(v.object({ secret_refs: v.nullish(v.array(SecretRefSchema), () => []) }), payload);
      if (!r.success) throw permanent(`invalid node_secrets_updated payload: ${r.issues[0]?.message ?? "invalid"}`);
      return d.nodeState.setSecretRefs(r.output.secret_refs, ctx.dryRun) ? ["secret_refs_updated secret refs updated"] : [];
    },
  };
}
