/**
 * Hook scan (actions.md §8.1–§8.2, lifecycle.md §2 step 7): every declared hook is resolved,
 * checked and hashed; a hook failing any check is excluded (logged `error`, listed with its
 * reason) without stopping the agent. No directory auto-discovery — only `hooks.definitions`.
 *
 * Checks, in order: `realpath(path)` inside `realpath(hooks.dir)` (prefix plus `/`); every
 * directory from `hooks.dir` down to the file owned by root and not group/other-writable; the
 * file opened with `O_NOFOLLOW` and `fstat`ed: regular, owner root, `mode & 022 == 0`,
 * owner-executable; the SHA-256 is computed from that same descriptor.
 */
import { constants } from "node:fs";
import { open, realpath, stat, type FileHandle } from "node:fs/promises";
import type { Stats } from "node:fs";
import type { Config } from "../config/index.ts";
import type { Logger } from "../log/index.ts";
import { sha256FileHandle } from "../util/checksum.ts";

/** The `hooks` section of the configuration. */
export type HooksConfig = Config["hooks"];
/** One `hooks.definitions[]` entry. */
export type HookDefinition = HooksConfig["definitions"][number];
/** One declared hook parameter. */
export type HookParameter = HookDefinition["parameters"][number];

/** A hook that passed every check of actions.md §8.2. */
export interface ValidHook {
  readonly name: string;
  readonly description: string;
  /** Resolved path (symlinks followed) — the file that was checked and hashed. */
  readonly path: string;
  /** The path as configured. */
  readonly configuredPath: string;
  /** SHA-256, lowercase hex (wire form is chosen by compat.profile at encoding time). */
  readonly checksum: string;
  readonly parameters: readonly HookParameter[];
  /** Milliseconds (config units). */
  readonly timeout: number;
  readonly sandbox: HookDefinition["sandbox"];
}

/** Why a hook was excluded; stable codes for `hooks list` / `hooks verify` later. */
export type HookInvalidCode =
  | "dir_unusable"
  | "not_found"
  | "outside_dir"
  | "dir_insecure"
  | "not_regular"
  | "bad_owner"
  | "writable"
  | "not_executable"
  | "io";

/** A declared hook that failed a check. */
export interface InvalidHook {
  readonly name: string;
  readonly configuredPath: string;
  readonly code: HookInvalidCode;
  readonly reason: string;
}

/** Outcome of {@link scanHooks}. */
export interface HookScan {
  /** false when `hooks.enabled` is off: nothing was scanned. */
  readonly enabled: boolean;
  /** `realpath(hooks.dir)`, or the configured value when it does not resolve. */
  readonly dir: string;
  readonly valid: readonly ValidHook[];
  readonly invalid: readonly InvalidHook[];
}

/** Options of {@link scanHooks}. */
export interface ScanOptions {
  readonly log: Logger;
  /** Required owner of hooks and their directories [0 = root]; tests pass their own uid. */
  readonly ownerUid?: number;
}

class Excluded {
  constructor(
    readonly code: HookInvalidCode,
    readonly reason: string,
  ) {}
}

const WRITE_GO = 0o022;

/**
 * Scans `hooks.definitions` (only when `hooks.enabled`). Never throws for a single hook: every
 * failure becomes an {@link InvalidHook}, logged `error` as "hook excluded".
 */
export async function scanHooks(hooks: HooksConfig, o: ScanOptions): Promise<HookScan> {
  if (!hooks.enabled) return { enabled: false, dir: hooks.dir, valid: [], invalid: [] };
  const uid = o.ownerUid ?? 0;
  let dir = hooks.dir;
  let dirProblem: Excluded | undefined;
  try {
    dir = await realpath(hooks.dir);
    const st = await stat(dir);
    dirProblem = !st.isDirectory() ? new Excluded("dir_unusable", `hooks.dir ${hooks.dir} is not a directory`) : insecure(st, uid, `hooks.dir ${dir}`, "dir_unusable");
  } catch (err) {
    dirProblem = new Excluded("dir_unusable", `hooks.dir ${hooks.dir}: ${errText(err)}`);
  }
  const valid: ValidHook[] = [];
  const invalid: InvalidHook[] = [];
  // One at a time: a handful of small files, and the log order follows the configuration.
  for (const def of hooks.definitions) {
    const r = dirProblem ?? (await checkHook(def, dir, uid));
    if (r instanceof Excluded) {
      invalid.push({ name: def.name, configuredPath: def.path, code: r.code, reason: r.reason });
      o.log.error("hook excluded", { hook: def.name, path: def.path, code: r.code, reason: r.reason });
    } else {
      valid.push(r);
    }
  }
  return { enabled: true, dir, valid, invalid };
}

