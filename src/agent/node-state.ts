/**
 * The Node API file cache written from CP state (nodeapi.md §7): `state/metadata.json`,
 * `state/data/<fname>.json`, `state/secrets.json` (index only). Replace semantics: the whole
 * metadata map and data set; files of vanished keys are removed. Returns the drift correction
 * types of lifecycle.md §9.3 for what changed. The Node API server (another subsystem) reads
 * these files.
 */
import { readdirSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { DataEntrySchema, SecretRefSchema, type DataEntry, type SecretRef } from "../controlplane/schemas.ts";
import { ensurePrivateDir, readJsonFile, writeJsonAtomic } from "../store/index.ts";

/** `<fname>` of nodeapi.md §7. */
export function stateFileName(key: string): string {
  if (/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(key)) return key;
  return encodeURIComponent(key).replace(/^\./, "%2E");
}

/** What the node state holds. */
export interface NodeStateSnapshot {
  metadata: Record<string, string>;
  data: DataEntry[];
  secretRefs: SecretRef[];
}

const safeRead = <S extends v.GenericSchema>(path: string, schema: S): v.InferOutput<S> | undefined => {
  try {
    return readJsonFile(path, schema);
  } catch {
    return undefined; // a corrupt file is healed by the write below
  }
};

function sameRecord(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

/** Persistence of the node state; see the file comment. */
export class NodeStateStore {
  readonly #dir: string;

  constructor(dataDir: string) {
    this.#dir = join(dataDir, "state");
  }

  /** Current metadata map on disk ({} when absent). */
  metadata(): Record<string, string> {
    return safeRead(join(this.#dir, "metadata.json"), v.record(v.string(), v.string())) ?? {};
  }

  /** key → version of the data files on disk. */
  dataVersions(): Map<string, number> {
    const out = new Map<string, number>();
    let names: string[] = [];
    try {
      names = readdirSync(join(this.#dir, "data"));
    } catch {
      return out;
    }
    for (const n of names) {
      if (!n.endsWith(".json")) continue;
      const e = safeRead(join(this.#dir, "data", n), DataEntrySchema);
      if (e) out.set(e.key, e.version);
    }
    return out;
  }

  /** Secret index on disk. */
  secretRefs(): SecretRef[] {
    return safeRead(join(this.#dir, "secrets.json"), v.array(SecretRefSchema)) ?? [];
  }

  /** Replaces the metadata map; returns whether it changed. */
  setMetadata(next: Record<string, string>, dryRun = false): boolean {
    if (sameRecord(this.metadata(), next)) return false;
    if (!dryRun) {
      ensurePrivateDir(this.#dir);
      writeJsonAtomic(join(this.#dir, "metadata.json"), next);
    }
    return true;
  }

  /** Replaces the data set (key → version compared); returns whether anything changed. */
  setData(next: readonly DataEntry[], dryRun = false): boolean {
    const have = this.dataVersions();
    const want = new Map(next.map((e) => [e.key, e]));
    const stale = [...have.keys()].filter((k) => !want.has(k));
    const changed = [...want.values()].filter((e) => have.get(e.key) !== e.version);
    if (stale.length === 0 && changed.length === 0) return false;
    if (dryRun) return true;
    const dir = join(this.#dir, "data");
    ensurePrivateDir(dir);
    for (const e of changed) writeJsonAtomic(join(dir, `${stateFileName(e.key)}.json`), e);
    for (const k of stale) {
      try {
        unlinkSync(join(dir, `${stateFileName(k)}.json`));
      } catch {
        /* already gone */
      }
    }
    return true;
  }

  /** Replaces the secret index; returns whether it changed. */
  setSecretRefs(next: readonly SecretRef[], dryRun = false): boolean {
    const have = new Map(this.secretRefs().map((r) => [r.key, r.version]));
    const same = have.size === next.length && next.every((r) => have.get(r.key) === r.version);
    if (same) return false;
    if (!dryRun) {
      ensurePrivateDir(this.#dir);
      writeJsonAtomic(join(this.#dir, "secrets.json"), next.map((r) => ({ key: r.key, version: r.version })));
    }
    return true;
  }
}
