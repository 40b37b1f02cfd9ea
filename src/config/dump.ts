/** `plexd config dump`, the start log's non-default list, and reload diffs. */
import * as v from "valibot";
import { stringify } from "yaml";
import { topLevelKeys } from "./catalog.ts";
import { redactDisplay, toDisplay, type Display } from "./redact.ts";
import { ConfigSchema, type Config } from "./schema.ts";

/** Options of `dumpConfig`. */
export interface DumpOptions {
  /** Replace secrets by `***` (default true). Only tests and round trips turn this off. */
  redact?: boolean;
}

/** The effective config as a display tree (Go durations, binary sizes), redacted by default. */
export function displayConfig(config: Config, opts: DumpOptions = {}): Display {
  const d = toDisplay(config);
  return opts.redact === false ? d : redactDisplay(d);
}

/** The effective config as YAML text that `loadConfig` reads back to the same config. */
export function dumpConfig(config: Config, opts: DumpOptions = {}): string {
  return stringify(displayConfig(config, opts), { lineWidth: 0, version: "1.2" });
}

let defaults: Config | undefined;

/** The all-defaults config; `api.url` (which has no default) is `""`. */
export function defaultConfig(): Config {
  if (!defaults) {
    defaults = v.parse(ConfigSchema, { api: "https://default.invalid" });
    defaults.api.url = "";
  }
  return structuredClone(defaults);
}

function leafValue(root: unknown, path: string): unknown {
  let node = root;
  for (const seg of path.split(".")) node = (node as Record<string, unknown> | undefined)?.[seg];
  return node;
}

/** A key and its display value. */
export interface KeyValue {
  path: string;
  value: Display;
}

/**
 * Every effective setting that differs from its default, redacted, in schema order — for the
 * one-time start log line. `api.url` is always listed (it has no default).
 */
export function nonDefaults(config: Config): KeyValue[] {
  const cur = displayConfig(config, { redact: false });
  const def = displayConfig(defaultConfig(), { redact: false });
  const shown = displayConfig(config);
  return topLevelKeys()
    .filter((k) => JSON.stringify(leafValue(cur, k.path)) !== JSON.stringify(leafValue(def, k.path)))
    .map((k) => ({ path: k.path, value: (leafValue(shown, k.path) ?? null) as Display }));
}

/**
 * Keys marked **R** in config.md §2: applied live on reload. Lists of mappings count as one key
 * (`hooks.definitions`, `logs.signals`).
 */
export const RELOADABLE_KEYS: readonly string[] = [
  "log_level", "log_format", "mesh.persistent_keepalive", "reconcile.interval", "policy.default",
  "policy.log_denied", "nat_traversal.enabled", "nat_traversal.stun_servers", "nat_traversal.refresh_interval",
  "nat_traversal.timeout", "heartbeat.interval", "observe.enabled", "observe.interval", "observe.batch_interval",
  "observe.metrics", "observe.cgroup.units", "logs.enabled", "logs.signals", "audit.enabled", "actions.enabled",
  "actions.max_concurrent", "actions.max_action_timeout", "hooks.enabled", "hooks.definitions", "node_api.debounce",
  "node_api.secret_fetch_timeout", "integrity.verify_interval", "inventory.enabled", "inventory.interval",
  "inventory.collectors", "schedule.jitter",
];

/** What changed between two configs, split by whether it applies live (`service.reload_config`). */
export function diffConfig(before: Config, after: Config): { changedKeys: string[]; restartRequiredKeys: string[] } {
  const a = toDisplay(before);
  const b = toDisplay(after);
  const changed = topLevelKeys()
    .map((k) => k.path)
    .filter((p) => JSON.stringify(leafValue(a, p)) !== JSON.stringify(leafValue(b, p)));
  return { changedKeys: changed, restartRequiredKeys: changed.filter((p) => !RELOADABLE_KEYS.includes(p)) };
}
