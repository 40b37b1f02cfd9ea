/**
 * The configuration schema of config.md §2: every key, its default and its validation rule.
 *
 * Input is the merged raw tree (file, then env, then flags); output is the typed `Config` with
 * durations in milliseconds and sizes in bytes. Section-local cross-field rules live next to
 * their section; rules spanning sections are in `crossChecks` at the bottom.
 */
import * as v from "valibot";
import {
  bool,
  cpu,
  duration,
  float,
  int,
  list,
  markSection,
  objects,
  oneOf,
  requiredStr,
  section,
  size,
  str,
  strict,
  stringMap,
  strSchema,
  tribool,
  withDefaults,
} from "./fields.ts";
import {
  apiUrlProblem,
  CAPABILITIES,
  isAbsPath,
  isCidr,
  isEnvName,
  isHostname,
  isHostOptionalPort,
  isHostPort,
  isHttpUrl,
  regexProblem,
} from "./validators.ts";

/** Builds a valibot issue path relative to the checked value (only `key` is read downstream). */
function pathOf(input: unknown, keys: (string | number)[]): [v.IssuePathItem, ...v.IssuePathItem[]] {
  return keys.map((key) => ({ type: "unknown", origin: "value", input, key, value: undefined })) as unknown as [v.IssuePathItem, ...v.IssuePathItem[]];
}

const KiB = 1024;
const MiB = 1024 * 1024;

const absPath = (def: string) => str(def, isAbsPath, "must be an absolute path");
const absPathOrEmpty = (def: string) => str(def, (s) => s === "" || isAbsPath(s), "must be empty or an absolute path");
const severities = ["debug", "info", "warn", "error"] as const;

/** Rule `key ≥ other` between two numeric sibling keys, reported at `key`. */
function atLeast(key: string, other: string, text: string) {
  // `any` input: the action is generic over whichever section object it is piped after.
  return v.rawCheck<any>(({ dataset, addIssue }) => {
    const o = dataset.value as Record<string, number>;
    if (dataset.typed && o[key]! < o[other]!) addIssue({ message: text, path: pathOf(o, [key]) });
  });
}

// §2.1 — `api` is a URL string or a mapping; the string form equals `api.url`.
const ApiObject = strict({
  url: requiredStr(apiUrlProblem, undefined, { url: true }),
  ca_file: str(""),
  tls_insecure_skip_verify: bool(false),
  connect_timeout: duration("10s", { min: "1s", max: "60s" }),
  request_timeout: duration("30s", { min: "5s", max: "5m" }),
  sse_idle_timeout: duration("90s", { min: "30s", max: "10m" }),
});
const ApiSection = withDefaults(
  markSection(
    v.pipe(
      v.unknown(),
      v.transform((x) => (typeof x === "string" ? { url: x } : x)),
      ApiObject,
    ),
    ApiObject,
  ),
);

const Registration = section({
  max_retry_duration: duration("5m", { min: "10s", max: "1h" }),
  token_wait: duration("5m", { max: "1h" }),
});

const Mesh = section({
  interface: str("plexd0", (s) => /^[A-Za-z0-9_-]{1,15}$/.test(s), "must match ^[A-Za-z0-9_-]{1,15}$"),
  listen_port: int(51820, 1, 65535),
  mtu: int(1420, 1280, 9000),
  backend: oneOf("auto", ["auto", "kernel", "userspace"]),
  wireguard_go_path: str("wireguard-go", (s) => s !== "", "must not be empty"),
  persistent_keepalive: duration("25s", { min: "1s", max: "65535s", also: (ms) => ms === 0, text: "must be 0s or between 1s and 65535s" }),
});

const Token = section({
  file: str("/etc/plexd/bootstrap-token"),
  env: str("PLEXD_BOOTSTRAP_TOKEN", isEnvName, "must be an environment variable name"),
  metadata: bool(true),
  metadata_url: str("http://169.254.169.254", isHttpUrl, "must be an http:// or https:// URL", { url: true }),
  metadata_path: str("/plexd/bootstrap-token", (s) => s.startsWith("/"), "must start with /"),
  metadata_timeout: duration("2s", { min: "100ms", max: "30s" }),
});

const Reconcile = section({ interval: duration("60s", { min: "5s", max: "1h" }) });

const Policy = section({
  enabled: bool(true),
  default: oneOf("deny", ["deny", "allow"]),
  log_denied: bool(true),
});

