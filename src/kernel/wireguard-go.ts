/**
 * Supervisor of one wireguard-go process (userspace backend, lifecycle.md §4.1): spawn
 * `wireguard-go -f <iface>`, wait ≤ 5 s until its UAPI socket answers, restart it when it exits
 * (1 s → 30 s backoff) and tell the owner through `onRestart` so the whole configuration is
 * applied again (a new wireguard-go starts empty). Never pass `--help`: wireguard-go would
 * create an interface named "--help" and daemonise (platform-notes).
 */
import { unlink } from "node:fs/promises";
import { checkIfname, KernelError } from "./kernel-error.ts";
import type { KernelLog } from "./types.ts";
import { DEFAULT_SOCKET_DIR, UapiClient } from "./uapi.ts";

/** Options of WireguardGo; defaults in brackets. */
export interface WireguardGoOptions {
  ifname: string;
  /** Binary ["wireguard-go"]. Ignored when `argv` is given. */
  path?: string;
  /**
   * Full command line [path, "-f", ifname]; lets tests run it inside a network namespace
   * (`ip netns exec <ns> wireguard-go -f <if>`, which execs, so the PID stays the same).
   */
  argv?: string[];
  /** UAPI socket directory ["/var/run/wireguard"]. */
  socketDir?: string;
  /** Wait for the UAPI socket [5000 ms]. */
  startTimeoutMs?: number;
  /** First restart delay [1000 ms]; doubles per consecutive failure. */
  backoffInitialMs?: number;
  /** Restart delay cap [30000 ms]; a process that lived this long resets the backoff. */
  backoffMaxMs?: number;
  /** Called after a restarted process is ready; re-apply the full configuration here. */
  onRestart?: (ifname: string) => void | Promise<void>;
  log?: KernelLog;
  /** Extra environment for the child. */
  env?: Record<string, string>;
  /**
   * wireguard-go's own log output ["discard"]. "discard": LOG_LEVEL=silent and both streams to
   * /dev/null — nothing reaches the agent's event loop (a peer without an endpoint makes
   * wireguard-go log every handshake attempt; draining that line by line was most of the idle
   * agent's CPU). "log": LOG_LEVEL=error, lines forwarded at debug level (set at spawn time).
   */
  output?: "discard" | "log";
}