async function checkHook(def: HookDefinition, dir: string, uid: number): Promise<ValidHook | Excluded> {
  let real: string;
  try {
    real = await realpath(def.path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? new Excluded("not_found", `${def.path} does not exist`) : new Excluded("io", `${def.path}: ${errText(err)}`);
  }
  const prefix = dir.endsWith("/") ? dir : `${dir}/`;
  if (!real.startsWith(prefix)) return new Excluded("outside_dir", `${def.path} resolves to ${real}, outside hooks.dir ${dir}`);
  // Every directory below hooks.dir down to the file (hooks.dir itself was checked once).
  const parts = real.slice(prefix.length).split("/");
  let cur = prefix.slice(0, -1);
  for (const p of parts.slice(0, -1)) {
    cur = `${cur}/${p}`;
    try {
      const bad = insecure(await stat(cur), uid, `directory ${cur}`, "dir_insecure");
      if (bad) return bad;
    } catch (err) {
      return new Excluded("io", `${cur}: ${errText(err)}`);
    }
  }
  // stat before open: opening a FIFO or device has side effects; O_NONBLOCK covers the race.
  let pre: Stats;
  try {
    pre = await stat(real);
  } catch (err) {
    return new Excluded("io", `${real}: ${errText(err)}`);
  }
  if (!pre.isFile()) return new Excluded("not_regular", `${real} is not a regular file (${kind(pre)})`);
  let fh: FileHandle;
  try {
    fh = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    return new Excluded("io", `${real}: ${errText(err)}`);
  }
  try {
    const st = await fh.stat();
    if (st.ino !== pre.ino || st.dev !== pre.dev) return new Excluded("io", `${real} changed while it was checked`);
    if (!st.isFile()) return new Excluded("not_regular", `${real} is not a regular file (${kind(st)})`);
    if (st.uid !== uid) return new Excluded("bad_owner", `${real} is owned by uid ${st.uid}, not ${uid}`);
    if ((st.mode & WRITE_GO) !== 0) return new Excluded("writable", `${real} is group- or world-writable (mode ${octal(st.mode)})`);
    if ((st.mode & 0o100) === 0) return new Excluded("not_executable", `${real} is not executable by its owner (mode ${octal(st.mode)})`);
    const checksum = await sha256FileHandle(fh);
    return {
      name: def.name,
      description: def.description,
      path: real,
      configuredPath: def.path,
      checksum,
      parameters: def.parameters,
      timeout: def.timeout,
      sandbox: def.sandbox,
    };
  } catch (err) {
    return new Excluded("io", `${real}: ${errText(err)}`);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

function insecure(st: Stats, uid: number, what: string, code: HookInvalidCode): Excluded | undefined {
  if (st.uid !== uid) return new Excluded(code, `${what} is owned by uid ${st.uid}, not ${uid}`);
  if ((st.mode & WRITE_GO) !== 0) return new Excluded(code, `${what} is group- or world-writable (mode ${octal(st.mode)})`);
  return undefined;
}

function kind(st: Stats): string {
  if (st.isDirectory()) return "directory";
  if (st.isFIFO()) return "fifo";
  if (st.isSocket()) return "socket";
  if (st.isCharacterDevice() || st.isBlockDevice()) return "device";
  return "special file";
}

const octal = (mode: number) => `0${(mode & 0o7777).toString(8)}`;
const errText = (err: unknown) => (err as NodeJS.ErrnoException).code ?? (err as Error).message;