const NatTraversal = withDefaults(
  v.pipe(
    strict({
      enabled: bool(true),
      stun_servers: list(strSchema(isHostOptionalPort, "must be host[:port]"), ["stun.l.google.com:19302", "stun.cloudflare.com:3478"]),
      refresh_interval: duration("60s", { min: "10s" }),
      timeout: duration("5s", { min: "500ms", max: "30s" }),
      fallback: oneOf("relay", ["relay", "none"]),
    }),
    v.forward(
      v.partialCheck([["enabled"], ["stun_servers"]], (o) => !o.enabled || o.stun_servers.length > 0, "must not be empty when nat_traversal.enabled is true"),
      ["stun_servers"],
    ),
  ),
);

const Heartbeat = section({ interval: duration("30s", { min: "5s", max: "5m" }) });

const Observe = withDefaults(
  v.pipe(
    strict({
      enabled: bool(true),
      interval: duration("15s", { min: "5s" }),
      batch_interval: duration("10s", { min: "1s" }),
      batch_max_size: int(500, 1, 10000),
      buffer_size: int(10000, 1),
      metrics: list(
        v.picklist(["node_resources", "tunnel_health", "peer_latency", "agent_stats", "cgroup_resources"], "must be one of node_resources, tunnel_health, peer_latency, agent_stats, cgroup_resources"),
        ["node_resources", "tunnel_health", "peer_latency", "agent_stats"],
      ),
      cgroup: section({
        units: list(strSchema((s) => s !== "", "must not be empty"), []),
        max_units: int(50, 1, 500),
      }),
    }),
    atLeast("buffer_size", "batch_max_size", "must be ≥ observe.batch_max_size"),
  ),
);

const LogFilter = v.pipe(
  strict({
    unit: v.optional(strSchema((s) => s !== "", "must not be empty")),
    path: v.optional(strSchema((s) => s !== "", "must not be empty")),
    severity: v.optional(v.picklist(severities, `must be one of ${severities.join(", ")}`)),
  }),
  v.check((f) => [f.unit, f.path, f.severity].filter((x) => x !== undefined).length === 1, "each filter needs exactly one of unit, path, severity"),
);

const Signal = strict({
  name: requiredStr((s) => /^[a-z0-9][a-z0-9_.-]{0,63}$/.test(s), "must match ^[a-z0-9][a-z0-9_.-]{0,63}$"),
  match: v.pipe(
    v.string("expected a regular expression string"),
    v.rawCheck(({ dataset, addIssue }) => {
      const p = dataset.typed ? regexProblem(dataset.value) : undefined;
      if (p) addIssue({ message: p });
    }),
  ),
  unit: str(""),
  path: str(""),
  min_severity: oneOf("debug", severities),
  window: duration("5m", { min: "10s", max: "24h" }),
  threshold: int(1, 1),
  severity: oneOf("warn", ["info", "warn", "error"]),
  sample: bool(true),
});

const Logs = withDefaults(
  v.pipe(
    strict({
      enabled: bool(true),
      sources: list(strSchema((s) => s === "journald" || isAbsPath(s), "must be journald or an absolute file path/glob"), ["journald"]),
      filters: objects(LogFilter),
      batch_interval: duration("10s", { min: "1s" }),
      batch_max_size: int(1000, 1, 10000),
      buffer_size: int(10000, 1),
      max_line_size: size(16384, { min: KiB, max: MiB }),
      signals: objects(Signal),
    }),
    atLeast("buffer_size", "batch_max_size", "must be ≥ logs.batch_max_size"),
  ),
);

const Audit = withDefaults(
  v.pipe(
    strict({
      enabled: bool(true),
      sources: list(v.picklist(["auditd", "kubernetes"], "must be auditd or kubernetes"), ["auditd", "kubernetes"]),
      kubernetes_log_path: absPathOrEmpty(""),
      batch_interval: duration("10s", { min: "1s" }),
      batch_max_size: int(500, 1, 10000),
      buffer_size: int(10000, 1),
    }),
    atLeast("buffer_size", "batch_max_size", "must be ≥ audit.batch_max_size"),
  ),
);

