/**
 * bench/startup: exec→ready of the compiled agent and the self-hash time as a ratio of
 * `sha256sum` on the same file, both measured in this run (target ≤ 1.3x).
 *
 * "Ready" = `plexd up` answers `GET /v1/status` on its control socket: config loaded, data_dir,
 * addon extracted and verified, plexd.db opened, self-checksum done (start steps 1–9 of
 * lifecycle.md §2). The node is unregistered and has no token, so it then waits for one; no
 * control-plane traffic leaves the machine (the API URL is an unused loopback port).
 *
 *   bun run bench/startup.ts [--runs N]
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256FileSync, sha256File } from "../src/util/checksum.ts";

const BIN = "dist/plexd";
const runs = Number(process.argv[process.argv.indexOf("--runs") + 1]) || 15;
if (!(await Bun.file(BIN).exists())) {
  console.error("bench/startup: build first (npm run build)");
  process.exit(1);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function time(fn: () => void): number {
  const t0 = Bun.nanoseconds();
  fn();
  return (Bun.nanoseconds() - t0) / 1e6;
}

async function timeAsync(fn: () => Promise<unknown>): Promise<number> {
  const t0 = Bun.nanoseconds();
  await fn();
  return (Bun.nanoseconds() - t0) / 1e6;
}

// Warm the page cache so both sides read from memory.
sha256FileSync(BIN);

/** exec → first successful status answer on the control socket, in ms. */
async function execToReady(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "plexd-startup-"));
  const sock = join(dir, "plexd.sock");
  const cfg = join(dir, "config.yaml");
  writeFileSync(
    cfg,
    [
      "api: https://127.0.0.1:9", // discard port: never contacted before a token exists
      `data_dir: ${join(dir, "data")}`,
      `actions: {socket: ${sock}}`,
      `node_api: {enabled: false}`,
      `token: {file: ${join(dir, "no-token")}, metadata: false}`,
      "nat_traversal: {enabled: false}",
    ].join("\n") + "\n",
  );
  const t0 = Bun.nanoseconds();
  const proc = Bun.spawn([BIN, "up", "--config", cfg], { stdout: "ignore", stderr: "ignore", env: { PATH: process.env.PATH ?? "" } });
  try {
    for (;;) {
      try {
        const r = await fetch("http://localhost/v1/status", { unix: sock });
        if (r.ok) return (Bun.nanoseconds() - t0) / 1e6;
      } catch {
        /* not listening yet */
      }
      if (proc.exitCode !== null) throw new Error(`plexd up exited ${proc.exitCode} before ready`);
      await Bun.sleep(1);
    }
  } finally {
    proc.kill("SIGKILL");
    await proc.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

const ready: number[] = [];
const exec: number[] = [];
const baselineExec: number[] = [];
const sums: number[] = [];
const selfSync: number[] = [];
const selfAsync: number[] = [];
for (let i = 0; i < runs; i++) {
  ready.push(await execToReady());
  exec.push(time(() => Bun.spawnSync([BIN, "version"], { stdout: "ignore", stderr: "ignore" })));
  baselineExec.push(time(() => Bun.spawnSync(["/bin/true"])));
  sums.push(time(() => Bun.spawnSync(["sha256sum", BIN], { stdout: "ignore" })));
  selfSync.push(time(() => sha256FileSync(BIN)));
  selfAsync.push(await timeAsync(() => sha256File(BIN)));
}

const size = Bun.file(BIN).size / (1 << 20);
const r = (x: number) => x.toFixed(2);
console.log(`binary ${size.toFixed(0)} MiB, ${runs} runs, medians:`);
console.log(`  exec→ready of \`plexd up\` (control socket answers):  ${r(median(ready))} ms`);
console.log(`  exec→exit of \`plexd version\` (hash + addon load): ${r(median(exec))} ms  (/bin/true ${r(median(baselineExec))} ms)`);
console.log(`  sha256sum (process):      ${r(median(sums))} ms`);
console.log(`  self-hash sync (1 MiB):   ${r(median(selfSync))} ms  ratio ${r(median(selfSync) / median(sums))}x  (target ≤ 1.3x)`);
console.log(`  self-hash async (1 MiB):  ${r(median(selfAsync))} ms  ratio ${r(median(selfAsync) / median(sums))}x`);
