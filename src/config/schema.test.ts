import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { defaultConfig } from "./dump.ts";
import { ConfigError, type ConfigIssue } from "./errors.ts";
import { buildConfig } from "./load.ts";
import { ConfigSchema } from "./schema.ts";

const S = 1000;
const MIN = 60 * S;
const H = 60 * MIN;
const KiB = 1024;
const MiB = 1024 * KiB;

function load(yaml: string) {
  return buildConfig({ text: `api: https://cp.example.net\n${yaml}`, path: "c.yaml", env: {} }).config;
}

function issuesOf(yaml: string): ConfigIssue[] {
  try {
    const text = yaml.startsWith("api:") ? yaml : `api: https://cp.example.net\n${yaml}`;
    buildConfig({ text, path: "c.yaml", env: {} });
  } catch (e) {
    if (e instanceof ConfigError) return [...e.issues];
    throw e;
  }
  throw new Error(`expected validation to fail for:\n${yaml}`);
}

describe("defaults", () => {
  const c = load("");
  test("api", () => {
    expect(c.api).toEqual({ url: "https://cp.example.net", ca_file: "", tls_insecure_skip_verify: false, connect_timeout: 10 * S, request_timeout: 30 * S, sse_idle_timeout: 90 * S });
  });
  test("general", () => {
    expect([c.log_level, c.log_format, c.mode, c.data_dir, c.hostname, c.metadata]).toEqual(["info", "auto", "node", "/var/lib/plexd", "", {}]);
  });
  test("registration", () => expect(c.registration).toEqual({ max_retry_duration: 5 * MIN, token_wait: 5 * MIN }));
  test("mesh", () => {
    expect(c.mesh).toEqual({ interface: "plexd0", listen_port: 51820, mtu: 1420, backend: "auto", wireguard_go_path: "wireguard-go", persistent_keepalive: 25 * S });
  });
  test("token", () => {
    expect(c.token).toEqual({
      file: "/etc/plexd/bootstrap-token",
      env: "PLEXD_BOOTSTRAP_TOKEN",
      metadata: true,
      metadata_url: "http://169.254.169.254",
      metadata_path: "/plexd/bootstrap-token",
      metadata_timeout: 2 * S,
    });
  });
  test("reconcile, policy, heartbeat", () => {
    expect(c.reconcile).toEqual({ interval: 60 * S });
    expect(c.policy).toEqual({ enabled: true, default: "deny", log_denied: true });
    expect(c.heartbeat).toEqual({ interval: 30 * S });
  });
  test("nat_traversal", () => {
    expect(c.nat_traversal).toEqual({ enabled: true, stun_servers: ["stun.l.google.com:19302", "stun.cloudflare.com:3478"], refresh_interval: 60 * S, timeout: 5 * S, fallback: "relay" });
  });
  test("observe", () => {
    expect(c.observe).toEqual({
      enabled: true,
      interval: 15 * S,
      batch_interval: 10 * S,
      batch_max_size: 500,
      buffer_size: 10000,
      metrics: ["node_resources", "tunnel_health", "peer_latency", "agent_stats"],
      cgroup: { units: [], max_units: 50 },
    });
  });
  test("logs", () => {
    expect(c.logs).toEqual({ enabled: true, sources: ["journald"], filters: [], batch_interval: 10 * S, batch_max_size: 1000, buffer_size: 10000, max_line_size: 16384, signals: [] });
  });
  test("logs.signals[] item", () => {
    expect(load("logs: {signals: [{name: s, match: x}]}").logs.signals[0]).toEqual({
      name: "s", match: "x", unit: "", path: "", min_severity: "debug", window: 5 * MIN, threshold: 1, severity: "warn", sample: true,
    });
  });
  test("audit", () => {
    expect(c.audit).toEqual({ enabled: true, sources: ["auditd", "kubernetes"], kubernetes_log_path: "", batch_interval: 10 * S, batch_max_size: 500, buffer_size: 10000 });
  });
  test("access", () => {
    expect(c.access).toEqual({
      ssh: { enabled: true, host_key_file: "/var/lib/plexd/ssh_host_key", idle_timeout: 30 * MIN, max_sessions: 10 },
      kubernetes: { enabled: false, api_server: "", idle_timeout: 15 * MIN },
    });
  });
  test("actions", () => {
    expect(c.actions).toEqual({
      enabled: true,
      max_concurrent: 5,
      max_action_timeout: 10 * MIN,
      max_output_bytes: 65536,
      socket: "/run/plexd/plexd.sock",
      local_auth: { require_root: true },
      session: { issuer: "plexsphere", max_token_lifetime: 24 * H, clock_leeway: 60 * S, revocation_max_entries: 10000 },
    });
  });
  test("hooks and hooks.definitions[] item", () => {
    expect(c.hooks).toEqual({ enabled: true, dir: "/etc/plexd/hooks.d", watch: true, auto_announce: true, definitions: [] });
    expect(load("hooks: {definitions: [{name: h, path: h.sh, parameters: [{name: p}]}]}").hooks.definitions[0]).toEqual({
      name: "h",
      path: "/etc/plexd/hooks.d/h.sh",
      description: "",
      parameters: [{ name: "p", type: "string", required: false, description: "" }],
      timeout: 30 * S,
      user: "nobody",
      group: "",
      sandbox: "namespaced",
      resources: { cpu: 1, memory: 512 * MiB, pids: 512 },
      sandbox_options: { writable_paths: [], mount_proc: true, allowed_devices: [], image: "", network: "none", capabilities: [] },
    });
  });
  test("bridge", () => {
    expect(c.bridge).toEqual({ access: [], ingress: { enabled: false, listen: "0.0.0.0:443" }, relay: { enabled: true, listen_port: 51820 }, site_to_site: [] });
    expect(load("mode: bridge\nbridge: {access: [{type: wireguard}]}").bridge.access[0]).toEqual({ type: "wireguard", auth_key_env: "", setup_key_env: "", listen_port: 51821 });
  });
  test("node_api", () => {
    expect(c.node_api).toEqual({
      enabled: true,
      socket: "/run/plexd/api.sock",
      http: { enabled: false, listen: "127.0.0.1:9100", token_file: "/etc/plexd/node-api-token" },
      debounce: 5 * S,
      shutdown_timeout: 5 * S,
      secret_fetch_timeout: 10 * S,
      max_body_size: MiB,
    });
  });
  test("integrity", () => expect(c.integrity).toEqual({ enabled: true, verify_interval: 5 * MIN, binary_path: "" }));
  test("§2.20 sections", () => {
    expect(c.compat).toEqual({ profile: "standard" });
    expect(c.journal).toEqual({ max_retries: 5, retry_base: 2 * S, retry_max: 5 * MIN, retention: 168 * H, max_rows: 100000, dlq_retention: 720 * H, max_db_size: 512 * MiB });
    expect(c.outbox).toEqual({ max_age: 168 * H });
    expect(c.telemetry).toEqual({ tracing: { enabled: "auto", endpoint: "", protocol: "http/protobuf", headers: {}, sample_ratio: 0.1, propagate: false } });
    expect(c.inventory).toEqual({ enabled: true, interval: H, collectors: ["os", "packages", "listening_ports", "services", "nginx", "php"] });
    expect(c.upgrade).toEqual({ rollback_deadline: 5 * MIN, require_signature: false, helper_unit: "plexd-upgrade.service", max_artifact_size: 512 * MiB });
    expect(c.schedule).toEqual({ jitter: 0.1 });
    expect(c.shutdown).toEqual({ deregister_on_stop: false, drain_timeout: 30 * S });
  });
  test("defaultConfig() equals a parse of only api", () => {
    expect({ ...defaultConfig(), api: c.api }).toEqual(c);
  });
  test("list defaults are not shared between parses", () => {
    const a = load("");
    a.nat_traversal.stun_servers.push("x");
    expect(load("").nat_traversal.stun_servers).toHaveLength(2);
  });
});

