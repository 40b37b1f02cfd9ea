/**
 * `plexd cleanup [--all]` (the unit's ExecStopPost) in a namespace of its own with private
 * tmpfs mounts on /run/plexd, so the host's extraction dir is never touched.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = process.getuid?.() === 0;
const ns = `plexd-t-cl${Math.random().toString(16).slice(2, 8)}`;
const dir = mkdtempSync(join(tmpdir(), "plexd-cleanup-"));
const BUN = resolve("node_modules/.bin/bun");
const MAIN = resolve("src/main.ts");

function sh(cmd: string): { code: number; out: string } {
  const p = Bun.spawnSync(["sh", "-c", cmd], { stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode ?? -1, out: p.stdout.toString() + p.stderr.toString() };
}

beforeAll(() => {
  if (!root) return;
  expect(sh(`ip netns add ${ns}`).code).toBe(0);
  writeFileSync(
    join(dir, "config.yaml"),
    [
      "api: https://127.0.0.1:9",
      `data_dir: ${join(dir, "data")}`,
      "mesh: {interface: plxcl0}",
      `actions: {socket: ${join(dir, "plexd.sock")}}`,
      `node_api: {socket: ${join(dir, "api.sock")}}`,
    ].join("\n") + "\n",
  );
});

afterAll(() => {
  if (root) sh(`ip netns del ${ns}`);
  rmSync(dir, { recursive: true, force: true });
});

/** Runs a shell snippet inside the namespace with a private /run/plexd. */
function inNs(script: string): { code: number; out: string } {
  return sh(`ip netns exec ${ns} unshare --mount --propagation private sh -c 'mkdir -p /run/plexd && mount -t tmpfs tmpfs /run/plexd && ${script}'`);
}

describe.skipIf(!root)("plexd cleanup", () => {
  test("removes stale sockets and the native dir; --all also the interface and table inet plexd", () => {
    const cleanup = `${BUN} ${MAIN} cleanup --config ${dir}/config.yaml --json`;
    const setup = [
      `touch ${dir}/plexd.sock ${dir}/api.sock`,
      "mkdir -p /run/plexd/native && touch /run/plexd/native/stale.node",
      "ip link add plxcl0 type ifb",
      "nft add table inet plexd",
      "nft add table inet foreign",
    ].join(" && ");
    const r = inNs(
      `${setup} && ${cleanup} && test ! -e ${dir}/plexd.sock && test ! -e ${dir}/api.sock && test ! -e /run/plexd/native` +
        ` && ip link show plxcl0 >/dev/null && nft list table inet plexd >/dev/null` + // plain cleanup keeps both
        ` && ${cleanup} --all && ! ip link show plxcl0 2>/dev/null && ! nft list table inet plexd 2>/dev/null` +
        ` && nft list table inet foreign >/dev/null && echo CLEAN-OK`,
    );
    expect(r.out).toContain("CLEAN-OK");
    expect(r.code).toBe(0);
  });
});
