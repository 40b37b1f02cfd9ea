/** valibot schemas of every request body the CP accepts (protocol.md §5–§6). Tolerant readers. */
import * as v from "valibot";

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

export const Timestamp = v.pipe(v.string(), v.regex(RFC3339, "RFC 3339 date-time expected"));
export const Key32 = v.pipe(
  v.string(),
  v.regex(/^[A-Za-z0-9+/]{43}=$/, "base64 std of 32 bytes expected"),
);
export const Duration = v.pipe(v.string(), v.regex(/^([+-]?(\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$|^0$/, "Go duration expected"));
const Str = v.string();
const OptStr = v.optional(v.string(), "");
const Int = v.pipe(v.number(), v.integer());
const IpPort = v.pipe(v.string(), v.regex(/^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:.]+\]):\d{1,5}$/, "ip:port expected"));

const ActionParam = v.looseObject({
  name: Str,
  type: v.picklist(["string", "bool", "int"]),
  required: v.optional(v.boolean(), false),
  default: v.optional(v.string()),
  description: OptStr,
});

export const Capabilities = v.looseObject({
  binary: v.looseObject({ version: Str, checksum: OptStr }),
  builtin_actions: v.optional(
    v.nullable(v.array(v.looseObject({ name: Str, description: OptStr, parameters: v.optional(v.nullable(v.array(ActionParam))) }))),
  ),
  hooks: v.optional(
    v.nullable(
      v.array(
        v.looseObject({
          name: Str,
          description: OptStr,
          source: OptStr,
          checksum: OptStr,
          parameters: v.optional(v.nullable(v.array(ActionParam))),
          timeout: v.optional(Duration),
          sandbox: v.optional(v.picklist(["none", "namespaced", "container"])),
        }),
      ),
    ),
  ),
});
export type CapabilitiesT = v.InferOutput<typeof Capabilities>;

export const Register = v.looseObject({
  token: v.pipe(Str, v.minLength(1), v.maxLength(512)),
  public_key: Key32,
  hostname: v.pipe(Str, v.minLength(1), v.maxLength(253)),
  metadata: v.optional(v.nullable(v.record(Str, Str))),
  capabilities: v.optional(Capabilities),
});

export const Heartbeat = v.looseObject({
  node_id: Str,
  timestamp: Timestamp,
  status: v.picklist(["healthy", "degraded", "unhealthy"]),
  uptime: Duration,
  binary_checksum: Str,
  mesh: v.looseObject({ interface: Str, peer_count: Int, listen_port: Int }),
  nat: v.optional(v.looseObject({ public_endpoint: OptStr, type: v.picklist(["none", "full_cone", "symmetric", "unknown"]) })),
});

export const KeyRotate = v.looseObject({ node_id: v.pipe(Str, v.minLength(1)), new_public_key: Key32 });

export const Endpoint = v.looseObject({
  public_endpoint: IpPort,
  nat_type: v.picklist(["none", "full_cone", "symmetric", "unknown"]),
});

export const Drift = v.looseObject({
  timestamp: Timestamp,
  corrections: v.array(v.looseObject({ type: v.pipe(Str, v.minLength(1)), detail: OptStr })),
});

export const ReportEntry = v.looseObject({
  key: v.pipe(Str, v.minLength(1), v.maxLength(256)),
  content_type: Str,
  payload: v.unknown(),
  version: v.pipe(Int, v.minValue(0)),
  updated_at: Timestamp,
});
export const Report = v.looseObject({
  entries: v.pipe(v.optional(v.nullable(v.array(ReportEntry)), []), v.transform((x) => x ?? [])),
  deleted: v.pipe(v.optional(v.nullable(v.array(Str)), []), v.transform((x) => x ?? [])),
});

export const Ack = v.looseObject({
  execution_id: Str,
  status: v.picklist(["accepted", "rejected"]),
  reason: OptStr,
});

export const TriggeredBy = v.looseObject({
  type: v.picklist(["control_plane", "session", "direct_access", "local_emergency"]),
  session_id: OptStr,
  user_id: OptStr,
  email: OptStr,
});

export const Result = v.looseObject({
  execution_id: Str,
  status: v.picklist(["success", "failure", "failed", "timeout", "cancelled", "error"]),
  exit_code: Int,
  stdout: OptStr,
  stderr: OptStr,
  duration: Duration,
  finished_at: Timestamp,
  triggered_by: TriggeredBy,
});

export const MetricItem = v.looseObject({
  timestamp: Timestamp,
  group: v.pipe(Str, v.minLength(1)),
  peer_id: v.optional(Str),
  data: v.record(Str, v.unknown()),
});
export const LogItem = v.looseObject({
  timestamp: Timestamp,
  source: Str,
  unit: OptStr,
  message: Str,
  severity: Str,
  hostname: OptStr,
});
export const AuditItem = v.looseObject({
  timestamp: Timestamp,
  source: Str,
  event_type: Str,
  subject: OptStr,
  object: OptStr,
  action: OptStr,
  result: OptStr,
  hostname: OptStr,
  raw: v.optional(v.unknown()),
});

export const Integrity = v.looseObject({
  type: v.picklist(["binary", "hook"]),
  path: Str,
  expected_checksum: OptStr,
  actual_checksum: OptStr,
  detail: OptStr,
  timestamp: Timestamp,
});
export const TunnelReady = v.looseObject({ listen_addr: IpPort, timestamp: Timestamp });
export const TunnelClosed = v.looseObject({ reason: Str, duration: v.optional(Duration), timestamp: Timestamp });

const MeshTarget = v.pipe(
  Str,
  v.check(
    (s) => s === "*" || /^[A-Za-z0-9_.:-]{1,128}$/.test(s) || /^10\.100\.\d{1,3}\.\d{1,3}(\/\d{1,2})?$/.test(s),
    "node id, * or 10.100.0.0/16 address/CIDR expected",
  ),
);
export const Policy = v.looseObject({
  id: v.pipe(Str, v.minLength(1)),
  rules: v.array(
    v.looseObject({
      src: MeshTarget,
      dst: MeshTarget,
      port: v.optional(v.pipe(Int, v.minValue(0), v.maxValue(65535)), 0),
      protocol: v.optional(v.picklist(["tcp", "udp", "icmp", ""]), ""),
      action: v.picklist(["allow", "deny"]),
    }),
  ),
});
export type PolicyT = v.InferOutput<typeof Policy>;