describe("accepted values", () => {
  test("api as a mapping equals the string form", () => {
    expect(load("").api).toEqual(buildConfig({ text: "api: {url: https://cp.example.net}", path: "c", env: {} }).config.api);
  });
  test("http only for loopback", () => {
    for (const url of ["http://127.0.0.1:8080", "http://localhost", "http://[::1]:8443"]) {
      expect(buildConfig({ text: `api: "${url}"`, path: "c", env: {} }).config.api.url).toBe(url);
    }
  });
  test("sizes, cpu, durations", () => {
    const c = load(
      "logs: {max_line_size: 1Mi}\nhooks:\n  definitions:\n    - {name: h, path: /etc/plexd/hooks.d/h, resources: {cpu: \"0.5\", memory: 1G}}\nactions: {max_output_bytes: 1K}",
    );
    expect(c.logs.max_line_size).toBe(MiB);
    expect(c.hooks.definitions[0]!.resources).toEqual({ cpu: 0.5, memory: 1024 ** 3, pids: 512 });
    expect(c.actions.max_output_bytes).toBe(1024);
    expect(load("mesh: {persistent_keepalive: 0s}").mesh.persistent_keepalive).toBe(0);
    expect(load("registration: {token_wait: 0s}").registration.token_wait).toBe(0);
    expect(load("actions: {session: {max_token_lifetime: 168h}}").actions.session.max_token_lifetime).toBe(168 * H);
  });
  test("sandbox_options.cpu/memory are aliases of resources.*", () => {
    const h = load("hooks:\n  definitions:\n    - {name: h, path: h, sandbox_options: {cpu: 2, memory: 256Mi}}").hooks.definitions[0]!;
    expect(h.resources).toEqual({ cpu: 2, memory: 256 * MiB, pids: 512 });
    expect("cpu" in h.sandbox_options).toBe(false);
  });
  test("tracing.enabled takes YAML booleans and auto", () => {
    expect(load("telemetry: {tracing: {enabled: true}}").telemetry.tracing.enabled).toBe(true);
    expect(load("telemetry: {tracing: {enabled: 'false'}}").telemetry.tracing.enabled).toBe(false);
  });
  test("x- keys are ignored, except inside free-form maps", () => {
    const c = load("x-notes: hi\nmesh: {x-owner: me, mtu: 1400}\ntelemetry: {tracing: {headers: {x-api-key: k}}}\nmetadata: {x-a: b}");
    expect(c.mesh.mtu).toBe(1400);
    expect(c.telemetry.tracing.headers).toEqual({ "x-api-key": "k" });
    expect(c.metadata).toEqual({ "x-a": "b" });
  });
  test("the schema itself accepts the string form of api", () => {
    expect(v.parse(ConfigSchema, { api: "https://a.example" }).api.url).toBe("https://a.example");
  });
});

