/**
 * Last verified desired state on disk (`cache/peers.json`, `cache/policies.json`), restored at
 * start before any CP call so an offline restart rebuilds the tunnels (lifecycle.md §2 step 10,
 * §12). Written atomically, 0600, directory 0700.
 */
import { join } from "node:path";
import * as v from "valibot";
import { parsePeers, PolicySchema, type Peer, type Policy } from "../controlplane/schemas.ts";
import { ensurePrivateDir, readJsonFile, writeJsonAtomic } from "../store/index.ts";

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

/** Persists peers (full, unfiltered list) atomically. */
export function writePeersCache(dataDir: string, peers: readonly Peer[]): void {
  ensurePrivateDir(join(dataDir, CacheFiles.dir));
  writeJsonAtomic(join(dataDir, CacheFiles.peers), peers);
}

/** Persists policies atomically. */
export function writePoliciesCache(dataDir: string, policies: readonly Policy[]): void {
  ensurePrivateDir(join(dataDir, CacheFiles.dir));
  writeJsonAtomic(join(dataDir, CacheFiles.policies), policies);
}