const Access = section({
  ssh: section({
    enabled: bool(true),
    host_key_file: absPath("/var/lib/plexd/ssh_host_key"),
    idle_timeout: duration("30m", { min: "1m" }),
    max_sessions: int(10, 1, 1000),
  }),
  kubernetes: section({
    enabled: bool(false),
    api_server: str("", (s) => s === "" || isHttpUrl(s), "must be empty or an http(s) URL", { url: true }),
    idle_timeout: duration("15m", { min: "1m" }),
  }),
});

const Actions = section({
  enabled: bool(true),
  max_concurrent: int(5, 1, 64),
  max_action_timeout: duration("10m", { min: "10s" }),
  max_output_bytes: size(65536, { min: KiB, max: 64 * KiB }),
  socket: absPath("/run/plexd/plexd.sock"),
  local_auth: section({ require_root: bool(true) }),
  session: section({
    issuer: str("plexsphere", (s) => s !== "", "must not be empty"),
    max_token_lifetime: duration("24h", { min: "1m", max: "168h" }),
    clock_leeway: duration("60s", { max: "5m" }),
    revocation_max_entries: int(10000, 100),
  }),
});

const USER = /^(?:[a-z_][a-z0-9_.-]{0,31}\$?|\d{1,10})$/;

const HookParameter = v.pipe(
  strict({
    name: requiredStr((s) => /^[a-z][a-z0-9_]{0,63}$/.test(s), "must match ^[a-z][a-z0-9_]{0,63}$"),
    type: oneOf("string", ["string", "bool", "int"]),
    required: bool(false),
    default: v.optional(v.string((i) => `must be a string (quote it), got ${typeof i.input}`)),
    description: str("", (s) => s.length <= 512, "must be at most 512 characters"),
  }),
  v.forward(
    v.partialCheck(
      [["type"], ["default"]],
      (p) => p.default === undefined || p.type === "string" || (p.type === "bool" ? /^(true|false)$/.test(p.default) : /^-?\d+$/.test(p.default)),
      "default is not valid for the parameter type",
    ),
    ["default"],
  ),
);

const Hook = v.pipe(
  strict({
    name: requiredStr((s) => /^[a-z0-9][a-z0-9_-]{0,62}$/.test(s), "must match ^[a-z0-9][a-z0-9_-]{0,62}$"),
    path: requiredStr((s) => s !== "" && !s.includes("\0"), "must not be empty"),
    description: str("", (s) => s.length <= 512, "must be at most 512 characters"),
    parameters: objects(HookParameter),
    timeout: duration("30s", { min: "1s" }),
    user: str("nobody", (s) => USER.test(s), "must be a user name or numeric uid"),
    group: str("", (s) => s === "" || USER.test(s), "must be a group name or numeric gid"),
    sandbox: oneOf("namespaced", ["none", "namespaced", "container"]),
    resources: section({
      cpu: cpu(1),
      memory: size("512Mi", { min: MiB }),
      pids: int(512, 1, 4194304),
    }),
    sandbox_options: section({
      writable_paths: list(strSchema(isAbsPath, "must be an absolute path"), []),
      mount_proc: bool(true),
      allowed_devices: list(strSchema((s) => s.startsWith("/dev/"), "must be a /dev/... device path"), []),
      image: str(""),
      network: oneOf("none", ["none", "host"]),
      capabilities: list(
        strSchema((s) => CAPABILITIES.includes(s), "must be a Linux capability name without CAP_ (e.g. NET_ADMIN)"),
        [],
      ),
    }),
  }),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const h = dataset.value;
    const o = h.sandbox_options;
    const onlyContainer = (key: string, set: boolean) => {
      if (set && h.sandbox !== "container") addIssue({ message: `only allowed with sandbox: container`, path: pathOf(dataset.value, ["sandbox_options", key]) });
    };
    onlyContainer("image", o.image !== "");
    onlyContainer("network", o.network !== "none");
    onlyContainer("capabilities", o.capabilities.length > 0);
    const seen = new Set<string>();
    h.parameters.forEach((p, i) => {
      if (seen.has(p.name)) addIssue({ message: `duplicate parameter name ${p.name}`, path: pathOf(dataset.value, ["parameters", i, "name"]) });
      seen.add(p.name);
    });
  }),
);

const Hooks = section({
  enabled: bool(true),
  dir: absPath("/etc/plexd/hooks.d"),
  watch: bool(true),
  auto_announce: bool(true),
  definitions: objects(Hook),
});

