/**
 * The project's test command (`npm test`): unit suites (src/**), then integration and
 * end-to-end suites (test/**, real kernel in namespaces, compiled binaries), each a `bun test`
 * run. Ends with one line `N passed, N failed` — bun prints its own counts differently.
 *
 *   bun run build/test.ts            all suites
 *   bun run build/test.ts --unit     unit only (no root needed)
 */
export {};

const suites: { name: string; args: string[] }[] = [
  { name: "unit", args: ["src"] },
  { name: "integration", args: ["test/integration"] },
  { name: "e2e", args: ["test/e2e"] },
];

const unitOnly = process.argv.includes("--unit");
let passed = 0;
let failed = 0;
let skipped = 0;
let broken = false;

for (const suite of unitOnly ? suites.slice(0, 1) : suites) {
  const hasFiles = new Bun.Glob(`${suite.args[0]}/**/*.test.ts`).scanSync(".").next().done === false;
  if (!hasFiles) continue;
  console.log(`\n=== ${suite.name} ===`);
  const proc = Bun.spawn([process.execPath, "test", "--timeout", "180000", ...suite.args], {
    stdout: "inherit",
    stderr: "pipe",
    env: { ...process.env, PLEXD_TEST_SUITE: suite.name },
  });
  let tail = "";
  const decoder = new TextDecoder();
  for await (const chunk of proc.stderr) {
    const text = decoder.decode(chunk, { stream: true });
    process.stderr.write(text);
    tail = (tail + text).slice(-4096);
  }
  const code = await proc.exited;
  const count = (word: string) => Number(new RegExp(`^\\s*(\\d+) ${word}$`, "m").exec(tail)?.[1] ?? 0);
  const p = count("pass");
  const f = count("fail");
  passed += p;
  failed += f;
  skipped += count("skip");
  // A crash or non-zero exit without a counted failure still fails the run.
  if (code !== 0 && f === 0) broken = true;
}

if (broken) failed += 1;
// Namespace suites skip themselves without root or the lab tools. As root (CI, the README's
// set-up) a skip means the environment is broken, and a green run must not hide it.
if (skipped > 0 && process.getuid?.() === 0) {
  console.error(`\n${skipped} test(s) skipped as root: the set-up is incomplete (see messages above)`);
  failed += skipped;
}
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed > 0 ? 1 : 0);
