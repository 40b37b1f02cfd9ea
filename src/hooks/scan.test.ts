import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildConfig } from "../config/index.ts";
import { createLogger } from "../log/index.ts";
import { mergeHookBaselines, scanHooks, type HooksConfig } from "./index.ts";

const UID = process.getuid!();
let root: string;
let dir: string;
let lines: string[];
const log = () => createLogger({ level: "debug", format: "text", write: (l) => lines.push(l) });

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "plexd-hooks-"));
  dir = join(root, "hooks.d");
  mkdirSync(dir, { mode: 0o755 });
  chmodSync(dir, 0o755);
  lines = [];
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function script(path: string, body = "#!/bin/sh\necho ok\n", mode = 0o755): string {
  writeFileSync(path, body);
  chmodSync(path, mode);
  return path;
}

/** The hooks section as the real config loader produces it (defaults filled in). */
function hooksConfig(defs: string[], extra = ""): HooksConfig {
  const text = [`api: https://cp.example`, `hooks:`, `  dir: ${dir}`, extra ? `  ${extra}` : "", `  definitions:`, ...defs.map((d) => `    - ${d}`)].filter(Boolean).join("\n");
  return buildConfig({ path: "/x", text }).config.hooks;
}

const scan = (h: HooksConfig) => scanHooks(h, { log: log(), ownerUid: UID });

