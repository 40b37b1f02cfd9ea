import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { allKeys } from "./catalog.ts";
import { defaultConfig, diffConfig, dumpConfig, nonDefaults, RELOADABLE_KEYS } from "./dump.ts";
import { buildConfig } from "./load.ts";
import { redactUrl, REDACTED } from "./redact.ts";

const FULL = `
api: {url: "https://user:pw@cp.example.net/?token=abc&x=1", connect_timeout: 1500ms}
metadata: {rack: r1, db_password: hunter2}
mesh: {mtu: 1400, persistent_keepalive: 0s}
logs:
  filters: [{unit: plexd}, {severity: warn}]
  max_line_size: 32Ki
  signals:
    - {name: php-fatal, match: "PHP Fatal error", window: 90m, threshold: 3, severity: error}
hooks:
  definitions:
    - name: backup
      path: /etc/plexd/hooks.d/backup.sh
      parameters:
        - {name: target, type: string, required: true}
        - {name: compress, type: bool, default: "true"}
      timeout: 300s
      resources: {cpu: "0.5", memory: 512M}
telemetry:
  tracing:
    endpoint: https://otel.example:4318
    headers: {authorization: "Bearer abc.def", x-tenant: t1}
journal: {retry_base: 250ms, retention: 200h}
upgrade: {max_artifact_size: 1000}
`;

const load = (text: string) => buildConfig({ text, path: "c.yaml", env: {} }).config;

describe("dumpConfig", () => {
  const config = load(FULL);
  const text = dumpConfig(config);

  test("prints durations as Go strings and sizes with binary units", () => {
    expect(text).toContain("connect_timeout: 1.5s");
    expect(text).toContain("persistent_keepalive: 0s");
    expect(text).toContain("window: 1h30m");
    expect(text).toContain("retention: 200h");
    expect(text).toContain("max_line_size: 32Ki");
    expect(text).toContain("memory: 512Mi");
    expect(text).toContain("max_artifact_size: 1000");
  });

  test("redacts secrets", () => {
    expect(text).not.toContain("Bearer");
    expect(text).not.toContain("abc.def");
    expect(text).not.toContain("hunter2");
    expect(text).not.toContain("pw@");
    expect(text).not.toContain("token=abc");
    expect(text).toContain(`authorization: "${REDACTED}"`);
    expect(text).toContain(`x-tenant: "${REDACTED}"`);
    expect(text).toContain(`db_password: "${REDACTED}"`);
    expect(text).toContain("rack: r1");
    expect(text).toContain("token=***");
  });

  test("round trip: dump then load gives the same config", () => {
    const back = load(dumpConfig(config, { redact: false }));
    expect(back).toEqual(config);
  });

  test("round trip of a config without secrets works with the redacted dump too", () => {
    const plain = load("api: https://cp.example.net\nmesh: {mtu: 1400}\nobserve: {interval: 1m30s}\n");
    expect(load(dumpConfig(plain))).toEqual(plain);
  });

  test("round trip of the spec example (config.md §2.21)", () => {
    const spec = readFileSync("/work/shared/spec/config.md", "utf8");
    const example = /### 2\.21 Example[\s\S]*?```yaml\n([\s\S]*?)```/.exec(spec)?.[1];
    if (example === undefined) return; // spec not present in this checkout
    const c = load(example);
    expect(load(dumpConfig(c, { redact: false }))).toEqual(c);
  });

  test("dump of the defaults loads back to the defaults", () => {
    const d = { ...defaultConfig(), api: { ...defaultConfig().api, url: "https://cp.example.net" } };
    expect(load(dumpConfig(d))).toEqual(d);
  });
});

describe("nonDefaults", () => {
  test("lists only changed keys, redacted, in schema order", () => {
    const nd = nonDefaults(load(FULL));
    expect(nd.map((k) => k.path)).toEqual([
      "api.url",
      "api.connect_timeout",
      "metadata",
      "mesh.mtu",
      "mesh.persistent_keepalive",
      "logs.filters",
      "logs.max_line_size",
      "logs.signals",
      "hooks.definitions",
      "journal.retry_base",
      "journal.retention",
      "telemetry.tracing.endpoint",
      "telemetry.tracing.headers",
      "upgrade.max_artifact_size",
    ]);
    expect(nd.find((k) => k.path === "api.connect_timeout")!.value).toBe("1.5s");
    expect(nd.find((k) => k.path === "telemetry.tracing.headers")!.value).toEqual({ authorization: REDACTED, "x-tenant": REDACTED });
    expect(JSON.stringify(nd)).not.toContain("hunter2");
  });

  test("only api.url for a minimal config", () => {
    expect(nonDefaults(load("api: https://cp.example.net"))).toEqual([{ path: "api.url", value: "https://cp.example.net" }]);
  });
});

describe("diffConfig", () => {
  test("splits reloadable and restart-required keys", () => {
    const a = load("api: https://cp.example.net");
    const b = load("api: https://cp.example.net\nlog_level: debug\nmesh: {mtu: 1400}\nhooks: {definitions: [{name: h, path: h}]}");
    expect(diffConfig(a, b)).toEqual({ changedKeys: ["log_level", "mesh.mtu", "hooks.definitions"], restartRequiredKeys: ["mesh.mtu"] });
  });

  test("every reloadable key exists in the schema", () => {
    const paths = new Set(allKeys().map((k) => k.path));
    for (const k of RELOADABLE_KEYS) expect(paths.has(k)).toBe(true);
  });
});

describe("redactUrl", () => {
  test("hides userinfo and secret-looking query values, leaves clean URLs byte-identical", () => {
    expect(redactUrl("https://cp.example.net")).toBe("https://cp.example.net");
    expect(redactUrl("https://a:b@h.example/p")).toBe("https://***@h.example/p");
    expect(redactUrl("https://h.example/?api_key=1&page=2")).toBe("https://h.example/?api_key=***&page=2");
    expect(redactUrl("not a url")).toBe("not a url");
  });
});
