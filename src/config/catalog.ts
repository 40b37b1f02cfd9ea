/**
 * The list of known keys, derived from the schema once: drives env overrides, dump formatting,
 * non-default reporting and reload diffs, so no second key list can drift from the schema.
 */
import { leafMeta, sectionTarget, type LeafKind, type LeafMeta } from "./fields.ts";
import { ConfigObjectSchema } from "./schema.ts";
import { joinPath } from "./yaml.ts";

/** One known leaf key. Paths inside lists of mappings use `[]` (`hooks.definitions[].timeout`). */
export interface KeyInfo {
  path: string;
  kind: LeafKind;
  meta: LeafMeta;
}

interface Walkable {
  type?: string;
  wrapped?: object;
  entries?: Record<string, object>;
  item?: object;
}

function walk(schema: object, path: string, out: KeyInfo[]): void {
  const s = schema as Walkable;
  if (s.type === "optional" && s.wrapped) return walk(s.wrapped, path, out);
  const target = sectionTarget(schema);
  if (target) return walk(target, path, out);
  const meta = leafMeta(schema);
  if (meta) {
    out.push({ path, kind: meta.kind, meta });
    if (meta.kind === "objects" && s.item) walk(s.item, `${path}[]`, out);
    return;
  }
  if (s.entries) for (const [k, child] of Object.entries(s.entries)) walk(child, joinPath(path, k), out);
}

let cached: KeyInfo[] | undefined;

/** Every leaf key of the schema, in schema order. */
export function allKeys(): readonly KeyInfo[] {
  if (!cached) {
    cached = [];
    walk(ConfigObjectSchema, "", cached);
  }
  return cached;
}

let byPath: Map<string, KeyInfo> | undefined;

/** Looks a key up by path; list indices may be given as `[3]` or `[]`. */
export function keyInfo(path: string): KeyInfo | undefined {
  byPath ??= new Map(allKeys().map((k) => [k.path, k]));
  return byPath.get(path.replace(/\[\d+\]/g, "[]"));
}

/** Top-level leaves (not inside lists): the unit of env overrides, sources and diffs. */
export function topLevelKeys(): readonly KeyInfo[] {
  return allKeys().filter((k) => !k.path.includes("[]"));
}

/** Keys settable by the generic `PLEXD_*` rule: scalars and scalar lists, not maps or object lists. */
export function envKeys(): readonly KeyInfo[] {
  return topLevelKeys().filter((k) => k.kind !== "map" && k.kind !== "objects");
}

/** `heartbeat.interval` → `PLEXD_HEARTBEAT_INTERVAL`. */
export function envName(path: string): string {
  return `PLEXD_${path.toUpperCase().replace(/\./g, "_")}`;
}
