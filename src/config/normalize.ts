/**
 * Shape fixes on the raw file tree before merging and validation:
 * `x-*` extension keys removed, `api: "<url>"` turned into `api: {url}`, and the hook aliases
 * `sandbox_options.cpu/memory` moved to `resources.*` (config.md §2.16.1).
 */
import type { ConfigIssue } from "./errors.ts";
import { joinPath, type Position } from "./yaml.ts";

/** Free-form maps whose keys are data, so `x-` keys there are kept (e.g. an `x-api-key` header). */
const FREE_MAPS = new Set(["metadata", "telemetry.tracing.headers"]);

/** Plain mapping check (YAML mappings become plain objects). */
export function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function stripExtensions(node: unknown, path: string): void {
  if (Array.isArray(node)) {
    node.forEach((item, i) => stripExtensions(item, joinPath(path, i)));
  } else if (isPlainObject(node)) {
    if (FREE_MAPS.has(path)) return;
    for (const key of Object.keys(node)) {
      if (key.startsWith("x-")) delete node[key];
      else stripExtensions(node[key], joinPath(path, key));
    }
  }
}

function copyPosition(positions: Map<string, Position>, from: string, to: string): void {
  const p = positions.get(from);
  if (p && !positions.has(to)) positions.set(to, p);
}

/** Normalises `raw` in place; returns problems that the schema could not name well. */
export function normalizeRaw(raw: Record<string, unknown>, positions: Map<string, Position>): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  stripExtensions(raw, "");
  if (typeof raw.api === "string") {
    raw.api = { url: raw.api };
    copyPosition(positions, "api", "api.url");
  }
  const hooks = raw.hooks;
  const defs = isPlainObject(hooks) && Array.isArray(hooks.definitions) ? (hooks.definitions as unknown[]) : [];
  defs.forEach((def, i) => {
    if (!isPlainObject(def) || !isPlainObject(def.sandbox_options)) return;
    const so = def.sandbox_options;
    const base = `hooks.definitions[${i}].`;
    for (const key of ["cpu", "memory"] as const) {
      if (!(key in so)) continue;
      const aliasPath = `${base}sandbox_options.${key}`;
      if (def.resources !== undefined && !isPlainObject(def.resources)) continue; // schema reports it
      const resources = (def.resources ??= {}) as Record<string, unknown>;
      if (key in resources) {
        const p = positions.get(aliasPath);
        issues.push({ path: aliasPath, problem: `alias of resources.${key}, which is also set; set only one`, ...(p ? { line: p.line, col: p.col } : {}) });
        delete so[key];
        continue;
      }
      resources[key] = so[key];
      delete so[key];
      copyPosition(positions, aliasPath, `${base}resources.${key}`);
    }
  });
  return issues;
}
