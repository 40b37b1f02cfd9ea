/**
 * Last verified desired state on disk (`cache/peers.json`, `cache/policies.json`), restored at
 * start before any CP call so an offline restart rebuilds the tunnels (lifecycle.md §2 step 10,
 * §12). Written atomically, 0600, directory 0700.
 */
import { randomBytes } from "node:crypto";
import { renameSync } from "node:fs";
import { chmod, open, unlink } from "node:fs/promises";
import { join } from "node:path";
import * as v from "valibot";
import { parsePeers, PolicySchema, type Peer, type Policy } from "../controlplane/schemas.ts";
import { ensurePrivateDir, FILE_MODE, readJsonFile, StoreError, writeFileAtomic } from "../store/index.ts";

/** Cache file names below `data_dir`. */
export const CacheFiles = { dir: "cache", peers: "cache/peers.json", policies: "cache/policies.json" } as const;

/** What the cache holds; `found` false when no cache file existed. */
export interface MeshCache {
  readonly peers: Peer[];
  readonly policies: Policy[];
  readonly found: boolean;
  /** Items that failed validation (skipped). */
  readonly rejected: number;
}

const PoliciesFile = v.array(v.unknown());

/**
 * Reads the cache. Invalid items are skipped one by one (the same tolerant rules as CP input).
 * @throws StoreError for an unreadable or non-JSON file (the caller logs and starts empty)
 */
export function readMeshCache(dataDir: string): MeshCache {
  const rawPeers = readJsonFile(join(dataDir, CacheFiles.peers), v.unknown());
  const rawPolicies = readJsonFile(join(dataDir, CacheFiles.policies), PoliciesFile);
  const p = parsePeers(rawPeers ?? []);
  const policies: Policy[] = [];
  let rejected = p.rejected.length;
  for (const item of rawPolicies ?? []) {
    const r = v.safeParse(PolicySchema, item);
    if (r.success) policies.push(r.output);
    else rejected++;
  }
  return { peers: p.peers, policies, found: rawPeers !== undefined || rawPolicies !== undefined, rejected };
}

// Compact JSON: 10,000 peers are ~2 MB this way, half the pretty-printed size and time.

/** Persists peers (full, unfiltered list) atomically. */
export function writePeersCache(dataDir: string, peers: readonly Peer[]): void {
  ensurePrivateDir(join(dataDir, CacheFiles.dir));
  writeFileAtomic(join(dataDir, CacheFiles.peers), `${JSON.stringify(peers)}\n`);
}

/** Persists policies atomically. */
export function writePoliciesCache(dataDir: string, policies: readonly Policy[]): void {
  ensurePrivateDir(join(dataDir, CacheFiles.dir));
  writeFileAtomic(join(dataDir, CacheFiles.policies), `${JSON.stringify(policies)}\n`);
}

/** Default delay between an event's change and the peers cache write. */
export const CACHE_DEBOUNCE_MS = 500;

/**
 * The peers cache written behind the event fast path (docs/decisions.md "Mesh apply fast
 * path"): a change schedules one write at most `delayMs` later, coalescing every change in
 * between; `flush()` writes at once (stop, teardown). Writes are asynchronous (temp file,
 * write, fsync, rename, fsync directory — never torn) and versioned: a synchronous
 * `writeNow` (reconcile, registration) supersedes an asynchronous write still in flight, whose
 * rename is then skipped, so an older list can never land over a newer one.
 */
export class PeersCacheWriter {
  readonly #dataDir: string;
  readonly #snapshot: () => readonly Peer[];
  readonly #delayMs: number;
  readonly #onError: (err: Error) => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #dirty = false;
  /** Version of the in-memory list; bumped on every change. */
  #version = 0;
  /** Highest version on disk. */
  #written = 0;
  #chain: Promise<void> = Promise.resolve();

  constructor(o: { dataDir: string; snapshot: () => readonly Peer[]; delayMs?: number; onError: (err: Error) => void }) {
    this.#dataDir = o.dataDir;
    this.#snapshot = o.snapshot;
    this.#delayMs = o.delayMs ?? CACHE_DEBOUNCE_MS;
    this.#onError = o.onError;
  }

  /** True while a change is not yet on disk. */
  get pending(): boolean {
    return this.#dirty;
  }

  /** The list changed: write it within the debounce delay. */
  schedule(): void {
    this.#version++;
    this.#dirty = true;
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, this.#delayMs);
    // The stop path flushes explicitly; a pending write must not keep a finished process alive.
    (this.#timer as { unref?: () => void }).unref?.();
  }

  /**
   * Writes `peers` synchronously now (it supersedes anything pending).
   * @throws StoreError when the file cannot be written
   */
  writeNow(peers: readonly Peer[]): void {
    this.#cancelTimer();
    const v = ++this.#version;
    this.#dirty = false;
    try {
      writePeersCache(this.#dataDir, peers);
    } catch (err) {
      this.#dirty = true;
      throw err;
    }
    this.#written = Math.max(this.#written, v);
  }

  /** Writes a pending change now; resolves when it (and any earlier write) is on disk. */
  flush(): Promise<void> {
    this.#cancelTimer();
    if (!this.#dirty) return this.#chain;
    this.#dirty = false;
    const v = this.#version;
    const text = `${JSON.stringify(this.#snapshot())}\n`;
    this.#chain = this.#chain.then(() =>
      this.#writeAsync(v, text).catch((err: unknown) => {
        if (this.#written < v) this.#dirty = true; // the next flush (stop) tries again
        this.#onError(err as Error);
      }),
    );
    return this.#chain;
  }

  #cancelTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #writeAsync(v: number, text: string): Promise<void> {
    if (v <= this.#written) return;
    const dir = join(this.#dataDir, CacheFiles.dir);
    const path = join(this.#dataDir, CacheFiles.peers);
    const tmp = join(dir, `.peers.json.${randomBytes(6).toString("hex")}.tmp`);
    let renamed = false;
    try {
      ensurePrivateDir(dir);
      const fh = await open(tmp, "wx", FILE_MODE);
      try {
        await fh.writeFile(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await chmod(tmp, FILE_MODE); // umask may have narrowed or widened the create mode
      if (v <= this.#written) return; // a synchronous write of a newer list got there first
      // Synchronous on purpose: no await between the version check and the rename.
      renameSync(tmp, path);
      renamed = true;
      this.#written = v;
      const d = await open(dir, "r");
      try {
        await d.sync();
      } finally {
        await d.close();
      }
    } catch (err) {
      throw new StoreError("io", path, `atomic write failed: ${(err as Error).message}`, { cause: err });
    } finally {
      if (!renamed) await unlink(tmp).catch(() => undefined);
    }
  }
}
