/**
 * Building blocks for the config schema: one helper per value kind of config.md §1.
 *
 * Every helper registers its kind in a side table so that env overrides (§3), `config dump`
 * and the non-default report can walk the schema instead of repeating the key list by hand.
 */
import * as v from "valibot";
import { formatDuration, parseCpu, parseDuration, parseSize } from "./units.ts";

/** Value kinds a leaf key can have. `objects` is a list of mappings (not settable from env). */
export type LeafKind =
  | "duration"
  | "size"
  | "cpu"
  | "bool"
  | "tribool"
  | "int"
  | "float"
  | "string"
  | "enum"
  | "list"
  | "map"
  | "objects";

/** Side-table entry describing a leaf schema. */
export interface LeafMeta {
  kind: LeafKind;
  /** The value is a URL that may carry credentials (redacted in dumps). */
  url?: boolean;
  /** Every value of this map is secret. */
  secretValues?: boolean;
}

const META = new WeakMap<object, LeafMeta>();
/** Sections whose schema is a pipe (normalising transform) in front of an object schema. */
const SECTION = new WeakMap<object, object>();

/** Returns the registered leaf metadata of a schema, if any. */
export function leafMeta(schema: object): LeafMeta | undefined {
  return META.get(schema);
}

/** Returns the object schema behind a normalising section pipe, if any. */
export function sectionTarget(schema: object): object | undefined {
  return SECTION.get(schema);
}

function leaf<T extends object>(schema: T, meta: LeafMeta): T {
  META.set(schema, meta);
  return schema;
}

/** Registers `schema` as a section whose keys are those of `target`. */
export function markSection<T extends object>(schema: T, target: object): T {
  SECTION.set(schema, target);
  return schema;
}

function describe(x: unknown): string {
  if (x === null) return "null";
  if (Array.isArray(x)) return "a list";
  if (typeof x === "object") return "a mapping";
  if (typeof x === "string") return `string ${JSON.stringify(x.length > 40 ? x.slice(0, 40) + "…" : x)}`;
  return `${typeof x} ${String(x)}`;
}

function want(what: string) {
  return (issue: { input: unknown }) => `expected ${what}, got ${describe(issue.input)}`;
}

function rangeText(min: number | undefined, max: number | undefined, fmt: (n: number) => string): string {
  if (min !== undefined && max !== undefined) return `must be between ${fmt(min)} and ${fmt(max)}`;
  if (min !== undefined) return `must be at least ${fmt(min)}`;
  return `must be at most ${fmt(max!)}`;
}

function inRange(n: number, min?: number, max?: number): boolean {
  return (min === undefined || n >= min) && (max === undefined || n <= max);
}

/** Parses a duration literal written in this source file; a typo here is a bug. */
function lit(text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw new Error(`bad duration literal ${text}`);
  return ms;
}

/** Duration key: Go duration string → milliseconds; bare numbers rejected. */
export function duration(def: string, range: { min?: string; max?: string; also?: (ms: number) => boolean; text?: string } = {}) {
  const min = lit(range.min ?? "0s");
  const max = range.max === undefined ? undefined : lit(range.max);
  const schema = v.pipe(
    v.string((i) =>
      typeof i.input === "number"
        ? `bare number ${i.input} is not a duration; add a unit (e.g. ${i.input}s)`
        : want("a Go duration string like 30s")(i),
    ),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const ms = parseDuration(dataset.value);
      if (ms === undefined) {
        const hint = /^\d+(\.\d+)?[dw]$/.test(dataset.value) ? " (days/weeks are not Go units; use hours, e.g. 168h)" : "";
        addIssue({ message: `invalid duration ${JSON.stringify(dataset.value)}${hint}` });
        return NEVER;
      }
      return ms;
    }),
    v.check(
      (ms) => (range.also?.(ms) ?? false) || inRange(ms, min, max),
      range.text ?? rangeText(range.min === undefined && max !== undefined ? undefined : min, max, formatDuration),
    ),
  );
  return v.optional(leaf(schema, { kind: "duration" }), def);
}

/** Size key: bytes or number + K/M/G/Ki/Mi/Gi → bytes. */
export function size(def: string | number, range: { min?: number; max?: number } = {}) {
  const schema = v.pipe(
    v.union([v.string(), v.number()], want("a size like 512Mi or a number of bytes")),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const b = parseSize(dataset.value);
      if (b === undefined) {
        addIssue({ message: `invalid size ${JSON.stringify(dataset.value)} (use bytes or K, M, G, Ki, Mi, Gi)` });
        return NEVER;
      }
      return b;
    }),
    v.check((b) => inRange(b, range.min, range.max), rangeText(range.min, range.max, (n) => String(formatSizeText(n)))),
  );
  return v.optional(leaf(schema, { kind: "size" }), def);
}

