import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { envKeys, envName } from "./catalog.ts";
import { ConfigError } from "./errors.ts";
import { buildConfig, DEFAULT_CONFIG_PATH, loadConfig, resolveConfigPath } from "./load.ts";

const FILE = "api: https://cp.example.net\nheartbeat:\n  interval: 20s\nlog_level: warn\n";

function fail(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("expected ConfigError");
}

async function failAsync(p: Promise<unknown>): Promise<ConfigError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("expected ConfigError");
}

const files = (map: Record<string, string>) => async (path: string) => {
  const t = map[path];
  if (t === undefined) throw Object.assign(new Error(`ENOENT: no such file, open '${path}'`), { code: "ENOENT" });
  return t;
};

describe("error text", () => {
  test("typo in a key names the path with line and col, exactly as §1", () => {
    const e = fail(() => buildConfig({ text: "api: https://cp.example.net\nmesh:\n  mtu: 1400\n  listen_prot: 5\n", path: "c.yaml", env: {} }));
    expect(e.format()).toBe("config: mesh.listen_prot: unknown key (did you mean listen_port?) (line 4, col 3)");
    expect(e.code).toBe("config_invalid");
    expect(e.name).toBe("ConfigError");
  });

  test("all problems are reported, in file order", () => {
    const e = fail(() => buildConfig({ text: "api: https://cp.example.net\nmesh: {mtu: 1}\nheartbeat: {interval: 7d}\nfoo: 1\n", path: "c.yaml", env: {} }));
    expect(e.format().split("\n")).toEqual([
      "config: mesh.mtu: must be between 1280 and 9000 (line 2, col 8)",
      'config: heartbeat.interval: invalid duration "7d" (days/weeks are not Go units; use hours, e.g. 168h) (line 3, col 13)',
      "config: foo: unknown key (line 4, col 1)",
    ]);
  });

  test("a problem inside a list item points at the item when the key is missing", () => {
    const e = fail(() => buildConfig({ text: "api: https://x.example\nhooks:\n  definitions:\n    - name: b\n", path: "c", env: {} }));
    expect(e.issues[0]).toMatchObject({ path: "hooks.definitions[0].path", problem: "is required", line: 4, col: 7 });
  });

  test("api string form keeps its position for api.url", () => {
    const e = fail(() => buildConfig({ text: "mesh: {}\napi: http://cp.example.net\n", path: "c", env: {} }));
    expect(e.issues[0]).toMatchObject({ path: "api.url", line: 2, col: 1 });
  });

  test("bad env values name the variable instead of a line", () => {
    const e = fail(() => buildConfig({ text: FILE, path: "c", env: { PLEXD_HEARTBEAT_INTERVAL: "30", PLEXD_POLICY_ENABLED: "maybe" } }));
    expect(e.format().split("\n").sort()).toEqual([
      "config: heartbeat.interval: invalid duration \"30\" (env PLEXD_HEARTBEAT_INTERVAL)",
      "config: policy.enabled: expected true/false/1/0/yes/no (env PLEXD_POLICY_ENABLED)",
    ]);
  });

  test("bad flag values name the flag", () => {
    const e = fail(() => buildConfig({ text: FILE, path: "c", env: {}, flags: { logLevel: "loud" } }));
    expect(e.format()).toBe("config: log_level: must be one of debug, info, warn, error, got string \"loud\" (flag --log-level)");
  });
});