describe("scanHooks", () => {
  test("valid hook: resolved path, SHA-256 equal to node:crypto, definition fields carried", async () => {
    const body = "#!/bin/sh\necho backup\n".repeat(100_000); // > 1 MiB: more than one read
    script(join(dir, "backup.sh"), body);
    const h = hooksConfig([
      `{name: backup, path: backup.sh, description: "nightly backup", timeout: 2m, sandbox: none, parameters: [{name: target, type: string, required: true, description: where}, {name: dry, type: bool, default: "false"}]}`,
    ]);
    const r = await scan(h);
    expect(r.invalid).toEqual([]);
    expect(r.valid).toHaveLength(1);
    const v = r.valid[0]!;
    expect(v).toMatchObject({ name: "backup", description: "nightly backup", path: join(dir, "backup.sh"), timeout: 120_000, sandbox: "none" });
    expect(v.checksum).toBe(createHash("sha256").update(readFileSync(join(dir, "backup.sh"))).digest("hex"));
    expect(v.parameters.map((p) => p.name)).toEqual(["target", "dry"]);
    expect(lines.filter((l) => l.includes("hook excluded"))).toEqual([]);
  });

  test("a symlink inside hooks.dir is followed; its target is what gets hashed", async () => {
    mkdirSync(join(dir, "lib"), { mode: 0o755 });
    chmodSync(join(dir, "lib"), 0o755);
    script(join(dir, "lib", "real.sh"), "#!/bin/sh\necho real\n");
    symlinkSync("lib/real.sh", join(dir, "link.sh"));
    const r = await scan(hooksConfig([`{name: linked, path: ${join(dir, "link.sh")}}`]));
    expect(r.valid.map((v) => v.path)).toEqual([join(dir, "lib", "real.sh")]);
    expect(r.valid[0]!.checksum).toBe(createHash("sha256").update("#!/bin/sh\necho real\n").digest("hex"));
  });

  test("symlink escaping hooks.dir → excluded (outside_dir), logged as error with name and reason", async () => {
    script(join(root, "evil.sh"));
    symlinkSync(join(root, "evil.sh"), join(dir, "escape.sh"));
    // A sibling directory sharing the prefix must not count as inside either.
    mkdirSync(`${dir}-other`, { mode: 0o755 });
    script(join(`${dir}-other`, "x.sh"));
    const r = await scan(hooksConfig([`{name: escape, path: escape.sh}`, `{name: sibling, path: ${dir}-other/x.sh}`]));
    expect(r.valid).toEqual([]);
    expect(r.invalid.map((i) => [i.name, i.code])).toEqual([
      ["escape", "outside_dir"],
      ["sibling", "outside_dir"],
    ]);
    expect(r.invalid[0]!.reason).toContain("outside hooks.dir");
    const logged = lines.filter((l) => l.includes("hook excluded"));
    expect(logged).toHaveLength(2);
    expect(logged[0]).toMatch(/ error hook excluded hook=escape /);
    expect(logged[0]).toContain("escape");
    expect(logged[0]).toContain("outside_dir");
  });

  test("world- or group-writable file → excluded (writable); the rest stays valid", async () => {
    script(join(dir, "ww.sh"), undefined, 0o757);
    script(join(dir, "gw.sh"), undefined, 0o775);
    script(join(dir, "ok.sh"));
    const r = await scan(hooksConfig([`{name: ww, path: ww.sh}`, `{name: gw, path: gw.sh}`, `{name: ok, path: ok.sh}`]));
    expect(r.invalid.map((i) => [i.name, i.code])).toEqual([
      ["ww", "writable"],
      ["gw", "writable"],
    ]);
    expect(r.valid.map((v) => v.name)).toEqual(["ok"]);
  });

  test("missing file → not_found; not executable → not_executable", async () => {
    script(join(dir, "noexec.sh"), undefined, 0o644);
    const r = await scan(hooksConfig([`{name: gone, path: gone.sh}`, `{name: noexec, path: noexec.sh}`]));
    expect(r.invalid.map((i) => [i.name, i.code])).toEqual([
      ["gone", "not_found"],
      ["noexec", "not_executable"],
    ]);
  });

  test("not a regular file: directory and FIFO → not_regular (the FIFO is never opened)", async () => {
    mkdirSync(join(dir, "adir"), { mode: 0o755 });
    execFileSync("mkfifo", ["-m", "0755", join(dir, "pipe")]);
    const r = await scan(hooksConfig([`{name: adir, path: adir}`, `{name: pipe, path: pipe}`]));
    expect(r.invalid.map((i) => [i.name, i.code])).toEqual([
      ["adir", "not_regular"],
      ["pipe", "not_regular"],
    ]);
    expect(r.invalid[1]!.reason).toContain("fifo");
  });

  test("a writable directory between hooks.dir and the file → dir_insecure", async () => {
    mkdirSync(join(dir, "open"));
    chmodSync(join(dir, "open"), 0o777);
    script(join(dir, "open", "h.sh"));
    const r = await scan(hooksConfig([`{name: h, path: open/h.sh}`]));
    expect(r.invalid.map((i) => i.code)).toEqual(["dir_insecure"]);
  });

  test("hooks.dir itself writable or missing → every hook excluded (dir_unusable)", async () => {
    script(join(dir, "a.sh"));
    chmodSync(dir, 0o777);
    const r = await scan(hooksConfig([`{name: a, path: a.sh}`]));
    expect(r.invalid.map((i) => i.code)).toEqual(["dir_unusable"]);
    chmodSync(dir, 0o755);
    rmSync(dir, { recursive: true });
    const r2 = await scan(hooksConfig([`{name: a, path: a.sh}`]));
    expect(r2.invalid.map((i) => i.code)).toEqual(["dir_unusable"]);
  });

  test("owner must be the required uid (root by default)", async () => {
    script(join(dir, "a.sh"));
    const r = await scanHooks(hooksConfig([`{name: a, path: a.sh}`]), { log: log(), ownerUid: UID + 1 });
    // hooks.dir has the wrong owner too: reported first, for every hook.
    expect(r.invalid.map((i) => i.code)).toEqual(["dir_unusable"]);
    expect(r.invalid[0]!.reason).toContain(`uid ${UID}`);
  });

  test("hooks.enabled false → nothing scanned", async () => {
    const r = await scan(hooksConfig([`{name: a, path: a.sh}`], "enabled: false"));
    expect(r).toEqual({ enabled: false, dir, valid: [], invalid: [] });
    expect(lines).toEqual([]);
  });
});

describe("mergeHookBaselines", () => {
  test("replaces the entries inside hooks.dir, keeps the binary's", async () => {
    script(join(dir, "a.sh"), "#!/bin/sh\n");
    const r = await scan(hooksConfig([`{name: a, path: a.sh}`]));
    const current = { "/usr/local/bin/plexd": "11".repeat(32), [join(dir, "old.sh")]: "22".repeat(32), [`${dir}-x/y`]: "33".repeat(32) };
    expect(mergeHookBaselines(current, r)).toEqual({
      "/usr/local/bin/plexd": "11".repeat(32),
      [`${dir}-x/y`]: "33".repeat(32),
      [join(dir, "a.sh")]: r.valid[0]!.checksum,
    });
  });
});
