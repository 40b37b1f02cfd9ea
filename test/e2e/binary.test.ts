/**
 * The compiled executable itself: self-checksum, running alone with an empty environment,
 * config errors with exit 78, and the addon extraction guard.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const BIN = resolve("dist/plexd");
const work = mkdtempSync(join(tmpdir(), "plexd-bin-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function run(argv: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
  const p = Bun.spawnSync([argv[0]!, ...argv.slice(1)], { cwd: opts.cwd ?? work, env: opts.env ?? {}, stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

describe("dist/plexd", () => {
  test("version --json checksum equals sha256sum of the file", () => {
    const r = run([BIN, "version", "--json"]);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    const sum = Bun.spawnSync(["sha256sum", BIN]).stdout.toString().split(" ")[0];
    expect(doc.data.checksum).toBe(`sha256:${sum}`);
    expect(doc.data.addon).toMatch(/^\d+\.\d+\.\d+/);
    expect(doc.data.commit).not.toBe("dev");
  });

  test("copied alone into an empty directory and run with env -i", () => {
    const dir = join(work, "alone");
    mkdirSync(dir);
    copyFileSync(BIN, join(dir, "plexd"));
    chmodSync(join(dir, "plexd"), 0o755);
    // A bunfig.toml / .env in the working directory must not change the agent.
    writeFileSync(join(dir, "bunfig.toml"), 'preload = ["./evil.ts"]\n');
    writeFileSync(join(dir, "evil.ts"), 'console.log("EVIL"); process.exit(9);\n');
    writeFileSync(join(dir, ".env"), "PLEXD_LOG_LEVEL=debug\n");
    const r = Bun.spawnSync(["env", "-i", "./plexd", "version"], { cwd: dir, stdout: "pipe", stderr: "pipe" });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toMatch(/^plexd \d+\.\d+\.\d+ \(commit \S+, built \S+, bun \S+\)/);
    expect(r.stdout.toString()).not.toContain("EVIL");
  });

  test("a typo in a key is rejected with its path, line and exit 78", () => {
    const cfg = join(work, "typo.yaml");
    writeFileSync(cfg, "api: https://cp.example.net\nmesh:\n  listen_prot: 51820\n");
    const r = run([BIN, "config", "validate", "--config", cfg]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain("config: mesh.listen_prot: unknown key");
    expect(r.stderr).toContain("(line 3, col 3)");
  });

  test("a YAML syntax error names line and column, exit 78", () => {
    const cfg = join(work, "syntax.yaml");
    writeFileSync(cfg, "api: https://cp.example.net\nheartbeat:\n  interval: [30s\n");
    const r = run([BIN, "config", "validate", "--config", cfg, "--json"]);
    expect(r.code).toBe(78);
    const doc = JSON.parse(r.stdout);
    expect(doc.error.code).toBe("config_invalid");
    expect(doc.error.issues[0].line).toBeGreaterThan(0);
    expect(doc.error.issues[0].col).toBeGreaterThan(0);
  });

  test("a planted file at the extraction path is replaced and verified, never loaded", () => {
    const planted = "/run/plexd/native";
    mkdirSync(planted, { recursive: true, mode: 0o700 });
    for (const f of Bun.spawnSync(["ls", planted]).stdout.toString().split("\n").filter(Boolean)) {
      writeFileSync(join(planted, f), "garbage that would crash dlopen");
    }
    chmodSync(planted, 0o777); // widened by someone: must be tightened again
    const r = run([BIN, "version"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/addon\s+\d+\.\d+\.\d+/);
    expect(statSync(planted).mode & 0o777).toBe(0o700);
  });

  test("a symlinked extraction directory is refused", () => {
    const fakeRun = join(work, "xdg");
    chmodSync(work, 0o755);
    mkdirSync(join(fakeRun, "elsewhere"), { recursive: true, mode: 0o700 });
    mkdirSync(join(fakeRun, "plexd"), { recursive: true, mode: 0o755 });
    symlinkSync(join(fakeRun, "elsewhere"), join(fakeRun, "plexd", "native"));
    Bun.spawnSync(["chown", "-R", "65534:65534", fakeRun]);
    // Run as nobody so the per-user runtime dir under XDG_RUNTIME_DIR is used.
    const r = Bun.spawnSync(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", BIN, "version"], {
      env: { XDG_RUNTIME_DIR: fakeRun },
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toContain("addon    unavailable");
    expect(r.stdout.toString()).toContain("plexd/native: not a directory");
  });
});