describe("precedence", () => {
  test("env overrides file, flags override env", () => {
    const env = { PLEXD_LOG_LEVEL: "debug", PLEXD_HEARTBEAT_INTERVAL: "45s", PLEXD_API: "https://env.example" };
    const a = buildConfig({ text: FILE, path: "c", env });
    expect(a.config.log_level).toBe("debug");
    expect(a.config.heartbeat.interval).toBe(45_000);
    expect(a.config.api.url).toBe("https://env.example");
    expect(a.sources).toMatchObject({ log_level: "env", "heartbeat.interval": "env", "api.url": "env", "mesh.mtu": "default" });
    const b = buildConfig({ text: FILE, path: "c", env, flags: { logLevel: "error", api: "https://flag.example", mode: "bridge" } });
    expect(b.config.log_level).toBe("error");
    expect(b.config.api.url).toBe("https://flag.example");
    expect(b.config.mode).toBe("bridge");
    expect(b.sources).toMatchObject({ log_level: "flag", "api.url": "flag", mode: "flag", "heartbeat.interval": "env" });
    const c = buildConfig({ text: FILE, path: "c", env: {} });
    expect(c.config.log_level).toBe("warn");
    expect(c.sources).toMatchObject({ log_level: "file", "heartbeat.interval": "file", "api.url": "file" });
  });

  test("PLEXD_API wins over the generic PLEXD_API_URL", () => {
    const r = buildConfig({ text: null, path: "c", env: { PLEXD_API_URL: "https://generic.example", PLEXD_API: "https://named.example" } });
    expect(r.config.api.url).toBe("https://named.example");
  });

  test("comma-separated lists and typed scalars from env", () => {
    const r = buildConfig({
      text: FILE,
      path: "c",
      env: {
        PLEXD_NAT_TRAVERSAL_STUN_SERVERS: "stun1.example:3478, stun2.example ,",
        PLEXD_OBSERVE_METRICS: "node_resources,cgroup_resources",
        PLEXD_OBSERVE_CGROUP_UNITS: "",
        PLEXD_MESH_LISTEN_PORT: "51900",
        PLEXD_SCHEDULE_JITTER: "0.25",
        PLEXD_POLICY_LOG_DENIED: "no",
        PLEXD_TOKEN_METADATA: "0",
        PLEXD_LOGS_MAX_LINE_SIZE: "64Ki",
        PLEXD_TELEMETRY_TRACING_ENABLED: "yes",
      },
    });
    expect(r.config.nat_traversal.stun_servers).toEqual(["stun1.example:3478", "stun2.example"]);
    expect(r.config.observe.metrics).toEqual(["node_resources", "cgroup_resources"]);
    expect(r.config.observe.cgroup.units).toEqual([]);
    expect(r.config.mesh.listen_port).toBe(51900);
    expect(r.config.schedule.jitter).toBe(0.25);
    expect(r.config.policy.log_denied).toBe(false);
    expect(r.config.token.metadata).toBe(false);
    expect(r.config.logs.max_line_size).toBe(65536);
    expect(r.config.telemetry.tracing.enabled).toBe(true);
  });

  test("every named variable of §3 maps to its key", () => {
    const env = {
      PLEXD_API: "https://named.example",
      PLEXD_MODE: "bridge",
      PLEXD_LOG_LEVEL: "debug",
      PLEXD_DATA_DIR: "/srv/plexd",
      PLEXD_ACTIONS_ENABLED: "false",
      PLEXD_HOOKS_ENABLED: "false",
      PLEXD_HOOKS_DIR: "/srv/hooks",
      PLEXD_ACTIONS_MAX_CONCURRENT: "7",
      PLEXD_NODE_API_ENABLED: "false",
      PLEXD_NODE_API_SOCKET: "/srv/api.sock",
      PLEXD_NODE_API_HTTP_ENABLED: "true",
      PLEXD_NODE_API_HTTP_LISTEN: "127.0.0.1:9200",
      PLEXD_COMPAT_PROFILE: "legacy",
      PLEXD_BOOTSTRAP_TOKEN: "tok-4f9a7c",
      PLEXD_BOOTSTRAP_TOKEN_FILE: "/run/token",
      PLEXD_SESSION_TOKEN: "jwt",
      PLEXD_CONFIG: "/nowhere.yaml",
    };
    const r = buildConfig({ text: null, path: "/nowhere.yaml", env });
    const c = r.config;
    expect([c.api.url, c.mode, c.log_level, c.data_dir]).toEqual(["https://named.example", "bridge", "debug", "/srv/plexd"]);
    expect([c.actions.enabled, c.hooks.enabled, c.hooks.dir, c.actions.max_concurrent]).toEqual([false, false, "/srv/hooks", 7]);
    expect([c.node_api.enabled, c.node_api.socket, c.node_api.http.enabled, c.node_api.http.listen]).toEqual([false, "/srv/api.sock", true, "127.0.0.1:9200"]);
    expect(c.compat.profile).toBe("legacy");
    expect(r.bootstrapTokenFile).toBe("/run/token");
    expect(r.warnings).toEqual([]);
    expect(JSON.stringify(r)).not.toContain("tok-4f9a7c");
  });

  test("every env-settable key has a unique variable name", () => {
    const names = envKeys().map((k) => envName(k.path));
    expect(new Set(names).size).toBe(names.length);
    expect(names).toContain("PLEXD_NAT_TRAVERSAL_STUN_SERVERS");
    expect(names).not.toContain("PLEXD_METADATA");
    expect(names).not.toContain("PLEXD_HOOKS_DEFINITIONS");
    expect(names).not.toContain("PLEXD_TELEMETRY_TRACING_HEADERS");
  });

  test("maps and object lists cannot be set from env (and warn as unknown)", () => {
    const r = buildConfig({ text: FILE, path: "c", env: { PLEXD_METADATA: "a=b", PLEXD_LOGS_SIGNALS: "x" } });
    expect(r.config.metadata).toEqual({});
    expect(r.warnings).toEqual([{ code: "unknown_env", message: "ignoring unknown environment variables PLEXD_LOGS_SIGNALS, PLEXD_METADATA" }]);
  });

  test("unknown PLEXD_ variables give exactly one warning; token.env's variable is known", () => {
    const r = buildConfig({
      text: FILE + "token: {env: PLEXD_MY_TOKEN}\n",
      path: "c",
      env: { PLEXD_HEARTBEAT_INTERVL: "1s", PLEXD_FOO: "x", PLEXD_MY_TOKEN: "t", HOME: "/root" },
    });
    expect(r.warnings).toEqual([{ code: "unknown_env", message: "ignoring unknown environment variables PLEXD_FOO, PLEXD_HEARTBEAT_INTERVL" }]);
  });

  test("OTEL_* variables override telemetry.tracing", () => {
    const r = buildConfig({
      text: FILE + "telemetry: {tracing: {endpoint: 'https://file.example', headers: {a: b}}}\n",
      path: "c",
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: "https://otel.example:4318",
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_EXPORTER_OTLP_HEADERS: "api-key=s%3Dcret,x-tenant=t1",
        OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG: "0.5",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://otel.example/custom",
        OTEL_EXPORTER_OTLP_TIMEOUT: "2000",
        OTEL_SERVICE_NAME: "edge",
      },
    });
    const t = r.config.telemetry.tracing;
    expect(t).toMatchObject({ endpoint: "https://otel.example:4318", protocol: "http/json", headers: { "api-key": "s=cret", "x-tenant": "t1" }, sample_ratio: 0.5 });
    expect(r.otel).toEqual({ tracesEndpoint: "https://otel.example/custom", timeoutMs: 2000, serviceName: "edge", sampler: "parentbased_traceidratio", samplerArg: "0.5" });
    expect(r.sources["telemetry.tracing.endpoint"]).toBe("env");
  });

  test("OTEL_SDK_DISABLED=true forces tracing off; unsupported protocol is an error naming the variable", () => {
    expect(buildConfig({ text: FILE, path: "c", env: { OTEL_SDK_DISABLED: "true" } }).config.telemetry.tracing.enabled).toBe(false);
    const e = fail(() => buildConfig({ text: FILE, path: "c", env: { OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" } }));
    expect(e.format()).toContain("telemetry.tracing.protocol: must be one of http/protobuf, http/json, got string \"grpc\" (env OTEL_EXPORTER_OTLP_PROTOCOL)");
  });
});

describe("file resolution", () => {
  test("--config > PLEXD_CONFIG > default", () => {
    expect(resolveConfigPath({ config: "/a.yaml" }, { PLEXD_CONFIG: "/b.yaml" })).toBe("/a.yaml");
    expect(resolveConfigPath({}, { PLEXD_CONFIG: "/b.yaml" })).toBe("/b.yaml");
    expect(resolveConfigPath({}, {})).toBe(DEFAULT_CONFIG_PATH);
  });

  test("loadConfig reads the resolved file", async () => {
    const r = await loadConfig({ env: { PLEXD_CONFIG: "/b.yaml" }, readFile: files({ "/b.yaml": FILE }) });
    expect(r.path).toBe("/b.yaml");
    expect(r.fileFound).toBe(true);
    expect(r.config.heartbeat.interval).toBe(20_000);
  });

  test("missing file is fine when api comes from env or flag", async () => {
    const a = await loadConfig({ env: { PLEXD_API: "https://cp.example.net" }, readFile: files({}) });
    expect(a.fileFound).toBe(false);
    expect(a.path).toBe(DEFAULT_CONFIG_PATH);
    const b = await loadConfig({ env: {}, flags: { api: "https://cp.example.net" }, readFile: files({}) });
    expect(b.config.api.url).toBe("https://cp.example.net");
  });

  test("missing file without api is an error", async () => {
    const e = await failAsync(loadConfig({ env: {}, readFile: files({}) }));
    expect(e.format()).toBe("config: /etc/plexd/config.yaml: config file not found (and api is not set by PLEXD_API or --api)");
  });

  test("unreadable file is an error (not treated as missing)", async () => {
    const e = await failAsync(
      loadConfig({ env: { PLEXD_API: "https://x.example" }, readFile: async () => { throw Object.assign(new Error("EACCES: permission denied"), { code: "EACCES" }); } }),
    );
    expect(e.format()).toContain("cannot read config file: EACCES");
  });

  test("real files on disk, including api.ca_file checks", async () => {
    const dir = mkdtempSync(join(tmpdir(), "plexd-config-test-"));
    try {
      const cfg = join(dir, "config.yaml");
      const ca = join(dir, "ca.pem");
      writeFileSync(ca, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
      writeFileSync(cfg, `api: {url: https://cp.example.net, ca_file: ${ca}}\n`);
      expect((await loadConfig({ flags: { config: cfg }, env: {} })).config.api.ca_file).toBe(ca);
      writeFileSync(ca, "not a pem");
      expect((await failAsync(loadConfig({ flags: { config: cfg }, env: {} }))).format()).toBe("config: api.ca_file: is not a PEM certificate bundle");
      writeFileSync(cfg, `api: {url: https://cp.example.net, ca_file: ${join(dir, "missing.pem")}}\n`);
      expect((await failAsync(loadConfig({ flags: { config: cfg }, env: {} }))).issues[0]!.problem).toContain("cannot read");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("warnings", () => {
  test("tls_insecure_skip_verify, bridge in node mode, public node API listener", () => {
    const r = buildConfig({
      text: "api: {url: https://x.example, tls_insecure_skip_verify: true}\nbridge: {relay: {enabled: false}}\nnode_api: {http: {enabled: true, listen: '0.0.0.0:9100'}}\n",
      path: "c",
      env: {},
    });
    expect(r.warnings.map((w) => w.code)).toEqual(["tls_insecure", "bridge_ignored", "node_api_public"]);
  });
});
