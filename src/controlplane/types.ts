/**
 * Outbound bodies of protocol.md §5–§6, as the agent builds them (typed, not validated:
 * they come from our own code). Timestamps are RFC 3339 ms strings, durations Go strings.
 */

/** protocol.md §10 compatibility profile. */
export type CompatProfile = "standard" | "legacy";

export interface ActionParam {
  name: string;
  type: "string" | "bool" | "int";
  required: boolean;
  /** Omitted when there is no default. */
  default?: string;
  description: string;
}

/** protocol.md §5 CapabilitiesPayload. */
export interface CapabilitiesPayload {
  binary: { version: string; checksum: string };
  builtin_actions: { name: string; description: string; parameters: ActionParam[] }[];
  hooks: {
    name: string;
    description: string;
    source: string;
    checksum: string;
    parameters: ActionParam[];
    timeout: string;
    sandbox: "none" | "namespaced" | "container";
  }[];
}

/** §6.1 body. */
export interface RegisterRequest {
  token: string;
  public_key: string;
  hostname: string;
  metadata: Record<string, string>;
  capabilities: CapabilitiesPayload;
}

/** §6.3 body. */
export interface HeartbeatRequest {
  node_id: string;
  timestamp: string;
  status: "healthy" | "degraded" | "unhealthy";
  uptime: string;
  binary_checksum: string;
  mesh: { interface: string; peer_count: number; listen_port: number };
  nat?: { public_endpoint: string; type: NatType };
  bridge?: {
    enabled: boolean;
    access_interface: string;
    active_routes: number;
    relay_enabled: boolean;
    active_relay_sessions: number;
    ingress_enabled: boolean;
    active_ingress_rules: number;
    site_to_site_enabled: boolean;
    active_site_to_site_tunnels: number;
  };
  user_access?: { enabled: boolean; interface_name: string; peer_count: number; listen_port: number };
  ingress?: { enabled: boolean; rule_count: number; connection_count: number };
  site_to_site?: { enabled: boolean; tunnel_count: number };
}

export type NatType = "none" | "full_cone" | "symmetric" | "unknown";

/** §6.7 body. */
export interface EndpointRequest {
  public_endpoint: string;
  nat_type: NatType;
}

/** §6.9 body. */
export interface DriftRequest {
  timestamp: string;
  corrections: { type: string; detail: string }[];
}

/** §5 ReportEntry. */
export interface ReportEntry {
  key: string;
  content_type: string;
  payload: unknown;
  version: number;
  updated_at: string;
}

/** §6.11 body. */
export interface ReportRequest {
  entries: ReportEntry[];
  deleted: string[];
}

/** §6.12 body. */
export interface AckRequest {
  execution_id: string;
  status: "accepted" | "rejected";
  reason: string;
}

/** §5 TriggeredBy. */
export interface TriggeredBy {
  type: "control_plane" | "session" | "direct_access" | "local_emergency";
  session_id: string;
  user_id: string;
  email: string;
}

/** §6.13 body (status spelling per profile is the caller's job, §10). */
export interface ResultRequest {
  execution_id: string;
  status: string;
  exit_code: number;
  stdout: string;
  stderr: string;
  duration: string;
  finished_at: string;
  triggered_by: TriggeredBy;
}

/** §6.14 item. */
export interface MetricPoint {
  timestamp: string;
  group: string;
  peer_id?: string;
  data: Record<string, unknown>;
}

/** §6.15 item. */
export interface LogLine {
  timestamp: string;
  source: string;
  unit: string;
  message: string;
  severity: string;
  hostname: string;
}

/** §6.16 item. */
export interface AuditLine {
  timestamp: string;
  source: string;
  event_type: string;
  subject: string;
  object: string;
  action: string;
  result: string;
  hostname: string;
  raw: string;
}

/** §6.19 body. */
export interface IntegrityViolation {
  type: "binary" | "hook";
  path: string;
  expected_checksum: string;
  actual_checksum: string;
  detail: string;
  timestamp: string;
}

/** §6.20 body. */
export interface TunnelReady {
  listen_addr: string;
  timestamp: string;
}

/** §6.21 body. */
export interface TunnelClosed {
  reason: string;
  duration: string;
  timestamp: string;
}