// [name, yaml, expected path, problem pattern]
const failures: [string, string, string, RegExp][] = [
  ["typo in a key", "mesh:\n  listen_prot: 1", "mesh.listen_prot", /unknown key \(did you mean listen_port\?\)/],
  ["unknown top-level key", "heartbeet: {}", "heartbeet", /unknown key/],
  ["duration 7d", "journal: {retention: 7d}", "journal.retention", /invalid duration "7d" \(days\/weeks are not Go units/],
  ["bare number duration", "heartbeat: {interval: 30}", "heartbeat.interval", /bare number 30 is not a duration/],
  ["duration below range", "api: {url: https://x.example, connect_timeout: 500ms}", "api.connect_timeout", /between 1s and 1m/],
  ["duration above range", "registration: {token_wait: 2h}", "registration.token_wait", /at most 1h/],
  ["keepalive gap", "mesh: {persistent_keepalive: 500ms}", "mesh.persistent_keepalive", /0s or between 1s and 65535s/],
  ["sse idle too long", "api: {url: https://x.example, sse_idle_timeout: 11m}", "api.sse_idle_timeout", /between 30s and 10m/],
  ["http non-loopback", "api: http://cp.example.net", "api.url", /http:\/\/ is only allowed for loopback/],
  ["ftp api", "api: ftp://cp.example.net", "api.url", /unsupported scheme ftp/],
  ["api not a URL", "api: cp.example.net", "api.url", /absolute URL/],
  ["bad enum", "log_level: verbose", "log_level", /must be one of debug, info, warn, error/],
  ["log_format", "log_format: xml", "log_format", /must be one of auto, text, json/],
  ["mode", "mode: hub", "mode", /node, bridge/],
  ["relative data_dir", "data_dir: var/lib", "data_dir", /absolute path/],
  ["hostname", "hostname: -bad-", "hostname", /RFC 1123/],
  ["metadata key", "metadata: {Bad Key: x}", "metadata.Bad Key", /\[a-z0-9_.-\]\{1,63\}/],
  ["metadata non-string", "metadata: {rack: 12}", "metadata.rack", /must be strings/],
  ["metadata too many", `metadata: {${Array.from({ length: 65 }, (_, i) => `k${i}: v`).join(", ")}}`, "metadata", /at most 64/],
  ["interface name", "mesh: {interface: this-name-is-too-long}", "mesh.interface", /\^\[A-Za-z0-9_-\]\{1,15\}\$/],
  ["listen_port", "mesh: {listen_port: 70000}", "mesh.listen_port", /between 1 and 65535/],
  ["mtu", "mesh: {mtu: 1000}", "mesh.mtu", /between 1280 and 9000/],
  ["non-integer", "mesh: {mtu: 1400.5}", "mesh.mtu", /integer/],
  ["backend", "mesh: {backend: ebpf}", "mesh.backend", /auto, kernel, userspace/],
  ["token.env", "token: {env: 1BAD}", "token.env", /environment variable name/],
  ["metadata_url", "token: {metadata_url: 169.254.169.254}", "token.metadata_url", /http/],
  ["metadata_path", "token: {metadata_path: plexd}", "token.metadata_path", /start with \//],
  ["metadata_timeout", "token: {metadata_timeout: 50ms}", "token.metadata_timeout", /between 100ms and 30s/],
  ["bool yes", "policy: {enabled: yes}", "policy.enabled", /expected true or false/],
  ["policy default", "policy: {default: reject}", "policy.default", /deny, allow/],
  ["stun empty when enabled", "nat_traversal: {stun_servers: []}", "nat_traversal.stun_servers", /must not be empty when nat_traversal.enabled/],
  ["stun host:port", "nat_traversal: {stun_servers: ['bad host:1']}", "nat_traversal.stun_servers[0]", /host\[:port\]/],
  ["nat refresh", "nat_traversal: {refresh_interval: 5s}", "nat_traversal.refresh_interval", /at least 10s/],
  ["nat fallback", "nat_traversal: {fallback: turn}", "nat_traversal.fallback", /relay, none/],
  ["observe buffer < batch", "observe: {batch_max_size: 600, buffer_size: 500}", "observe.buffer_size", /≥ observe.batch_max_size/],
  ["observe metric", "observe: {metrics: [disk]}", "observe.metrics[0]", /must be one of/],
  ["observe max_units", "observe: {cgroup: {max_units: 501}}", "observe.cgroup.max_units", /between 1 and 500/],
  ["logs source relative", "logs: {sources: [var/log/x.log]}", "logs.sources[0]", /journald or an absolute/],
  ["logs filter two keys", "logs: {filters: [{unit: a, severity: warn}]}", "logs.filters[0]", /exactly one of unit, path, severity/],
  ["logs filter none", "logs: {filters: [{}]}", "logs.filters[0]", /exactly one/],
  ["logs buffer < batch", "logs: {batch_max_size: 2000, buffer_size: 1000}", "logs.buffer_size", /≥ logs.batch_max_size/],
  ["logs max_line_size", "logs: {max_line_size: 2Mi}", "logs.max_line_size", /between 1 KiB and 1 MiB/],
  ["size unit", "logs: {max_line_size: 16KB}", "logs.max_line_size", /invalid size "16KB"/],
  ["signal name", "logs: {signals: [{name: Bad, match: x}]}", "logs.signals[0].name", /must match/],
  ["signal match missing", "logs: {signals: [{name: a}]}", "logs.signals[0].match", /./],
  ["signal match syntax", "logs: {signals: [{name: a, match: '(unclosed'}]}", "logs.signals[0].match", /invalid regular expression/],
  ["signal nested quantifier", "logs: {signals: [{name: a, match: '(a+)+$'}]}", "logs.signals[0].match", /nested unbounded/],
  ["signal match too long", `logs: {signals: [{name: a, match: '${"a".repeat(513)}'}]}`, "logs.signals[0].match", /512/],
  ["signal window", "logs: {signals: [{name: a, match: x, window: 5s}]}", "logs.signals[0].window", /between 10s and 24h/],
  ["signal threshold", "logs: {signals: [{name: a, match: x, threshold: 0}]}", "logs.signals[0].threshold", /at least 1/],
  ["signal severity", "logs: {signals: [{name: a, match: x, severity: debug}]}", "logs.signals[0].severity", /info, warn, error/],
  ["signal names unique", "logs: {signals: [{name: a, match: x}, {name: a, match: y}]}", "logs.signals[1].name", /duplicate name a/],
  ["audit source", "audit: {sources: [syslog]}", "audit.sources[0]", /auditd or kubernetes/],
  ["audit buffer", "audit: {buffer_size: 10, batch_max_size: 20}", "audit.buffer_size", /≥ audit.batch_max_size/],
  ["ssh idle", "access: {ssh: {idle_timeout: 30s}}", "access.ssh.idle_timeout", /at least 1m/],
  ["k8s api_server", "access: {kubernetes: {api_server: 'not a url'}}", "access.kubernetes.api_server", /URL/],
  ["actions max_concurrent", "actions: {max_concurrent: 65}", "actions.max_concurrent", /between 1 and 64/],
  ["actions output", "actions: {max_output_bytes: 128Ki}", "actions.max_output_bytes", /between 1 KiB and 64 KiB/],
  ["actions socket", "actions: {socket: plexd.sock}", "actions.socket", /absolute/],
  ["token lifetime > 7d", "actions: {session: {max_token_lifetime: 169h}}", "actions.session.max_token_lifetime", /between 1m and 168h/],
  ["clock leeway", "actions: {session: {clock_leeway: 6m}}", "actions.session.clock_leeway", /at most 5m/],
  ["revocation entries", "actions: {session: {revocation_max_entries: 10}}", "actions.session.revocation_max_entries", /at least 100/],
  ["hooks dir", "hooks: {dir: hooks.d}", "hooks.dir", /absolute/],
  ["hook name", "hooks: {definitions: [{name: Backup, path: b}]}", "hooks.definitions[0].name", /must match/],
  ["hook path missing", "hooks: {definitions: [{name: b}]}", "hooks.definitions[0].path", /required/],
  ["hook names unique", "hooks: {definitions: [{name: b, path: b}, {name: b, path: c}]}", "hooks.definitions[1].name", /duplicate name b/],
  ["hook timeout > max_action_timeout", "hooks: {definitions: [{name: b, path: b, timeout: 11m}]}", "hooks.definitions[0].timeout", /≤ actions.max_action_timeout/],
  ["hook sandbox", "hooks: {definitions: [{name: b, path: b, sandbox: chroot}]}", "hooks.definitions[0].sandbox", /none, namespaced, container/],
  ["hook cpu", "hooks: {definitions: [{name: b, path: b, resources: {cpu: '0'}}]}", "hooks.definitions[0].resources.cpu", /> 0/],
  ["hook memory", "hooks: {definitions: [{name: b, path: b, resources: {memory: 512MB}}]}", "hooks.definitions[0].resources.memory", /invalid size/],
  ["hook user", "hooks: {definitions: [{name: b, path: b, user: 'Bad User'}]}", "hooks.definitions[0].user", /user name or numeric uid/],
  ["hook param name", "hooks: {definitions: [{name: b, path: b, parameters: [{name: 1x}]}]}", "hooks.definitions[0].parameters[0].name", /must match/],
  ["hook param type", "hooks: {definitions: [{name: b, path: b, parameters: [{name: x, type: float}]}]}", "hooks.definitions[0].parameters[0].type", /string, bool, int/],
  ["hook param default for bool", "hooks: {definitions: [{name: b, path: b, parameters: [{name: x, type: bool, default: 'maybe'}]}]}", "hooks.definitions[0].parameters[0].default", /not valid for the parameter type/],
  ["hook param default unquoted", "hooks: {definitions: [{name: b, path: b, parameters: [{name: x, type: bool, default: true}]}]}", "hooks.definitions[0].parameters[0].default", /quote it/],
  ["hook param names unique", "hooks: {definitions: [{name: b, path: b, parameters: [{name: x}, {name: x}]}]}", "hooks.definitions[0].parameters[1].name", /duplicate parameter/],
  ["container-only option", "hooks: {definitions: [{name: b, path: b, sandbox_options: {image: 'alpine@sha256:00'}}]}", "hooks.definitions[0].sandbox_options.image", /only allowed with sandbox: container/],
  ["capability name", "hooks: {definitions: [{name: b, path: b, sandbox: container, sandbox_options: {capabilities: [CAP_NET_ADMIN]}}]}", "hooks.definitions[0].sandbox_options.capabilities[0]", /without CAP_/],
  ["device path", "hooks: {definitions: [{name: b, path: b, sandbox_options: {allowed_devices: [/tmp/x]}}]}", "hooks.definitions[0].sandbox_options.allowed_devices[0]", /\/dev/],
  ["writable path", "hooks: {definitions: [{name: b, path: b, sandbox_options: {writable_paths: [tmp]}}]}", "hooks.definitions[0].sandbox_options.writable_paths[0]", /absolute/],
  ["alias conflict", "hooks: {definitions: [{name: b, path: b, resources: {cpu: 1}, sandbox_options: {cpu: 2}}]}", "hooks.definitions[0].sandbox_options.cpu", /set only one/],
  ["bridge access type", "bridge: {access: [{type: zerotier}]}", "bridge.access[0].type", /tailscale, netbird, wireguard/],
  ["tailscale needs auth_key_env", "bridge: {access: [{type: tailscale}]}", "bridge.access[0].auth_key_env", /required for type tailscale/],
  ["ingress listen", "bridge: {ingress: {listen: '443'}}", "bridge.ingress.listen", /host:port/],
  ["site_to_site cidr", "bridge: {site_to_site: [{name: a, type: ipsec, remote_endpoint: 'vpn.example:500', remote_subnets: [10.0.0.0/33]}]}", "bridge.site_to_site[0].remote_subnets[0]", /CIDR/],
  ["node_api socket", "node_api: {socket: api.sock}", "node_api.socket", /absolute/],
  ["node_api http listen", "node_api: {http: {listen: localhost}}", "node_api.http.listen", /host:port/],
  ["node_api token_file when http", "node_api: {http: {enabled: true, token_file: ''}}", "node_api.http.token_file", /required when node_api.http.enabled/],
  ["node_api debounce", "node_api: {debounce: 10ms}", "node_api.debounce", /between 100ms and 1m/],
  ["node_api body", "node_api: {max_body_size: 32Mi}", "node_api.max_body_size", /between 1 KiB and 16 MiB/],
  ["integrity interval", "integrity: {verify_interval: 10s}", "integrity.verify_interval", /at least 30s/],
  ["compat", "compat: {profile: old}", "compat.profile", /standard, legacy/],
  ["journal retries", "journal: {max_retries: 51}", "journal.max_retries", /between 0 and 50/],
  ["journal retry_max < retry_base", "journal: {retry_base: 30s, retry_max: 10s}", "journal.retry_max", /≥ journal.retry_base/],
  ["journal max_rows", "journal: {max_rows: 10}", "journal.max_rows", /at least 1000/],
  ["journal dlq", "journal: {dlq_retention: 1h}", "journal.dlq_retention", /at least 24h/],
  ["journal db size", "journal: {max_db_size: 1Mi}", "journal.max_db_size", /at least 16 MiB/],
  ["outbox", "outbox: {max_age: 30m}", "outbox.max_age", /at least 1h/],
  ["tracing enabled", "telemetry: {tracing: {enabled: maybe}}", "telemetry.tracing.enabled", /auto, true or false/],
  ["tracing protocol", "telemetry: {tracing: {protocol: grpc}}", "telemetry.tracing.protocol", /http\/protobuf, http\/json/],
  ["tracing ratio", "telemetry: {tracing: {sample_ratio: 1.5}}", "telemetry.tracing.sample_ratio", /between 0 and 1/],
  ["tracing endpoint", "telemetry: {tracing: {endpoint: collector:4318}}", "telemetry.tracing.endpoint", /URL/],
  ["inventory interval", "inventory: {interval: 1m}", "inventory.interval", /at least 5m/],
  ["inventory collector", "inventory: {collectors: [kernel]}", "inventory.collectors[0]", /must be one of/],
  ["upgrade deadline", "upgrade: {rollback_deadline: 2h}", "upgrade.rollback_deadline", /between 1m and 1h/],
  ["upgrade unit", "upgrade: {helper_unit: plexd-upgrade}", "upgrade.helper_unit", /\.service/],
  ["schedule jitter", "schedule: {jitter: 0.6}", "schedule.jitter", /between 0 and 0.5/],
  ["shutdown drain", "shutdown: {drain_timeout: 11m}", "shutdown.drain_timeout", /between 1s and 10m/],
  ["section not a mapping", "mesh: 5", "mesh", /expected a mapping/],
];

describe("validation rules", () => {
  test.each(failures)("%s", (_name, yaml, path, problem) => {
    const issues = issuesOf(yaml);
    const hit = issues.find((i) => i.path === path);
    expect(hit, `issues were: ${JSON.stringify(issues)}`).toBeDefined();
    expect(hit!.problem).toMatch(problem);
  });

  test("missing api is named", () => {
    expect(() => buildConfig({ text: "mesh: {mtu: 1400}", path: "c.yaml", env: {} })).toThrow("config: api.url: is required");
  });

  test("top level must be a mapping", () => {
    expect(() => buildConfig({ text: "- a\n- b", path: "c.yaml", env: {} })).toThrow("top level must be a mapping");
  });
});
