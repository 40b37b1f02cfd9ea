/**
 * `npm run demo` in CI form: `bun run test/e2e/demo.ts --once` brings up the CP and three
 * agents, prints the peer table and the ping matrix, exits 0 only when every pair pings, and
 * leaves nothing behind (the lab suffix is read from its progress lines).
 */
import { describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { Lab } from "../helpers/lab.ts";
import { BUN, REPO_ROOT } from "../helpers/netns.ts";

const why = await Lab.unavailable();

describe.skipIf(why !== null)(`demo --once${why ? ` (skipped: ${why})` : ""}`, () => {
  test("prints a full ✓ matrix, exits 0, cleans up", async () => {
    const p = Bun.spawn([BUN, "run", resolve(REPO_ROOT, "test/e2e/demo.ts"), "--once"], {
      cwd: REPO_ROOT,
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, NO_COLOR: "1" },
      timeout: 170_000,
      killSignal: "SIGINT", // lets the demo clean up if it ever hangs
    });
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    const suffix = /lab ([0-9a-f]{4}):/.exec(err)?.[1];
    expect(suffix).toBeDefined();
    expect(`exit ${code}\n${out}\n${err.slice(-3000)}`).toStartWith("exit 0\n");
    expect(out).toContain("── peers");
    expect(out).toContain("── ping matrix over mesh IPs ──");
    expect((out.match(/✓ [\d.]+ ms/g) ?? []).length).toBe(6);
    expect(out).not.toContain("✗");
    expect(out).toContain("all pairs reachable");
    expect(err).toContain(`lab ${suffix}: cleaned up`);
    expect((await Bun.$`ip netns list`.text()).split("\n").filter((l) => l.startsWith(`plx${suffix}`))).toEqual([]);
    expect(await Bun.$`ip -o link show`.text()).not.toContain(`plx${suffix}`);
    expect(await Bun.$`ip -o link show`.text()).not.toContain(`plxbr${suffix}`);
  }, 180_000);
});
