/**
 * `npm run demo` and Ctrl-C: `bun run test/e2e/demo.ts` (refresh mode, not --once) brings up the
 * CP and three agents; once the first peer table is printed the test sends SIGINT, as a terminal
 * would, and expects exit 0 within a generous limit and nothing of that lab left on the host: no
 * namespaces or links with its prefix (`plx<suffix>`, bridge `plxbr<suffix>`), no new plexd0
 * entry in /var/run/wireguard, no agent or CP process, no lab directory. The demo runs its own
 * lab, so its suffix, PIDs and directory are read from its progress lines (stderr), and the
 * checks mirror Lab.leftovers() from outside.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Lab } from "../helpers/lab.ts";
import { BUN, REPO_ROOT, run } from "../helpers/netns.ts";

const why = await Lab.unavailable();
const WG_RUN = "/var/run/wireguard";

/** Reads a stream into a growing string (so the test can wait on its content while it runs). */
function collect(stream: ReadableStream<Uint8Array>): { text: () => string; done: Promise<void> } {
  let buf = "";
  const dec = new TextDecoder();
  const done = (async () => {
    for await (const chunk of stream) buf += dec.decode(chunk, { stream: true });
  })();
  return { text: () => buf, done };
}

async function until(what: string, fn: () => boolean, ms: number, early?: () => string | null): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (fn()) return;
    const stop = early?.();
    if (stop) throw new Error(`${what}: ${stop}`);
    await Bun.sleep(100);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/** A PID that still runs a plexd/lab program (guards against PID reuse by unrelated processes). */
function liveLabPid(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const cmd = (() => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8");
    } catch {
      return "";
    }
  })();
  const state = (() => {
    try {
      return /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? "";
    } catch {
      return "";
    }
  })();
  return state !== "Z" && /plexd|wireguard-go/.test(cmd);
}

/** Live (non-zombie) PIDs whose environment has an entry starting with `prefix`. */
function pidsWithEnv(prefix: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const env = readFileSync(`/proc/${e}/environ`, "utf8").split("\0");
      if (!env.some((v) => v.startsWith(prefix))) continue;
      if (/^State:\s+Z/m.test(readFileSync(`/proc/${e}/status`, "utf8"))) continue;
      out.push(Number(e));
    } catch {
      /* exited meanwhile or not readable */
    }
  }
  return out;
}

/** What of lab `sfx` is still on the host (same categories as Lab.leftovers()). */
async function leftovers(sfx: string, pids: number[], dir: string | undefined, wgBefore: Set<string>): Promise<string[]> {
  const out: string[] = [];
  for (const l of (await run(["ip", "netns", "list"])).stdout.split("\n")) if (l.startsWith(`plx${sfx}`)) out.push(`netns ${l.split(" ")[0]}`);
  for (const l of (await run(["ip", "-o", "link", "show"])).stdout.split("\n")) {
    const name = /^\d+: ([^:@]+)/.exec(l)?.[1];
    if (name?.startsWith(`plx${sfx}`) || name === `plxbr${sfx}`) out.push(`link ${name}`);
  }
  if (existsSync(WG_RUN)) for (const f of readdirSync(WG_RUN)) if (!wgBefore.has(f) && f.startsWith("plexd0")) out.push(`${WG_RUN}/${f}`);
  for (const pid of pids) if (liveLabPid(pid)) out.push(`pid ${pid}`);
  // Descendants the progress lines do not name (wireguard-go, hooks): the lab starts every node
  // process with TMPDIR=<lab dir>/n<i>, and children inherit it.
  if (dir) for (const pid of pidsWithEnv(`TMPDIR=${dir}/`)) if (!pids.includes(pid)) out.push(`pid ${pid} (env)`);
  if (dir && existsSync(dir)) out.push(`dir ${dir}`);
  return out;
}