function formatSizeText(n: number): string {
  for (const [u, m] of [["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const) if (n >= m && n % m === 0) return `${n / m} ${u}`;
  return `${n} bytes`;
}

/** CPU key: number of CPUs as number or numeric string, > 0. */
export function cpu(def: string | number) {
  const schema = v.pipe(
    v.union([v.string(), v.number()], want("a CPU count like 0.5")),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const n = parseCpu(dataset.value);
      if (n === undefined) {
        addIssue({ message: `invalid cpu value ${JSON.stringify(dataset.value)} (a decimal number > 0)` });
        return NEVER;
      }
      return n;
    }),
  );
  return v.optional(leaf(schema, { kind: "cpu" }), def);
}

/** Boolean key (YAML true/false only; `yes`/`on` are strings in YAML 1.2). */
export function bool(def: boolean) {
  return v.optional(leaf(v.boolean(want("true or false")), { kind: "bool" }), def);
}

/** `auto`/`true`/`false` key: YAML booleans or the strings; output `"auto"` or a boolean. */
export function tribool(def: "auto" | boolean) {
  const schema = v.pipe(
    v.union([v.picklist(["auto", "true", "false"]), v.boolean()], (i) => `must be auto, true or false, got ${describe(i.input)}`),
    v.transform((x): "auto" | boolean => (x === "true" ? true : x === "false" ? false : x)),
  );
  return v.optional(leaf(schema, { kind: "tribool" }), def);
}

/** Integer key with an inclusive range. */
export function int(def: number, min?: number, max?: number) {
  const schema = v.pipe(
    v.number(want("an integer")),
    v.integer(want("an integer")),
    v.check((n) => inRange(n, min, max), rangeText(min, max, String)),
  );
  return v.optional(leaf(schema, { kind: "int" }), def);
}

/** Floating point key with an inclusive range. */
export function float(def: number, min: number, max: number) {
  const schema = v.pipe(
    v.number(want("a number")),
    v.check((n) => Number.isFinite(n) && inRange(n, min, max), rangeText(min, max, String)),
  );
  return v.optional(leaf(schema, { kind: "float" }), def);
}

/** Enum key. */
export function oneOf<const T extends readonly [string, ...string[]]>(def: T[number], options: T) {
  return v.optional(leaf(v.picklist(options, (i) => `must be one of ${options.join(", ")}, got ${describe(i.input)}`), { kind: "enum" }), def);
}

/**
 * A string schema with an optional validity check (not wrapped in optional). The check returns
 * `true`/`false` (failure → `message`) or a problem text / `undefined` for a specific message.
 */
export function strSchema(check?: (s: string) => boolean | string | undefined, message = "invalid value") {
  const base = v.string(want("a string"));
  if (!check) return v.pipe(base);
  return v.pipe(
    base,
    v.rawCheck(({ dataset, addIssue }) => {
      if (!dataset.typed) return;
      const r = check(dataset.value);
      if (r === false) addIssue({ message });
      else if (typeof r === "string") addIssue({ message: r });
    }),
  );
}

/** String key with a default and an optional check. */
export function str(def: string, check?: (s: string) => boolean | string | undefined, message?: string, meta: Omit<LeafMeta, "kind"> = {}) {
  return v.optional(leaf(strSchema(check, message), { kind: "string", ...meta }), def);
}

/** Required string key (no default). */
export function requiredStr(check?: (s: string) => boolean | string | undefined, message?: string, meta: Omit<LeafMeta, "kind"> = {}) {
  return leaf(strSchema(check, message), { kind: "string", ...meta });
}

/** List of scalars (settable from env as a comma-separated list). */
export function list<const TItem extends v.GenericSchema<unknown, unknown>>(item: TItem, def: v.InferInput<TItem>[]) {
  return v.optional(leaf(v.array(item, want("a list")), { kind: "list" }), () => [...def]);
}

/** List of mappings (never settable from env). */
export function objects<const TItem extends v.GenericSchema<unknown, unknown>>(item: TItem) {
  return v.optional(leaf(v.array(item, want("a list")), { kind: "objects" }), () => []);
}

/** map<string,string> with a key pattern and an entry limit. */
export function stringMap(keyOk: (k: string) => boolean, keyText: string, maxEntries: number, meta: Omit<LeafMeta, "kind"> = {}) {
  const schema = v.pipe(
    v.record(v.pipe(v.string(), v.check(keyOk, keyText)), v.string((i) => `values must be strings (quote it), got ${meta.secretValues ? typeof i.input : describe(i.input)}`), want("a mapping")),
    v.check((m) => Object.keys(m).length <= maxEntries, `at most ${maxEntries} entries`),
  );
  return v.optional(leaf(schema, { kind: "map", ...meta }), () => ({}));
}

/** Message for unknown keys (with a close-match hint) and missing required keys. */
function objectMessage(keys: readonly string[]) {
  return (issue: { input: unknown; expected: string | null }) => {
    if (issue.expected !== "never") return issue.input === undefined ? "is required" : `expected a mapping, got ${describe(issue.input)}`;
    const key = String(issue.input);
    const near = keys.find((k) => editDistance(k, key) <= Math.max(1, Math.floor(k.length / 4)));
    return near ? `unknown key (did you mean ${near}?)` : "unknown key";
  };
}

/** A strict mapping: unknown keys are errors naming the key. */
export function strict<const E extends v.ObjectEntries>(entries: E) {
  return v.strictObject(entries, objectMessage(Object.keys(entries)));
}

/** A whole section with defaults for every key, accepted when absent. */
export function section<const E extends v.ObjectEntries>(entries: E) {
  return withDefaults(strict(entries));
}

/**
 * Makes a section optional with `{}` as input default, so every key takes its own default.
 * The cast is needed because TypeScript cannot see through generic entries that `{}` is a valid
 * input; at runtime it is, since every entry of a section is optional.
 */
export function withDefaults<const S extends v.GenericSchema>(schema: S) {
  return v.optional(schema, {} as never);
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length]!;
}
