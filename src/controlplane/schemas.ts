/**
 * valibot schemas for every control-plane response (protocol.md §5–§6). Tolerant reader:
 * unknown fields are dropped, `null` arrays become `[]`, missing booleans `false`, missing
 * strings `""`. Peers are checked one by one: a bad peer is reported, not fatal to the list.
 */
import * as v from "valibot";
import { parseRfc3339 } from "../util/duration.ts";
import { checkAllowedIp, inMeshRange, meshIpProblem } from "./peers.ts";

/** Canonical base64 of exactly 32 bytes (WireGuard / Ed25519 keys). */
export const BASE64_KEY_RE = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/** Array that may be `null`/absent (→ a fresh `[]`). */
export const list = <T extends v.GenericSchema>(item: T) => v.nullish(v.array(item), () => []);
/** Boolean that may be absent (→ false). */
export const flag = v.nullish(v.boolean(), false);
/** String that may be absent (→ ""). */
export const text = v.nullish(v.string(), "");
const int = v.pipe(v.number(), v.integer());
export const key32 = v.pipe(v.string(), v.regex(BASE64_KEY_RE, "must be base64 of 32 bytes"));
export const rfc3339 = v.pipe(
  v.string(),
  v.check((s) => parseRfc3339(s) !== undefined, "must be an RFC 3339 date-time"),
);
export const meshIp = v.pipe(
  v.string(),
  v.check((s) => meshIpProblem(s) === undefined, (i) => meshIpProblem(String(i.input)) ?? "invalid mesh_ip"),
);

// ---------------------------------------------------------------------------------------------
// Peer

/** A validated peer. `public_key`, `mesh_ip` are "" only in endpoint-only updates. */
export interface Peer {
  id: string;
  public_key: string;
  mesh_ip: string;
  endpoint: string;
  /** Canonical CIDRs (host bits masked). */
  allowed_ips: string[];
  psk: string;
}

const RawPeer = v.object({
  id: v.nullish(v.string()),
  peer_id: v.nullish(v.string()),
  public_key: text,
  mesh_ip: text,
  endpoint: text,
  allowed_ips: list(v.string()),
  psk: text,
});

/** A peer that failed validation: position in the list, id when known, first reason. */
export interface RejectedPeer {
  index: number;
  id: string | undefined;
  reason: string;
}

/**
 * Validates one peer. `full` (default) requires `public_key`, `mesh_ip`; endpoint-only
 * updates pass `full: false`.
 */
export function parsePeer(raw: unknown, full = true): { ok: true; peer: Peer } | { ok: false; id: string | undefined; reason: string } {
  const r = v.safeParse(RawPeer, raw);
  if (!r.success) return { ok: false, id: undefined, reason: issueText(r.issues) };
  const p = r.output;
  const id = p.id !== undefined && p.id !== null && p.id !== "" ? p.id : (p.peer_id ?? "");
  const fail = (reason: string) => ({ ok: false as const, id: id === "" ? undefined : id, reason });
  if (id === "") return fail("peer has no id");
  if (p.public_key !== "" && !BASE64_KEY_RE.test(p.public_key)) return fail("public_key is not base64 of 32 bytes");
  if (full && p.public_key === "") return fail("public_key missing");
  if (p.mesh_ip !== "") {
    const problem = meshIpProblem(p.mesh_ip);
    if (problem) return fail(problem);
  } else if (full) return fail("mesh_ip missing");
  if (p.psk !== "" && !BASE64_KEY_RE.test(p.psk)) return fail("psk is not base64 of 32 bytes");
  const allowed: string[] = [];
  for (const a of p.allowed_ips) {
    const c = checkAllowedIp(a);
    if (!c.ok) return fail(c.reason);
    allowed.push(c.cidr);
  }
  return { ok: true, peer: { id, public_key: p.public_key, mesh_ip: p.mesh_ip, endpoint: p.endpoint, allowed_ips: allowed, psk: p.psk } };
}

/** Validates a peer list item by item. A non-array (other than null) rejects everything. */
export function parsePeers(raw: unknown, full = true): { peers: Peer[]; rejected: RejectedPeer[] } {
  const peers: Peer[] = [];
  const rejected: RejectedPeer[] = [];
  if (raw === undefined || raw === null) return { peers, rejected };
  if (!Array.isArray(raw)) return { peers, rejected: [{ index: -1, id: undefined, reason: "peer list is not an array" }] };
  raw.forEach((item, index) => {
    const r = parsePeer(item, full);
    if (r.ok) peers.push(r.peer);
    else rejected.push({ index, id: r.id, reason: r.reason });
  });
  return { peers, rejected };
}

/** A peer list field: validated per item, never fails the enclosing object. */
const PeerList = v.pipe(v.unknown(), v.transform((raw) => parsePeers(raw)));

// ---------------------------------------------------------------------------------------------
// Shared types

const isIpv4ish = (s: string) => /^\d{1,3}(?:\.\d{1,3}){3}(?:\/\d{1,2})?$/.test(s);
const ruleEnd = v.pipe(
  v.string(),
  v.minLength(1, "must not be empty"),
  v.check((s) => {
    if (s === "*" || !isIpv4ish(s)) return true; // node id or wildcard
    const [ip = "", plen] = s.split("/");
    return inMeshRange(ip) && (plen === undefined || Number(plen) <= 32);
  }, "address must be inside 10.100.0.0/16"),
);