const BridgeAccess = v.pipe(
  strict({
    type: v.picklist(["tailscale", "netbird", "wireguard"], (i) => (i.input === undefined ? "is required" : "must be one of tailscale, netbird, wireguard")),
    auth_key_env: str("", (s) => s === "" || isEnvName(s), "must be an environment variable name"),
    setup_key_env: str("", (s) => s === "" || isEnvName(s), "must be an environment variable name"),
    listen_port: int(51821, 1, 65535),
  }),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const a = dataset.value;
    const need = (key: "auth_key_env" | "setup_key_env", type: string) => {
      if (a.type === type && a[key] === "") addIssue({ message: `is required for type ${type}`, path: pathOf(a, [key]) });
      if (a.type !== type && a[key] !== "") addIssue({ message: `only allowed for type ${type}`, path: pathOf(a, [key]) });
    };
    need("auth_key_env", "tailscale");
    need("setup_key_env", "netbird");
  }),
);

const SiteToSite = strict({
  name: requiredStr((s) => /^[a-z0-9][a-z0-9_.-]{0,63}$/.test(s), "must match ^[a-z0-9][a-z0-9_.-]{0,63}$"),
  type: v.picklist(["wireguard", "ipsec", "openvpn"], (i) => (i.input === undefined ? "is required" : "must be one of wireguard, ipsec, openvpn")),
  remote_endpoint: requiredStr(isHostOptionalPort, "must be host[:port]"),
  remote_subnets: v.pipe(
    v.array(strSchema(isCidr, "must be a CIDR prefix like 10.1.0.0/16"), "expected a list"),
    v.minLength(1, "must list at least one subnet"),
  ),
});

const Bridge = section({
  access: objects(BridgeAccess),
  ingress: section({ enabled: bool(false), listen: str("0.0.0.0:443", isHostPort, "must be host:port") }),
  relay: section({ enabled: bool(true), listen_port: int(51820, 1, 65535) }),
  site_to_site: objects(SiteToSite),
});

const NodeApi = withDefaults(
  v.pipe(
    strict({
      enabled: bool(true),
      socket: absPath("/run/plexd/api.sock"),
      http: section({
        enabled: bool(false),
        listen: str("127.0.0.1:9100", isHostPort, "must be host:port"),
        token_file: str("/etc/plexd/node-api-token"),
      }),
      debounce: duration("5s", { min: "100ms", max: "1m" }),
      shutdown_timeout: duration("5s", { min: "1s", max: "60s" }),
      secret_fetch_timeout: duration("10s", { min: "1s", max: "60s" }),
      max_body_size: size("1Mi", { min: KiB, max: 16 * MiB }),
    }),
    v.rawCheck(({ dataset, addIssue }) => {
      if (dataset.typed && dataset.value.http.enabled && dataset.value.http.token_file === "")
        addIssue({ message: "is required when node_api.http.enabled is true", path: pathOf(dataset.value, ["http", "token_file"]) });
    }),
  ),
);

const Integrity = section({
  enabled: bool(true),
  verify_interval: duration("5m", { min: "30s" }),
  binary_path: absPathOrEmpty(""),
});

const Journal = withDefaults(
  v.pipe(
    strict({
      max_retries: int(5, 0, 50),
      retry_base: duration("2s", { min: "100ms", max: "1m" }),
      retry_max: duration("5m"),
      retention: duration("168h", { min: "1h" }),
      max_rows: int(100000, 1000),
      dlq_retention: duration("720h", { min: "24h" }),
      max_db_size: size("512Mi", { min: 16 * MiB }),
    }),
    atLeast("retry_max", "retry_base", "must be ≥ journal.retry_base"),
  ),
);

const HEADER = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

const Telemetry = section({
  tracing: section({
    enabled: tribool("auto"),
    endpoint: str("", (s) => s === "" || isHttpUrl(s), "must be empty or an http(s) URL", { url: true }),
    protocol: oneOf("http/protobuf", ["http/protobuf", "http/json"]),
    headers: stringMap((k) => HEADER.test(k), "must be an HTTP header name", 64, { secretValues: true }),
    sample_ratio: float(0.1, 0, 1),
    propagate: bool(false),
  }),
});

