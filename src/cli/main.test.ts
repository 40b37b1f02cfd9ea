import { describe, expect, test } from "bun:test";
import { runCli } from "./main.ts";
import type { Io } from "./output.ts";

function capture(): Io & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (t) => stdout.push(t), err: (t) => stderr.push(t) };
}

describe("cli frame", () => {
  test("unknown command → exit 2 with a message", async () => {
    const io = capture();
    expect(await runCli(["frobnicate"], io, {})).toBe(2);
    expect(io.stderr.join("")).toContain('unknown command "frobnicate"');
  });
  test("unknown flag with --json → usage error document", async () => {
    const io = capture();
    expect(await runCli(["version", "--json", "--bogus"], io, {})).toBe(2);
    expect(JSON.parse(io.stdout.join(""))).toEqual({ schemaVersion: 1, error: { code: "usage", message: "unknown flag --bogus" } });
  });
  test("help lists commands and exits 0", async () => {
    const io = capture();
    expect(await runCli(["--help"], io, {})).toBe(0);
    expect(io.stdout.join("")).toContain("version");
  });
  test("version --json carries the checksum of the running executable", async () => {
    const io = capture();
    expect(await runCli(["version", "--json"], io, {})).toBe(0);
    const doc = JSON.parse(io.stdout.join(""));
    expect(doc.schemaVersion).toBe(1);
    expect(doc.data.checksum).toMatch(/^sha256:[0-9a-f]{64}$/);
    const want = new Bun.CryptoHasher("sha256").update(await Bun.file(process.execPath).bytes()).digest("hex");
    expect(doc.data.checksum).toBe(`sha256:${want}`);
  });
});