export const PolicyRuleSchema = v.pipe(
  v.object({
    src: ruleEnd,
    dst: ruleEnd,
    port: v.nullish(v.pipe(int, v.minValue(0), v.maxValue(65535)), 0),
    protocol: v.nullish(v.picklist(["tcp", "udp", "icmp", ""]), ""),
    action: v.picklist(["allow", "deny"]),
  }),
  v.check((r) => r.port === 0 || r.protocol === "tcp" || r.protocol === "udp", "a port needs protocol tcp or udp"),
);
export const PolicySchema = v.object({ id: v.pipe(v.string(), v.minLength(1)), rules: list(PolicyRuleSchema) });
export type PolicyRule = v.InferOutput<typeof PolicyRuleSchema>;
export type Policy = v.InferOutput<typeof PolicySchema>;

export const SigningKeysSchema = v.object({
  current: key32,
  previous: v.pipe(v.nullish(v.union([v.literal(""), key32]), null), v.transform((k) => (k === "" ? null : k))),
  transition_expires: v.nullish(rfc3339, null),
});
export type SigningKeys = v.InferOutput<typeof SigningKeysSchema>;

export const DataEntrySchema = v.object({
  key: v.pipe(v.string(), v.minLength(1)),
  content_type: v.string(),
  payload: v.pipe(v.unknown(), v.transform((p) => (p === undefined ? null : p))),
  version: int,
  updated_at: rfc3339,
});
export type DataEntry = v.InferOutput<typeof DataEntrySchema>;
export const SecretRefSchema = v.object({ key: v.pipe(v.string(), v.minLength(1)), version: int });
export type SecretRef = v.InferOutput<typeof SecretRefSchema>;

// ---------------------------------------------------------------------------------------------
// Responses

/** §6.1 register response. */
export const RegisterResponseSchema = v.object({
  node_id: v.pipe(v.string(), v.minLength(1, "node_id missing")),
  mesh_ip: meshIp,
  signing_public_key: key32,
  node_secret_key: v.pipe(
    v.string(),
    v.minLength(1, "node_secret_key missing"),
    v.maxLength(4096, "node_secret_key too long"),
    // It becomes an HTTP header value: printable ASCII, no surrounding blanks.
    v.regex(/^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/, "node_secret_key must be printable ASCII"),
  ),
  peers: PeerList,
});
export type RegisterResponse = v.InferOutput<typeof RegisterResponseSchema>;

/** §6.3 heartbeat directives (an empty or non-JSON body means none). */
export const HeartbeatResponseSchema = v.object({ reconcile: flag, rotate_keys: flag });
export type HeartbeatDirectives = v.InferOutput<typeof HeartbeatResponseSchema>;

/** §6.5 keys/rotate response. */
export const RotateResponseSchema = v.object({
  updated_peers: PeerList,
  node_secret_key: v.pipe(
    v.nullish(v.pipe(v.string(), v.regex(/^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/, "node_secret_key must be printable ASCII"))),
    v.transform((s) => (s === null || s === "" ? undefined : s)),
  ),
});
export type RotateResponse = v.InferOutput<typeof RotateResponseSchema>;

/** §6.7 endpoint response. */
export const EndpointResponseSchema = v.object({
  peer_endpoints: list(v.object({ peer_id: v.pipe(v.string(), v.minLength(1)), endpoint: text })),
});
export type EndpointResponse = v.InferOutput<typeof EndpointResponseSchema>;

const RelaySession = v.object({
  session_id: v.string(),
  peer_a_id: text,
  peer_a_endpoint: text,
  peer_b_id: text,
  peer_b_endpoint: text,
  expires_at: text,
});
const UserAccessPeer = v.object({ public_key: key32, allowed_ips: list(v.string()), psk: text, label: text });
const IngressRule = v.object({
  rule_id: v.string(),
  listen_port: int,
  target_addr: text,
  mode: text,
  cert_pem: text,
  key_pem: text,
});
const SiteTunnel = v.object({
  tunnel_id: v.string(),
  remote_endpoint: text,
  remote_public_key: text,
  local_subnets: list(v.string()),
  remote_subnets: list(v.string()),
  psk: text,
  interface_name: text,
  listen_port: v.nullish(int, 0),
});

/** §6.8 full desired state. Bridge sections stay undefined when absent. */
export const StateResponseSchema = v.object({
  peers: PeerList,
  policies: list(PolicySchema),
  signing_keys: v.nullish(SigningKeysSchema),
  metadata: v.nullish(v.record(v.string(), v.string()), () => ({})),
  data: list(DataEntrySchema),
  secret_refs: list(SecretRefSchema),
  bridge_config: v.nullish(v.object({ access_subnets: list(v.string()), enable_nat: flag, enable_forwarding: flag })),
  relay_config: v.nullish(v.object({ sessions: list(RelaySession) })),
  user_access_config: v.nullish(
    v.object({ enabled: flag, interface_name: text, listen_port: v.nullish(int, 0), peers: list(UserAccessPeer) }),
  ),
  ingress_config: v.nullish(v.object({ enabled: flag, rules: list(IngressRule) })),
  site_to_site_config: v.nullish(v.object({ enabled: flag, tunnels: list(SiteTunnel) })),
});
export type StateResponse = v.InferOutput<typeof StateResponseSchema>;

/** §6.10 NSK-encrypted secret. */
export const SecretResponseSchema = v.object({
  key: v.string(),
  ciphertext: v.string(),
  nonce: v.string(),
  version: int,
});
export type SecretResponse = v.InferOutput<typeof SecretResponseSchema>;

/** One line per issue path, for error messages. */
export function issueText(issues: readonly v.BaseIssue<unknown>[]): string {
  const i = issues[0];
  if (i === undefined) return "invalid";
  const path = v.getDotPath(i);
  return `${path ? path + ": " : ""}${i.message}`;
}
