/**
 * WireGuard key rotation (lifecycle.md §10.1) with `private_key.next` crash safety:
 * 1. new clamped key → `private_key.next` (0600);
 * 2. `POST /v1/keys/rotate` (Rotation class, always the same key);
 * 3. one device update with the new key + `updated_peers`, then rename `.next` → `private_key`;
 *    an optional `node_secret_key` is committed first, then the bearer switches;
 * 4. permanent failure / budget spent → delete `.next`, keep the old key, mesh degraded 1 h.
 * `.next` present at start → resume at step 2 with that key. One rotation at a time; triggers
 * within 60 s of the last completed rotation are ignored.
 */
import { existsSync, renameSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import type { CpApi } from "../controlplane/api.ts";
import { RetryClasses, withRetry, type RetryDeps } from "../controlplane/retry.ts";
import type { Peer } from "../controlplane/schemas.ts";
import { generateKeyPair, publicKeyOfBase64, writeNodeSecretKey } from "../identity/index.ts";
import type { Logger } from "../log/index.ts";
import type { MeshController } from "../mesh/controller.ts";
import { fsyncDir, readTextFile, writeFileAtomic } from "../store/index.ts";
import type { NodeContext } from "./node-context.ts";

export const NEXT_KEY_FILE = "private_key.next";

/** Collaborators of {@link KeyRotator}. */
export interface KeyRotatorDeps {
  readonly dataDir: string;
  readonly api: CpApi;
  readonly ctx: NodeContext;
  readonly mesh: MeshController;
  readonly log: Logger;
  readonly on401?: () => void;
  readonly retry?: RetryDeps;
  readonly now?: () => number;
  readonly cooldownMs?: number;
}

/** Outcome of one rotation attempt. */
export type RotationOutcome = "rotated" | "ignored" | "failed" | "unauthorized";

/** Merges `updated` into `peers` by id (updated entries replace, new ones are appended). */
export function mergePeers(peers: readonly Peer[], updated: readonly Peer[]): Peer[] {
  const byId = new Map(peers.map((p) => [p.id, p]));
  for (const u of updated) {
    const old = byId.get(u.id);
    byId.set(u.id, { ...u, endpoint: u.endpoint !== "" ? u.endpoint : (old?.endpoint ?? "") });
  }
  return [...byId.values()];
}

/** See the file comment. */
export class KeyRotator {
  readonly #d: KeyRotatorDeps;
  readonly #now: () => number;
  #running: Promise<RotationOutcome> | undefined;
  #lastDone = -Infinity;
  /** Until when the mesh indicator is degraded after a failed rotation. */
  degradedUntil = 0;

  constructor(deps: KeyRotatorDeps) {
    this.#d = deps;
    this.#now = deps.now ?? Date.now;
  }

  get running(): boolean {
    return this.#running !== undefined;
  }

  get pendingKeyFile(): string {
    return join(this.#d.dataDir, NEXT_KEY_FILE);
  }

  /** Starts a rotation unless one runs or one finished < 60 s ago. */
  trigger(reason: string): Promise<RotationOutcome> {
    if (this.#running) return this.#running;
    if (this.#now() - this.#lastDone < (this.#d.cooldownMs ?? 60_000)) {
      this.#d.log.info("key rotation trigger ignored: a rotation finished less than 60 s ago", { reason });
      return Promise.resolve("ignored");
    }
    return this.#start(reason, undefined);
  }

  /** Crash recovery: resumes at step 2 when `private_key.next` exists. */
  resumeIfPending(): Promise<RotationOutcome> | undefined {
    if (this.#running) return this.#running;
    let key: string | undefined;
    try {
      key = readTextFile(this.pendingKeyFile)?.trim();
    } catch {
      key = undefined;
    }
    if (!key) return undefined;
    this.#d.log.info("resuming an interrupted key rotation");
    return this.#start("resume", key);
  }

  #start(reason: string, key: string | undefined): Promise<RotationOutcome> {
    this.#running = this.#rotate(reason, key).finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #rotate(reason: string, resumedKey: string | undefined): Promise<RotationOutcome> {
    const d = this.#d;
    let privateKey: string;
    let publicKey: string;
    if (resumedKey) {
      privateKey = resumedKey;
      publicKey = publicKeyOfBase64(privateKey);
    } else {
      ({ privateKey, publicKey } = generateKeyPair());
      writeFileAtomic(this.pendingKeyFile, privateKey);
    }
    d.log.info("key rotation started", { reason });
    const nodeId = d.ctx.identity.nodeId;
    const res = await withRetry((_n, signal) => d.api.rotateKeys({ node_id: nodeId, new_public_key: publicKey }, signal), RetryClasses.rotation, d.retry ?? {});
    if (!res.ok) {
      if (res.error.status === 401) {
        // Keep .next: the rotation resumes with the same key once the identity works again.
        d.on401?.();
        return "unauthorized";
      }
      this.#abandon(`rotation failed (${res.reason}): ${res.error.message}`);
      return "failed";
    }
    const r = res.value;
    // One device update: new key + updated peers (mesh.apply reads both).
    d.ctx.update({ privateKey, publicKey });
    d.mesh.commit({ peers: mergePeers(d.mesh.peers, r.updated_peers.peers) });
    const applied = await d.mesh.apply();
    if (applied.errors.length > 0) d.log.warn("key rotation: device update had errors; reconcile will repair", { errors: applied.errors });
    renameSync(this.pendingKeyFile, join(d.dataDir, "private_key"));
    fsyncDir(d.dataDir);
    if (r.node_secret_key !== undefined) {
      writeNodeSecretKey(d.dataDir, r.node_secret_key);
      d.ctx.update({ nodeSecretKey: r.node_secret_key });
    }
    this.#lastDone = this.#now();
    d.log.info("key rotation complete", { public_key: publicKey, updated_peers: r.updated_peers.peers.length });
    return "rotated";
  }

  #abandon(message: string): void {
    try {
      if (existsSync(this.pendingKeyFile)) unlinkSync(this.pendingKeyFile);
    } catch {
      /* best effort; a leftover .next would be resumed next start */
    }
    this.degradedUntil = this.#now() + 3_600_000;
    this.#lastDone = this.#now();
    this.#d.log.error("key rotation abandoned; keeping the old key", { error: message });
  }
}