function positive(name: string, v: number | undefined, dflt: number): number {
  const x = v ?? dflt;
  if (!Number.isFinite(x) || x <= 0) throw new KernelError("INVALID_ARGUMENT", `WireguardGo: ${name} must be > 0, got ${v}`);
  return x;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One supervised wireguard-go. */
export class WireguardGo {
  readonly ifname: string;
  private readonly argv: string[];
  private readonly uapi: UapiClient;
  private readonly startTimeoutMs: number;
  private readonly backoffInitialMs: number;
  private readonly backoffMaxMs: number;
  private proc: ReturnType<typeof Bun.spawn> | null = null;
  private startedAt = 0;
  private failures = 0;
  private stopping = false;
  private restartTimer: ReturnType<typeof setTimeout> | null = null;
  private starting: Promise<void> | null = null;
  private restartCount = 0;

  constructor(private readonly opts: WireguardGoOptions) {
    checkIfname(opts.ifname);
    this.ifname = opts.ifname;
    this.argv = opts.argv ?? [opts.path ?? "wireguard-go", "-f", opts.ifname];
    if (this.argv.includes("--help") || this.argv.includes("-h")) {
      throw new KernelError("INVALID_ARGUMENT", "wireguard-go must not be run with --help (it creates an interface of that name)");
    }
    // Readiness probes only: no kept connection (the kernel's own client keeps one).
    this.uapi = new UapiClient({ socketDir: opts.socketDir ?? DEFAULT_SOCKET_DIR, timeoutMs: 2000, persistent: false });
    this.startTimeoutMs = positive("startTimeoutMs", opts.startTimeoutMs, 5000);
    this.backoffInitialMs = positive("backoffInitialMs", opts.backoffInitialMs, 1000);
    this.backoffMaxMs = positive("backoffMaxMs", opts.backoffMaxMs, 30_000);
  }

  /** PID of the running process, or null. */
  get pid(): number | null {
    return this.proc && this.proc.exitCode === null && this.proc.signalCode === null ? this.proc.pid : null;
  }

  /** How many times the process was restarted after an unexpected exit. */
  get restarts(): number {
    return this.restartCount;
  }

  /** Path of the UAPI socket this process serves. */
  get socketPath(): string {
    return this.uapi.socketPath(this.ifname);
  }

  /** Starts the process and resolves once its UAPI socket answers; idempotent while running. */
  start(): Promise<void> {
    this.stopping = false;
    if (this.restartTimer) {
      // An explicit start supersedes a pending restart.
      clearTimeout(this.restartTimer);
      this.restartTimer = null;
    }
    if (this.pid !== null && !this.starting) return Promise.resolve();
    this.starting ??= this.spawnAndWait().finally(() => {
      this.starting = null;
    });
    return this.starting;
  }

  private async spawnAndWait(): Promise<void> {
    const forward = this.opts.output === "log";
    const proc = Bun.spawn(this.argv, {
      stdin: "ignore",
      stdout: forward ? "pipe" : "ignore",
      stderr: forward ? "pipe" : "ignore",
      env: { ...process.env, LOG_LEVEL: forward ? "error" : "silent", ...this.opts.env },
    });
    this.proc = proc;
    this.startedAt = Date.now();
    if (forward) {
      this.drain(proc.stdout);
      this.drain(proc.stderr);
    }
    void proc.exited.then((code) => this.onExit(proc, code));
    this.opts.log?.debug("wireguard-go spawned", { ifname: this.ifname, pid: proc.pid });

    const deadline = Date.now() + this.startTimeoutMs;
    let lastErr: unknown = null;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new KernelError("WG_GO_START", `wireguard-go for ${this.ifname} exited during start (code ${proc.exitCode ?? proc.signalCode})`);
      }
      try {
        if ((await this.uapi.get(this.ifname)) !== null) return;
      } catch (err) {
        lastErr = err;
      }
      await sleep(25);
    }
    await this.kill(proc);
    throw new KernelError("WG_GO_START", `no UAPI socket for ${this.ifname} within ${this.startTimeoutMs} ms`, { cause: lastErr });
  }

  /** Forwards the child's log lines; also keeps the pipe from filling up and blocking it. */
  private drain(stream: ReadableStream<Uint8Array> | number | undefined): void {
    if (!(stream instanceof ReadableStream)) return;
    const log = this.opts.log;
    void (async () => {
      const dec = new TextDecoder();
      let buf = "";
      try {
        for await (const chunk of stream) {
          buf += dec.decode(chunk, { stream: true });
          let nl: number;
          while ((nl = buf.indexOf("\n")) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (line && !/^[│┌└]/.test(line)) log?.debug("wireguard-go", { ifname: this.ifname, line });
          }
        }
      } catch {
        // The pipe closes with the process; nothing to report.
      }
    })();
  }

  private onExit(proc: ReturnType<typeof Bun.spawn>, code: number): void {
    if (proc !== this.proc || this.stopping) return;
    const lived = Date.now() - this.startedAt;
    if (lived >= this.backoffMaxMs) this.failures = 0;
    const delay = Math.min(this.backoffMaxMs, this.backoffInitialMs * 2 ** this.failures);
    this.failures++;
    this.opts.log?.warn("wireguard-go exited; restarting", { ifname: this.ifname, code, signal: proc.signalCode, delayMs: delay });
    this.restartTimer = setTimeout(() => void this.restart(), delay);
  }

  private async restart(): Promise<void> {
    this.restartTimer = null;
    if (this.stopping) return;
    try {
      await this.start();
    } catch (err) {
      this.opts.log?.error("wireguard-go restart failed", { ifname: this.ifname, error: String(err) });
      // A start that failed left no process behind (killed) or one whose exit already
      // scheduled the next attempt; schedule only when nothing will.
      if (!this.stopping && this.restartTimer === null && this.pid === null) {
        const delay = Math.min(this.backoffMaxMs, this.backoffInitialMs * 2 ** this.failures);
        this.failures++;
        this.restartTimer = setTimeout(() => void this.restart(), delay);
      }
      return;
    }
    this.restartCount++;
    try {
      await this.opts.onRestart?.(this.ifname);
    } catch (err) {
      this.opts.log?.error("re-applying configuration after wireguard-go restart failed", { ifname: this.ifname, error: String(err) });
    }
  }

  private async kill(proc: ReturnType<typeof Bun.spawn>): Promise<void> {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGTERM");
      const timedOut = await Promise.race([proc.exited.then(() => false), sleep(5000).then(() => true)]);
      if (timedOut) {
        proc.kill("SIGKILL");
        await proc.exited;
      }
    }
    // wireguard-go unlinks its socket on SIGTERM, not when killed hard: drop a stale one.
    await unlink(this.socketPath).catch(() => undefined);
  }

  /** Stops supervising and terminates the process (SIGTERM by PID, SIGKILL after 5 s); idempotent. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    await this.starting?.catch(() => undefined);
    if (this.proc) await this.kill(this.proc);
  }
}