/** Last resort when the demo could not clean up itself: remove lab `sfx` from the host. */
async function sweep(sfx: string, pids: number[]): Promise<void> {
  for (const pid of pids) if (liveLabPid(pid)) process.kill(pid, "SIGKILL");
  for (const l of (await run(["ip", "netns", "list"])).stdout.split("\n")) {
    const ns = l.split(" ")[0];
    if (!ns?.startsWith(`plx${sfx}`)) continue;
    for (const pid of (await run(["ip", "netns", "pids", ns])).stdout.split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        /* gone */
      }
    }
    await run(["ip", "netns", "del", ns]);
  }
  for (const l of (await run(["ip", "-o", "link", "show"])).stdout.split("\n")) {
    const name = /^\d+: ([^:@]+)/.exec(l)?.[1];
    if (name?.startsWith(`plx${sfx}`) || name === `plxbr${sfx}`) await run(["ip", "link", "del", name]);
  }
}

describe.skipIf(why !== null)(`demo Ctrl-C${why ? ` (skipped: ${why})` : ""}`, () => {
  test("SIGINT after the first peer table: exit 0, nothing left behind", async () => {
    const wgBefore = new Set(existsSync(WG_RUN) ? readdirSync(WG_RUN) : []);
    const p = Bun.spawn([BUN, "run", resolve(REPO_ROOT, "test/e2e/demo.ts"), "--interval", "30"], {
      cwd: REPO_ROOT,
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, NO_COLOR: "1" },
    });
    const out = collect(p.stdout);
    const err = collect(p.stderr);
    let exit: number | null = null;
    void p.exited.then((c) => (exit = c));
    const suffix = () => /lab ([0-9a-f]{4}):/.exec(err.text())?.[1];
    const pids = () => [...err.text().matchAll(/(?:agent pid|\(pid) (\d+)/g)].map((m) => Number(m[1]));
    const context = () => `\n--- stdout (tail)\n${out.text().slice(-2000)}\n--- stderr (tail)\n${err.text().slice(-3000)}`;
    try {
      // The first report ends with the refresh hint; by then every agent is up (or reported dead).
      await until("the first peer table", () => out.text().includes("Ctrl-C stops and cleans up"), 150_000, () =>
        exit !== null ? `demo exited early with ${exit}${context()}` : null,
      );
      expect(out.text()).toContain("── peers");
      expect(pids().length).toBeGreaterThanOrEqual(4); // CP + three agents
      const sfx = suffix();
      expect(sfx).toBeDefined();

      const dir = /lab [0-9a-f]{4}: bridge \S+ \S+, dir (\S+)/.exec(err.text())?.[1];
      expect(dir).toBeDefined();
      // The check below can fail: right now the lab is all there.
      const before = await leftovers(sfx!, pids(), dir, wgBefore);
      for (const kind of ["netns", "link", "pid", "dir"]) expect(before.some((l) => l.startsWith(`${kind} `))).toBe(true);
      expect(before.some((l) => l.endsWith("(env)"))).toBe(true); // wireguard-go of the userspace backend

      const sentAt = Date.now();
      p.kill("SIGINT");
      const code = await Promise.race([p.exited, Bun.sleep(45_000).then(() => "timeout" as const)]);
      const ms = Date.now() - sentAt;
      await Promise.all([out.done, err.done]);
      expect(`exit ${code} after ${ms} ms${code === 0 ? "" : context()}`).toStartWith("exit 0 ");
      expect(err.text()).toContain("SIGINT: stopping agents and control plane");
      expect(err.text()).toContain(`lab ${sfx}: cleaned up`);

      expect(await leftovers(sfx!, pids(), dir, wgBefore)).toEqual([]);
    } finally {
      if (exit === null) {
        // Failed before the demo ended: let it clean up, then make sure nothing of it survives.
        p.kill("SIGINT");
        await Promise.race([p.exited, Bun.sleep(30_000)]);
        if (exit === null) p.kill("SIGKILL");
        await p.exited;
      }
      const sfx = suffix();
      if (sfx) await sweep(sfx, pids());
    }
  }, 240_000);
});