const Inventory = section({
  enabled: bool(true),
  interval: duration("1h", { min: "5m" }),
  collectors: list(
    v.picklist(["os", "packages", "listening_ports", "services", "nginx", "php"], "must be one of os, packages, listening_ports, services, nginx, php"),
    ["os", "packages", "listening_ports", "services", "nginx", "php"],
  ),
});

const Upgrade = section({
  rollback_deadline: duration("5m", { min: "1m", max: "1h" }),
  require_signature: bool(false),
  helper_unit: str("plexd-upgrade.service", (s) => /^[A-Za-z0-9:_.@\\-]+\.service$/.test(s), "must be a systemd unit name ending in .service"),
  max_artifact_size: size("512Mi", { min: 1 }),
});

/** Names of the 11 built-in actions (actions.md §7); hooks may not reuse them. */
export const BUILTIN_ACTIONS: readonly string[] = [
  "diagnostics.collect", "diagnostics.ping_peer", "diagnostics.traceroute_peer", "service.restart",
  "service.reload_config", "service.upgrade", "system.info", "health.check", "mesh.reconnect",
  "config.dump", "logs.snapshot",
];

/** The top-level mapping, before rules that span sections. */
export const ConfigObjectSchema = strict({
  api: ApiSection,
  log_level: oneOf("info", severities),
  log_format: oneOf("auto", ["auto", "text", "json"]),
  mode: oneOf("node", ["node", "bridge"]),
  data_dir: absPath("/var/lib/plexd"),
  hostname: str("", (s) => s === "" || isHostname(s), "must be an RFC 1123 host name (≤ 253 characters)"),
  metadata: stringMap((k) => /^[a-z0-9_.-]{1,63}$/.test(k), "keys must match [a-z0-9_.-]{1,63}", 64),
  registration: Registration,
  mesh: Mesh,
  token: Token,
  reconcile: Reconcile,
  policy: Policy,
  nat_traversal: NatTraversal,
  heartbeat: Heartbeat,
  observe: Observe,
  logs: Logs,
  audit: Audit,
  access: Access,
  actions: Actions,
  hooks: Hooks,
  bridge: Bridge,
  node_api: NodeApi,
  integrity: Integrity,
  compat: section({ profile: oneOf("standard", ["standard", "legacy"]) }),
  journal: Journal,
  outbox: section({ max_age: duration("168h", { min: "1h" }) }),
  telemetry: Telemetry,
  inventory: Inventory,
  upgrade: Upgrade,
  schedule: section({ jitter: float(0.1, 0, 0.5) }),
  shutdown: section({
    deregister_on_stop: bool(false),
    drain_timeout: duration("30s", { min: "1s", max: "10m" }),
  }),
});


/** The complete schema: the top-level mapping plus rules spanning sections. */
export const ConfigSchema = v.pipe(
  ConfigObjectSchema,
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const c = dataset.value;
    const unique = (items: readonly { name: string }[], at: string[]) => {
      const seen = new Set<string>();
      items.forEach((it, i) => {
        if (seen.has(it.name)) addIssue({ message: `duplicate name ${it.name}`, path: pathOf(c, [...at, i, "name"]) });
        seen.add(it.name);
      });
    };
    unique(c.logs.signals, ["logs", "signals"]);
    unique(c.hooks.definitions, ["hooks", "definitions"]);
    unique(c.bridge.site_to_site, ["bridge", "site_to_site"]);
    c.hooks.definitions.forEach((h, i) => {
      if (BUILTIN_ACTIONS.includes(h.name)) addIssue({ message: `clashes with the built-in action ${h.name}`, path: pathOf(c, ["hooks", "definitions", i, "name"]) });
      if (h.timeout > c.actions.max_action_timeout)
        addIssue({ message: "must be ≤ actions.max_action_timeout", path: pathOf(c, ["hooks", "definitions", i, "timeout"]) });
    });
  }),
  // Decision: a relative hook path is relative to hooks.dir (the file checks of actions.md §8.2
  // still decide whether it may run).
  v.transform((c) => {
    for (const h of c.hooks.definitions) if (!h.path.startsWith("/")) h.path = `${c.hooks.dir.replace(/\/+$/, "")}/${h.path}`;
    return c;
  }),
);

/** The effective, fully typed configuration (durations in ms, sizes in bytes). */
export type Config = v.InferOutput<typeof ConfigSchema>;
/** What the schema accepts (the merged raw tree). */
export type ConfigInput = v.InferInput<typeof ConfigSchema>;
