/**
 * Deregistration steps 3, 4 and 6 of lifecycle.md §14.2, shared by the daemon (control socket)
 * and the CLI (daemon not running). Steps 1, 2 and 5 (stop new work, drain, stop subsystems)
 * belong to whoever runs the subsystems.
 */
import { existsSync, readdirSync, rmSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import type { CpApi } from "../controlplane/api.ts";
import { RetryClasses, withRetry, type RetryDeps } from "../controlplane/retry.ts";
import type { Logger } from "../log/index.ts";
import type { MeshController } from "../mesh/controller.ts";

/** Flags of `plexd deregister`. */
export interface DeregisterFlags {
  readonly purge: boolean;
  readonly force: boolean;
}

/** Outcome, also the control-socket answer. */
export interface DeregisterResult {
  /** 0 done; 69 CP not notified (with --force: torn down anyway). */
  exitCode: 0 | 69;
  notified: boolean;
  alreadyDeregistered: boolean;
  tornDown: boolean;
  purged: boolean;
  steps: string[];
  errors: string[];
}

/** Runs `systemctl <args>`; resolves with the exit code and output. */
export type SystemctlRunner = (args: string[]) => Promise<{ code: number; output: string }>;

/** The real runner: `systemctl` from PATH, 15 s limit; null when systemctl does not exist. */
export function systemSystemctl(): SystemctlRunner | null {
  const bin = Bun.which("systemctl");
  if (bin === null) return null;
  return async (args) => {
    const p = Bun.spawn([bin, ...args], { stdout: "pipe", stderr: "pipe", timeout: 15_000, killSignal: "SIGKILL" });
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    return { code, output: `${out}${err}`.trim() };
  };
}

/** Collaborators. */
export interface DeregisterDeps {
  readonly api: CpApi;
  readonly nodeId: string;
  readonly mesh: MeshController;
  readonly dataDir: string;
  /** Bootstrap token files to delete on purge (`token.file`, explicit file). */
  readonly tokenFiles: readonly string[];
  readonly log: Logger;
  /** Called before purge so the DB and files can be closed. */
  readonly beforePurge?: () => Promise<void> | void;
  /** Called once teardown is certain (stop loops that would re-apply the mesh). */
  readonly beforeTeardown?: () => Promise<void> | void;
  /** `systemctl` for `--purge` (`disable plexd.service`) [systemSystemctl()]; null = skip. */
  readonly systemctl?: SystemctlRunner | null;
  readonly retry?: RetryDeps;
  readonly progress?: (line: string) => void;
}

/** Step 3 (notify), 4 (tear down), 6 (purge). */
export async function deregisterNode(d: DeregisterDeps, flags: DeregisterFlags): Promise<DeregisterResult> {
  const res: DeregisterResult = { exitCode: 0, notified: false, alreadyDeregistered: false, tornDown: false, purged: false, steps: [], errors: [] };
  const step = (s: string) => {
    res.steps.push(s);
    d.progress?.(s);
    d.log.info(`deregister: ${s}`);
  };
  const r = await withRetry((_n, signal) => d.api.deregister(d.nodeId, signal), RetryClasses.deregister, d.retry ?? {});
  if (r.ok) {
    res.notified = true;
    res.alreadyDeregistered = r.value.alreadyDeregistered;
    if (r.value.alreadyDeregistered) d.log.warn("control plane does not know this node any more; treating it as already deregistered");
    step(r.value.alreadyDeregistered ? "control plane: node already deregistered" : "control plane notified");
  } else {
    res.exitCode = 69;
    const why = r.error.status !== undefined ? `HTTP ${r.error.status}` : r.error.kind;
    res.errors.push(`control plane not notified: ${why}`);
    if (!flags.force) {
      step(`control plane unreachable (${why}); nothing torn down (use --force to continue)`);
      return res;
    }
    step(`control plane unreachable (${why}); continuing because of --force`);
  }
  await d.beforeTeardown?.();
  const t = await d.mesh.teardown();
  for (const c of t.corrections) step(`removed ${c.detail}`);
  for (const e of t.errors) res.errors.push(`${e.step}: ${e.message}`);
  res.tornDown = true;
  if (flags.purge) {
    await d.beforePurge?.();
    purgeDataDir(d.dataDir);
    for (const f of d.tokenFiles) {
      try {
        if (existsSync(f)) unlinkSync(f);
      } catch (err) {
        res.errors.push(`token file ${f}: ${(err as Error).message}`);
      }
    }
    res.purged = true;
    step(`purged ${d.dataDir}`);
    await disableUnit(d, step);
  } else {
    step("local state kept (identity, caches, journal)");
  }
  return res;
}

/** `systemctl disable plexd.service` when systemctl exists; a failure is logged, not fatal. */
async function disableUnit(d: DeregisterDeps, step: (s: string) => void): Promise<void> {
  const run = d.systemctl === undefined ? systemSystemctl() : d.systemctl;
  if (run === null) return;
  try {
    const r = await run(["disable", "plexd.service"]);
    if (r.code === 0) step("systemctl disable plexd.service");
    else d.log.warn("systemctl disable plexd.service failed (ignored)", { code: r.code, output: r.output.slice(0, 500) });
  } catch (err) {
    d.log.warn("systemctl disable plexd.service failed (ignored)", { error: (err as Error).message });
  }
}

/** Deletes everything inside data_dir (the directory itself stays, 0700). */
export function purgeDataDir(dataDir: string): void {
  if (!existsSync(dataDir)) return;
  for (const name of readdirSync(dataDir)) rmSync(join(dataDir, name), { recursive: true, force: true });
}
