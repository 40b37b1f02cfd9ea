import { describe, expect, test } from "bun:test";
import { configDump, configValidate } from "./command.ts";
import { EXIT_CONFIG } from "./errors.ts";

const files = (map: Record<string, string>) => async (path: string) => {
  const t = map[path];
  if (t === undefined) throw Object.assign(new Error("ENOENT"), { code: "ENOENT" });
  return t;
};

const GOOD = "api: https://cp.example.net\nheartbeat: {interval: 45s}\ntelemetry: {tracing: {headers: {authorization: Bearer-xyz}}}\n";
const BAD = "api: https://cp.example.net\nmesh:\n  mtu: 100\n  intrface: x\n";

describe("config validate", () => {
  test("ok, human", async () => {
    const r = await configValidate({ config: "/c.yaml" }, { env: { PLEXD_NOPE: "1" }, readFile: files({ "/c.yaml": GOOD }) });
    expect(r).toEqual({ exitCode: 0, stdout: "config: ok (/c.yaml)\n", stderr: "config: warning: ignoring unknown environment variable PLEXD_NOPE\n" });
  });

  test("invalid, human: one line per problem on stderr, exit 78", async () => {
    const r = await configValidate({ config: "/c.yaml" }, { env: {}, readFile: files({ "/c.yaml": BAD }) });
    expect(r.exitCode).toBe(EXIT_CONFIG);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(
      "config: mesh.mtu: must be between 1280 and 9000 (line 3, col 3)\nconfig: mesh.intrface: unknown key (did you mean interface?) (line 4, col 3)\n",
    );
  });

  test("ok, --json: exactly one document", async () => {
    const r = await configValidate({ config: "/c.yaml", json: true }, { env: {}, readFile: files({ "/c.yaml": GOOD }) });
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual({ schemaVersion: 1, data: { valid: true, path: "/c.yaml", file_found: true, warnings: [] } });
  });

  test("invalid, --json: error document with issues", async () => {
    const r = await configValidate({ config: "/c.yaml", json: true }, { env: {}, readFile: files({ "/c.yaml": BAD }) });
    expect(r.exitCode).toBe(78);
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual({
      schemaVersion: 1,
      error: {
        code: "config_invalid",
        message: "2 configuration errors",
        issues: [
          { path: "mesh.mtu", problem: "must be between 1280 and 9000", line: 3, col: 3 },
          { path: "mesh.intrface", problem: "unknown key (did you mean interface?)", line: 4, col: 3 },
        ],
      },
    });
  });

  test("YAML syntax error, --json", async () => {
    const r = await configValidate({ config: "/c.yaml", json: true }, { env: {}, readFile: files({ "/c.yaml": "api: [\n" }) });
    const doc = JSON.parse(r.stdout);
    expect(r.exitCode).toBe(78);
    expect(doc.error.issues[0].path).toBe("/c.yaml");
    expect(typeof doc.error.issues[0].line).toBe("number");
  });

  test("flags reach the loader", async () => {
    const r = await configValidate({ api: "http://example.com" }, { env: {}, readFile: files({}) });
    expect(r.stderr).toBe("config: api.url: http:// is only allowed for loopback hosts; use https:// (flag --api)\n");
  });
});

describe("config dump", () => {
  test("YAML, redacted", async () => {
    const r = await configDump({ config: "/c.yaml" }, { env: {}, readFile: files({ "/c.yaml": GOOD }) });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain("interval: 45s");
    expect(r.stdout).not.toContain("Bearer-xyz");
  });

  test("--json: config plus sources, like the config.dump action", async () => {
    const r = await configDump({ config: "/c.yaml", json: true, logLevel: "debug" }, { env: { PLEXD_MESH_MTU: "1400" }, readFile: files({ "/c.yaml": GOOD }) });
    const doc = JSON.parse(r.stdout);
    expect(Object.keys(doc)).toEqual(["schemaVersion", "data"]);
    expect(doc.data.config.heartbeat.interval).toBe("45s");
    expect(doc.data.config.telemetry.tracing.headers.authorization).toBe("***");
    expect(doc.data.sources).toMatchObject({ "heartbeat.interval": "file", "mesh.mtu": "env", log_level: "flag", "mesh.listen_port": "default" });
  });

  test("invalid config → exit 78", async () => {
    const r = await configDump({ config: "/c.yaml" }, { env: {}, readFile: files({ "/c.yaml": BAD }) });
    expect(r.exitCode).toBe(78);
    expect(r.stdout).toBe("");
  });
});
