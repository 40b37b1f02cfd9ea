import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../log/index.ts";
import { TokenError, resolveToken, validateToken, waitForToken } from "./token.ts";

let dir: string;
let imds: ReturnType<typeof Bun.serve>;
let imdsSeen: { method: string; path: string; headers: Headers }[] = [];
let imdsMode: "v2" | "v1" | "none" | "huge" = "v2";

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "plexd-token-test-"));
  imds = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const path = new URL(req.url).pathname;
      imdsSeen.push({ method: req.method, path, headers: req.headers });
      if (req.method === "PUT" && path === "/latest/api/token") {
        return imdsMode === "v2" ? new Response("sess-123") : new Response("", { status: 403 });
      }
      if (req.method === "GET" && path === "/plexd/bootstrap-token") {
        if (imdsMode === "none") return new Response("<html>not found</html>", { status: 404 });
        if (imdsMode === "huge") return new Response("a".repeat(600));
        if (imdsMode === "v2" && req.headers.get("x-aws-ec2-metadata-token") !== "sess-123") return new Response("", { status: 401 });
        return new Response("  meta-token\n");
      }
      return new Response("", { status: 404 });
    },
  });
});
afterAll(() => {
  imds.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

describe("validateToken", () => {
  test("trimmed; ≤ 512 bytes; 0x20–0x7E only; empty = absent", () => {
    expect(validateToken("  abc def \n")).toBe("abc def");
    expect(validateToken(" \n\t")).toBeUndefined();
    expect(validateToken("x".repeat(512))).toHaveLength(512);
    expect(() => validateToken("x".repeat(513))).toThrow(TokenError);
    expect(() => validateToken("ab\u0001c")).toThrow(/0x20/);
    expect(() => validateToken("tökén")).toThrow(TokenError);
    expect(() => validateToken("a\tb")).toThrow(TokenError);
  });

  test("the error never contains the token", () => {
    try {
      validateToken("secret-value\u0007", "env X");
      throw new Error("unreachable");
    } catch (e) {
      expect((e as Error).message).not.toContain("secret-value");
      expect((e as TokenError).code).toBe("invalid_token");
    }
  });
});

describe("resolveToken", () => {
  test("sources in order: explicit value, explicit file, token.file, env, metadata", async () => {
    const ef = join(dir, "explicit");
    const tf = join(dir, "bootstrap-token");
    writeFileSync(ef, "from-explicit-file\n");
    writeFileSync(tf, "from-token-file\n");
    const env = { PLEXD_BOOTSTRAP_TOKEN: "from-env" };
    const metadata = { url: `http://127.0.0.1:${imds.port}/`, path: "/plexd/bootstrap-token" };
    const all = { explicitValue: "from-value", explicitFile: ef, file: tf, envName: "PLEXD_BOOTSTRAP_TOKEN", env, metadata };
    imdsMode = "v2";
    expect(await resolveToken(all)).toEqual({ token: "from-value", source: "explicit" });
    expect(await resolveToken({ ...all, explicitValue: "  " })).toEqual({ token: "from-explicit-file", source: "explicit_file", path: ef });
    expect(await resolveToken({ ...all, explicitValue: undefined, explicitFile: join(dir, "nope") })).toEqual({ token: "from-token-file", source: "file", path: tf });
    writeFileSync(tf, "\n");
    expect(await resolveToken({ ...all, explicitValue: undefined, explicitFile: undefined })).toEqual({ token: "from-env", source: "env" });
    imdsSeen = [];
    expect(await resolveToken({ ...all, explicitValue: undefined, explicitFile: undefined, env: {} })).toEqual({ token: "meta-token", source: "metadata" });
    expect(imdsSeen.map((s) => `${s.method} ${s.path}`)).toEqual(["PUT /latest/api/token", "GET /plexd/bootstrap-token"]);
    expect(imdsSeen[0]!.headers.get("x-aws-ec2-metadata-token-ttl-seconds")).toBe("21600");
    expect(await resolveToken({ file: join(dir, "none"), envName: "X", env: {} })).toBeUndefined();
  });

  test("metadata: IMDSv1 fallback, 404 = none, body > 512 bytes = invalid, unreachable = none", async () => {
    const metadata = { url: `http://127.0.0.1:${imds.port}`, path: "/plexd/bootstrap-token", timeoutMs: 500 };
    imdsMode = "v1";
    expect((await resolveToken({ metadata }))?.token).toBe("meta-token");
    imdsMode = "none";
    expect(await resolveToken({ metadata })).toBeUndefined();
    imdsMode = "huge";
    await expect(resolveToken({ metadata })).rejects.toThrow(/longer than 512/);
    expect(await resolveToken({ metadata: { ...metadata, url: "http://127.0.0.1:1" } })).toBeUndefined();
  });

  test("an invalid winning token is an error (the CP is not contacted)", async () => {
    const tf = join(dir, "bad-token");
    writeFileSync(tf, "bad\u0000token");
    await expect(resolveToken({ file: tf, envName: "E", env: { E: "good" } })).rejects.toThrow(TokenError);
  });
});

describe("waitForToken", () => {
  test("polls every 5 s until the file appears", async () => {
    const tf = join(dir, "late-token");
    let t = 0;
    const sleeps: number[] = [];
    const r = await waitForToken(
      { file: tf, logger: createLogger({ write: () => {} }) },
      {
        waitMs: 300_000,
        now: () => t,
        sleep: async (ms) => {
          sleeps.push(ms);
          t += ms;
          if (sleeps.length === 3) writeFileSync(tf, "late\n");
        },
      },
    );
    expect(r).toEqual({ token: "late", source: "file", path: tf });
    expect(sleeps).toEqual([5000, 5000, 5000]);
  });

  test("gives up after token_wait with no_token; 0 = one look", async () => {
    let t = 0;
    const sleeps: number[] = [];
    const p = waitForToken({ file: join(dir, "never") }, { waitMs: 12_000, now: () => t, sleep: async (ms) => (sleeps.push(ms), void (t += ms)) });
    await expect(p).rejects.toMatchObject({ code: "no_token" });
    expect(sleeps).toEqual([5000, 5000, 2000]);
    await expect(waitForToken({ file: join(dir, "never") }, { waitMs: 0, sleep: async () => { throw new Error("must not sleep"); } })).rejects.toMatchObject({ code: "no_token" });
  });
});
