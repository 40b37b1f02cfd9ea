/**
 * bench/startup: exec→ready of the compiled agent (`plexd version`) and the self-hash time as a
 * ratio of `sha256sum` on the same file, both measured in this run (target ≤ 1.3x).
 *
 *   bun run bench/startup.ts [--runs N]
 */
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

const exec: number[] = [];
const baselineExec: number[] = [];
const sums: number[] = [];
const selfSync: number[] = [];
const selfAsync: number[] = [];
for (let i = 0; i < runs; i++) {
  exec.push(time(() => Bun.spawnSync([BIN, "version"], { stdout: "ignore", stderr: "ignore" })));
  baselineExec.push(time(() => Bun.spawnSync(["/bin/true"])));
  sums.push(time(() => Bun.spawnSync(["sha256sum", BIN], { stdout: "ignore" })));
  selfSync.push(time(() => sha256FileSync(BIN)));
  selfAsync.push(await timeAsync(() => sha256File(BIN)));
}

const size = Bun.file(BIN).size / (1 << 20);
const r = (x: number) => x.toFixed(2);
console.log(`binary ${size.toFixed(0)} MiB, ${runs} runs, medians:`);
console.log(`  exec→exit of \`plexd version\` (hash + addon load): ${r(median(exec))} ms  (/bin/true ${r(median(baselineExec))} ms)`);
console.log(`  sha256sum (process):      ${r(median(sums))} ms`);
console.log(`  self-hash sync (1 MiB):   ${r(median(selfSync))} ms  ratio ${r(median(selfSync) / median(sums))}x  (target ≤ 1.3x)`);
console.log(`  self-hash async (1 MiB):  ${r(median(selfAsync))} ms  ratio ${r(median(selfAsync) / median(sums))}x`);
