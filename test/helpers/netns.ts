/**
 * Throwaway network namespaces for kernel tests. Bun has no in-process setns, so code that must
 * run inside a namespace is a separate bun script started with `ip netns exec`. Every namespace
 * carries a per-run random suffix; call remove() in afterAll (it never throws).
 */
import { randomBytes } from "node:crypto";
import { resolve } from "node:path";

/** Repository root (test/helpers/../..). */
export const REPO_ROOT = resolve(import.meta.dir, "../..");
/** The bun binary of the repo's dev dependency. */
export const BUN = resolve(REPO_ROOT, "node_modules/.bin/bun");

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs argv to completion (no shell); a timeout kills it by PID. */
export async function run(argv: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<RunResult> {
  const p = Bun.spawn(argv, {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...opts.env },
    timeout: opts.timeoutMs ?? 30_000,
    killSignal: "SIGKILL",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

/** run(), throwing with the command's output when it exits non-zero; returns stdout. */
export async function must(argv: string[], timeoutMs = 15_000): Promise<string> {
  const r = await run(argv, { timeoutMs });
  if (r.code !== 0) throw new Error(`${argv.join(" ")} → exit ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

/** True while a process with this PID exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** True when this process can create network namespaces (root + iproute2). */
export async function canUseNetns(): Promise<boolean> {
  if (process.getuid?.() !== 0) return false;
  const r = await run(["ip", "netns", "list"]).catch(() => undefined);
  return r?.code === 0;
}

export class Netns {
  private removed = false;
  private constructor(readonly name: string) {}

  /** `ip netns add <prefix>-<random>`; loopback brought up. */
  static async create(prefix = "plexd-t"): Promise<Netns> {
    const name = `${prefix}-${randomBytes(4).toString("hex")}`;
    const r = await run(["ip", "netns", "add", name]);
    if (r.code !== 0) throw new Error(`ip netns add ${name}: ${r.stderr.trim()}`);
    const ns = new Netns(name);
    await ns.ip("link", "set", "lo", "up");
    return ns;
  }

  /** Runs argv inside the namespace. */
  exec(argv: string[], opts?: { env?: Record<string, string>; timeoutMs?: number }): Promise<RunResult> {
    return run(["ip", "netns", "exec", this.name, ...argv], opts);
  }

  /** Runs a bun script inside the namespace (cwd = repo root). */
  bun(script: string, args: string[] = [], opts?: { env?: Record<string, string>; timeoutMs?: number }): Promise<RunResult> {
    return this.exec([BUN, script, ...args], opts);
  }

  /** `ip -n <ns> ...`; throws with stderr on failure, returns stdout. */
  async ip(...args: string[]): Promise<string> {
    const r = await run(["ip", "-n", this.name, ...args]);
    if (r.code !== 0) throw new Error(`ip -n ${this.name} ${args.join(" ")}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** `ip -n <ns> -j ...` parsed. */
  async ipJson<T = unknown>(...args: string[]): Promise<T> {
    const out = await this.ip("-j", ...args);
    return (out.trim() === "" ? [] : JSON.parse(out)) as T;
  }

  /** Deletes the namespace (idempotent, never throws). */
  async remove(): Promise<void> {
    if (this.removed) return;
    this.removed = true;
    await run(["ip", "netns", "del", this.name]).catch(() => undefined);
  }
}

/** Runs addon calls inside `ns` through test/helpers/addon-runner.ts; one result per call. */
export async function addonInNetns(ns: Netns, calls: import("./addon-runner.ts").AddonCall[]): Promise<import("./addon-runner.ts").AddonCallResult[]> {
  const r = await ns.bun(resolve(REPO_ROOT, "test/helpers/addon-runner.ts"), [JSON.stringify(calls)]);
  if (r.code !== 0) throw new Error(`addon runner in ${ns.name} exited ${r.code}: ${r.stderr.trim()}`);
  const lines = r.stdout.trim().split("\n").filter(Boolean);
  if (lines.length !== calls.length) throw new Error(`addon runner: ${lines.length} results for ${calls.length} calls: ${r.stdout}${r.stderr}`);
  return lines.map((l) => JSON.parse(l));
}
