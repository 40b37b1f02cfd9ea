/**
 * Shared helpers of the `bench/agent-*.ts` benchmarks: statistics, argv flags, commands,
 * spawned-process bookkeeping (killed by PID, never by name) and /proc sampling.
 * Benchmarks print ratios against a baseline measured in the same run; nothing here asserts
 * timings.
 */
import { readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";

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

/** Runs a command to completion; throws with its output on failure unless `allowFail`. */
export function sh(argv: string[], allowFail = false): { code: number; out: string } {
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  const out = `${r.stdout.toString()}${r.stderr.toString()}`;
  if (r.exitCode !== 0 && !allowFail) throw new Error(`${argv.join(" ")} → ${r.exitCode}: ${out}`);
  return { code: r.exitCode ?? -1, out };
}

export const sleep = (t: number): Promise<void> => new Promise((r) => setTimeout(r, t));

/** Polls `fn` until truthy or `timeoutMs` pass. */
export async function waitFor<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 20_000, every = 100): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    await sleep(every);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
}

/** A spawned process with captured output (bounded: only the last 256 KiB of each stream). */
export class Proc {
  out = "";
  err = "";
  readonly exited: Promise<number>;
  constructor(readonly proc: ReturnType<typeof Bun.spawn>) {
    const cap = 256 * 1024;
    const pump = async (s: ReadableStream<Uint8Array> | null | undefined, to: "out" | "err") => {
      if (!s) return;
      const dec = new TextDecoder();
      for await (const c of s) {
        this[to] += dec.decode(c, { stream: true });
        if (this[to].length > 2 * cap) this[to] = this[to].slice(-cap);
      }
    };
    void pump(proc.stdout as ReadableStream<Uint8Array>, "out");
    void pump(proc.stderr as ReadableStream<Uint8Array>, "err");
    this.exited = proc.exited;
  }
  get pid(): number {
    return this.proc.pid;
  }
  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }
  /** SIGTERM, then SIGKILL after `graceMs`. */
  async kill(graceMs = 5_000): Promise<number> {
    if (!this.running) return this.exited;
    killPid(this.pid, "SIGTERM");
    const t = setTimeout(() => killPid(this.pid, "SIGKILL"), graceMs);
    const code = await this.exited;
    clearTimeout(t);
    return code;
  }
}

/** Sends a signal to one PID, ignoring "no such process". */
export function killPid(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
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
