/**
 * SIGHUP / `service.reload_config` (lifecycle.md §14.1): keys marked **R** in config.md apply
 * live; every other changed key is reported as `restart_required` and keeps its running value,
 * so the agent never runs with half of a change it cannot make (e.g. a new interface name).
 */
import { diffConfig, RELOADABLE_KEYS, type Config } from "../config/index.ts";

/** What a reload does. */
export interface ReloadPlan {
  /** Every changed key (config.md key paths). */
  readonly changed: string[];
  /** Changed keys that apply live. */
  readonly applied: string[];
  /** Changed keys that need a restart; their running value is kept. */
  readonly restartRequired: string[];
  /** The config to run with: the current one plus the live keys from the new file. */
  readonly next: Config;
}

function getPath(o: unknown, path: string): unknown {
  let cur = o;
  for (const k of path.split(".")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

function setPath(o: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split(".");
  let cur = o;
  for (const k of parts.slice(0, -1)) {
    const next = cur[k];
    if (next === null || typeof next !== "object") return;
    cur = next as Record<string, unknown>;
  }
  cur[parts.at(-1)!] = structuredClone(value);
}

/** Pure: compares the running config with a freshly loaded one. */
export function planReload(current: Config, loaded: Config): ReloadPlan {
  const d = diffConfig(current, loaded);
  const applied = d.changedKeys.filter((k) => RELOADABLE_KEYS.includes(k));
  const next = structuredClone(current) as Config;
  for (const k of applied) setPath(next as unknown as Record<string, unknown>, k, getPath(loaded, k));
  return { changed: d.changedKeys, applied, restartRequired: d.restartRequiredKeys, next };
}
