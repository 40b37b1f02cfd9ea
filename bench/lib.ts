/**
 * Shared helpers of the `bench/agent-*.ts` benchmarks: statistics, argv flags, commands,
 * spawned-process bookkeeping (killed by PID, never by name) and /proc sampling.
 * Benchmarks print ratios against a baseline measured in the same run; nothing here asserts
 * timings.
 */
import { readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";

export { killPid, Proc, sh, sleep, waitFor } from "../test/helpers/proc.ts";

/** Repository root. */
export const ROOT = resolve(import.meta.dir, "..");
/** The Bun that runs the benchmarks. */
export const BUN = resolve(ROOT, "node_modules/.bin/bun");

/** Median (upper middle for even lengths). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
}

/** p-quantile (0..1), nearest rank. */
export function quantile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
}

/** Value of `--name X` in argv, else `def`. */
export function flag(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : def;
}

/** True when `--name` is present. */
export function hasFlag(name: string): boolean {
  return process.argv.includes(`--${name}`);
}

/** Milliseconds with sensible precision. */
export function ms(x: number): string {
  return x < 1 ? `${(x * 1000).toFixed(0)} µs` : x < 100 ? `${x.toFixed(2)} ms` : `${x.toFixed(0)} ms`;
}

/** Direct children of `pid` (from /proc/<pid>/task/<tid>/children). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const t = readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim();
      if (t) out.push(...t.split(/\s+/).map(Number));
    }
  } catch {
    /* gone */
  }
  return out;
}

/** All descendants of `pid`, depth first. */
export function descendantsOf(pid: number): number[] {
  const out: number[] = [];
  for (const c of childrenOf(pid)) out.push(c, ...descendantsOf(c));
  return out;
}

/** Command name (`/proc/<pid>/comm`), undefined when gone. */
export function commOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return undefined;
  }
}

/** One sample of a process: RSS (KiB) and CPU time (utime+stime, seconds). */
export interface ProcSample {
  rssKiB: number;
  /** VmRSS split: anonymous (heap, JIT, stacks) and file-backed (mapped binary, libraries). */
  anonKiB: number;
  fileKiB: number;
  cpuSec: number;
}

const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux/x86-64 and arm64

/** Reads VmRSS from /proc/<pid>/status and utime+stime from /proc/<pid>/stat. */
export function sampleProc(pid: number): ProcSample | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the parenthesised comm: state is field 3, utime 14, stime 15.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    return { rssKiB: kib("VmRSS"), anonKiB: kib("RssAnon"), fileKiB: kib("RssFile"), cpuSec: (utime + stime) / CLK_TCK };
  } catch {
    return undefined;
  }
}

/** A fresh per-run suffix (hex). */
export function suffix(bytes = 3): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString("hex");
}
