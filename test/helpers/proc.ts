/**
 * Process and polling helpers shared by the integration harnesses and the benchmarks: run a
 * command, poll a condition, spawn with bounded captured output, kill by PID (never by name).
 */

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
