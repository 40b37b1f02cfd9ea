/**
 * `npm run bench [-- NAME…]`: runs the named benchmarks (file names under bench/ without `.ts`),
 * or lists them when none is named. Each prints its own ratios against a baseline measured in
 * the same run; most need root and a built `dist/` (`npm run build`).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const dir = import.meta.dir;
const all = readdirSync(dir)
  .filter((f) => f.endsWith(".ts") && !["run.ts", "lib.ts"].includes(f) && !f.startsWith("."))
  .map((f) => f.slice(0, -3))
  .sort();

function summary(name: string): string {
  const text = readFileSync(join(dir, `${name}.ts`), "utf8");
  const m = /\/\*\*\s*\n?\s*\*?\s*(.+)/.exec(text);
  return (m?.[1] ?? "").replace(/\s*\*\/.*/, "").trim();
}

const names = process.argv.slice(2);
if (names.length === 0) {
  console.log("Benchmarks (npm run bench -- NAME…):");
  for (const n of all) console.log(`  ${n.padEnd(18)} ${summary(n)}`);
  process.exit(0);
}
for (const n of names) {
  if (!all.includes(n)) {
    console.error(`bench: unknown benchmark "${n}" (have: ${all.join(", ")})`);
    process.exit(2);
  }
}
for (const n of names) {
  console.log(`\n=== bench/${n} ===`);
  const code = await Bun.spawn([process.execPath, join(dir, `${n}.ts`)], { stdio: ["inherit", "inherit", "inherit"] }).exited;
  if (code !== 0) process.exit(code);
}
