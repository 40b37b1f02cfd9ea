/**
 * Journal vocabulary (operations.md §1.1–§1.3, §4; protocol.md §9): row statuses, the event
 * type sets that change routing, and ordering keys for supersession.
 */

/** `events.verify`. `unverified` marks a row appended but not yet verified (crash window). */
export type VerifyState = "unverified" | "verified" | "rejected" | "duplicate";

/** `events.status` (operations.md §1.2). `received` pairs with `verify = 'unverified'`. */
export type EventStatus =
  | "received"
  | "pending"
  | "processing"
  | "retry_wait"
  | "done"
  | "ignored"
  | "superseded"
  | "dead"
  | "rejected"
  | "duplicate";

/** Statuses the retention rules treat as terminal (operations.md §1.4). */
export const TERMINAL_STATUSES = ["done", "ignored", "duplicate", "rejected", "superseded"] as const;

/** Default `plexd replay --status` selection (operations.md §4). */
export const DEFAULT_REPLAY_STATUSES = ["done", "dead", "ignored", "superseded"] as const;

/** Events handled only in bridge mode (protocol.md §9); journaled `ignored` in node mode. */
export const BRIDGE_EVENT_TYPES: ReadonlySet<string> = new Set([
  "bridge_config_updated",
  "relay_session_assigned",
  "relay_session_revoked",
  "user_access_config_updated",
  "user_access_peer_assigned",
  "user_access_peer_revoked",
  "ingress_config_updated",
  "ingress_rule_assigned",
  "ingress_rule_revoked",
  "site_to_site_config_updated",
  "site_to_site_tunnel_assigned",
  "site_to_site_tunnel_revoked",
]);

/** Never replayed (side effects or trust changes, operations.md §4), with the reason shown. */
export const NEVER_REPLAY: ReadonlyMap<string, string> = new Map([
  ["action_request", "side effects: actions are never replayed"],
  ["ssh_session_setup", "side effects: access sessions are never replayed"],
  ["rotate_keys", "side effects: key rotation is never replayed"],
  ["signing_key_rotated", "trust change: signing keys are never replayed"],
]);

const PEER_EVENTS = new Set(["peer_added", "peer_removed", "peer_key_rotated", "peer_endpoint_changed"]);

// Bridge event type → [kind, payload field naming the object]. *_config_updated have no object.
const BRIDGE_KEYS: Record<string, readonly [string, string | undefined]> = {
  bridge_config_updated: ["bridge", undefined],
  relay_session_assigned: ["relay", "session_id"],
  relay_session_revoked: ["relay", "session_id"],
  user_access_config_updated: ["user_access", undefined],
  user_access_peer_assigned: ["user_access", "public_key"],
  user_access_peer_revoked: ["user_access", "public_key"],
  ingress_config_updated: ["ingress", undefined],
  ingress_rule_assigned: ["ingress", "rule_id"],
  ingress_rule_revoked: ["ingress", "rule_id"],
  site_to_site_config_updated: ["site_to_site", undefined],
  site_to_site_tunnel_assigned: ["site_to_site", "tunnel_id"],
  site_to_site_tunnel_revoked: ["site_to_site", "tunnel_id"],
};

function field(payload: unknown, name: string): string | undefined {
  if (payload === null || typeof payload !== "object" || Array.isArray(payload)) return undefined;
  const v = (payload as Record<string, unknown>)[name];
  return typeof v === "string" && v !== "" ? v : undefined;
}

/**
 * Ordering key of an event (operations.md §1.3), or undefined when the type has none or the
 * payload lacks the identifying field (such rows are never superseded). `*_config_updated`
 * bridge events use `bridge:<kind>:config` (**decision**: the spec names no object for them).
 */
export function orderingKey(eventType: string, payload: unknown): string | undefined {
  if (PEER_EVENTS.has(eventType)) {
    const id = field(payload, "id") ?? field(payload, "peer_id");
    return id === undefined ? undefined : `peer:${id}`;
  }
  switch (eventType) {
    case "policy_updated":
      return "policy";
    case "node_state_updated":
      return "node_state";
    case "node_secrets_updated":
      return "secrets";
    case "signing_key_rotated":
      return "signing_keys";
    case "action_request": {
      const id = field(payload, "execution_id");
      return id === undefined ? undefined : `exec:${id}`;
    }
    case "session_revoked":
    case "ssh_session_setup": {
      const id = field(payload, "session_id");
      return id === undefined ? undefined : `session:${id}`;
    }
  }
  const b = BRIDGE_KEYS[eventType];
  if (b === undefined) return undefined;
  const [kind, name] = b;
  if (name === undefined) return `bridge:${kind}:config`;
  const id = field(payload, name);
  return id === undefined ? undefined : `bridge:${kind}:${id}`;
}

/** Parses a payload text, undefined-safe: returns `{ ok: false }` instead of throwing. */
export function parsePayload(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}
