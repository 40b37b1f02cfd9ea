/**
 * The CapabilitiesPayload of protocol.md §5: the agent version and binary checksum, the 11
 * built-in actions of actions.md §7 with their parameters, and the valid hooks of the scan.
 * Sent in the registration body and by `PUT …/capabilities` (§6.6) whenever it changes.
 */
import * as v from "valibot";
import { BUILTIN_ACTIONS } from "../config/index.ts";
import type { ActionParam, CapabilitiesPayload, CompatProfile } from "../controlplane/types.ts";
import type { ValidHook } from "../hooks/index.ts";
import { formatChecksum, parseChecksum, sha256Hex } from "../util/checksum.ts";
import { formatDurationMs } from "../util/duration.ts";
import { VERSION } from "../version.ts";

/** One built-in parameter; `min`/`max` are the §7 ranges (int only, enforced at admission). */
export interface BuiltinParam extends ActionParam {
  readonly min?: number;
  readonly max?: number;
}

/** One built-in action as announced. */
export interface BuiltinAction {
  readonly name: string;
  readonly description: string;
  readonly parameters: readonly BuiltinParam[];
}

const p = (name: string, type: ActionParam["type"], required: boolean, def: string | undefined, description: string, range?: [number, number]): BuiltinParam => ({
  name,
  type,
  required,
  ...(def !== undefined ? { default: def } : {}),
  description,
  ...(range ? { min: range[0], max: range[1] } : {}),
});

// actions.md §7, in table order. Descriptions summarise the spec's behaviour column; ranges are
// stated in the parameter description because ActionParam has no range field.
const BUILTINS: Record<string, Omit<BuiltinAction, "name">> = {
  "diagnostics.collect": {
    description: "Collect host diagnostics: CPU, memory, disks, and optionally network and processes",
    parameters: [
      p("include_network", "bool", false, "true", "include interfaces, default route, DNS and mesh state"),
      p("include_processes", "bool", false, "true", "include the process count and the top processes by RSS"),
    ],
  },
  "diagnostics.ping_peer": {
    description: "ICMP echo to a peer's mesh IP over the mesh interface",
    parameters: [p("peer_id", "string", true, undefined, "node id of the peer"), p("count", "int", false, "4", "number of echo requests (1-20)", [1, 20])],
  },
  "diagnostics.traceroute_peer": {
    description: "Underlay path to a peer's current WireGuard endpoint",
    parameters: [p("peer_id", "string", true, undefined, "node id of the peer"), p("max_hops", "int", false, "10", "maximum TTL (1-30)", [1, 30])],
  },
  "service.restart": { description: "Report success, then restart the agent", parameters: [] },
  "service.reload_config": { description: "Re-read and validate the configuration and apply reloadable keys", parameters: [] },
  "service.upgrade": {
    description: "Download, verify and install another agent version, with health-gated rollback",
    parameters: [
      p("version", "string", true, undefined, "target version (semver)"),
      p("checksum", "string", true, undefined, "SHA-256 of the artifact"),
      p("signature", "string", false, undefined, "artifact signature"),
    ],
  },
  "system.info": { description: "Host, OS, kernel, hardware and agent information", parameters: [] },
  "health.check": {
    description: "The detailed health document, optionally with per-peer state",
    parameters: [p("include_peers", "bool", false, "false", "include per-peer handshake and traffic counters")],
  },
  "mesh.reconnect": { description: "Recreate the mesh interface from the cached desired state and reconcile", parameters: [] },
  "config.dump": { description: "The effective configuration with the source of every key, secrets redacted", parameters: [] },
  "logs.snapshot": {
    description: "Recent journald entries of the plexd unit, gzip-compressed JSON lines",
    parameters: [
      p("lines", "int", false, "1000", "number of lines (1-10000)", [1, 10000]),
      p("since", "string", false, undefined, "Go duration (that long ago) or RFC 3339 time"),
    ],
  },
};

/** The 11 built-ins of actions.md §7 (order of {@link BUILTIN_ACTIONS}). */
export const BUILTIN_ACTION_DEFS: readonly BuiltinAction[] = BUILTIN_ACTIONS.map((name) => {
  const d = BUILTINS[name];
  if (!d) throw new Error(`built-in action ${name} has no definition`);
  return { name, ...d };
});

/** Inputs of {@link buildCapabilities}. */
export interface CapabilitiesInput {
  /** Binary checksum, hex or `sha256:` form ("" when integrity is off). */
  readonly binaryChecksum: string;
  readonly hooks: readonly ValidHook[];
  readonly profile: CompatProfile;
  readonly version?: string;
}

const wireParam = (x: ActionParam): ActionParam => ({
  name: x.name,
  type: x.type,
  required: x.required,
  ...(x.default !== undefined ? { default: x.default } : {}),
  description: x.description,
});

/** Builds the payload; checksums and the hook `source` follow compat.profile (protocol.md §10). */
export function buildCapabilities(i: CapabilitiesInput): CapabilitiesPayload {
  const hex = parseChecksum(i.binaryChecksum);
  return {
    binary: { version: i.version ?? VERSION, checksum: hex === undefined ? i.binaryChecksum : formatChecksum(hex, i.profile) },
    builtin_actions: BUILTIN_ACTION_DEFS.map((b) => ({ name: b.name, description: b.description, parameters: b.parameters.map(wireParam) })),
    hooks: i.hooks.map((h) => ({
      name: h.name,
      description: h.description,
      source: i.profile === "legacy" ? "local" : "script",
      checksum: formatChecksum(h.checksum, i.profile),
      parameters: h.parameters.map(wireParam),
      timeout: formatDurationMs(h.timeout),
      sandbox: h.sandbox,
    })),
  };
}

/** Outbox kind and dedup key of `PUT …/capabilities` (operations.md §3: newest replaces older). */
export const CAPABILITIES_OUTBOX_KIND = "capabilities";

/** kv key of the last payload the CP acknowledged (registration or a 2xx PUT), as sent. */
export const ANNOUNCED_CAPABILITIES_KEY = "capabilities.announced";

/** The payload's identity for "changed since announced": SHA-256 of its serialisation. */
export function capabilitiesHash(c: CapabilitiesPayload | string): string {
  return sha256Hex(typeof c === "string" ? c : JSON.stringify(c));
}

const Param = v.object({
  name: v.string(),
  type: v.picklist(["string", "bool", "int"]),
  required: v.boolean(),
  default: v.optional(v.string()),
  description: v.string(),
});
const PayloadSchema = v.object({
  binary: v.object({ version: v.string(), checksum: v.string() }),
  builtin_actions: v.array(v.object({ name: v.string(), description: v.string(), parameters: v.array(Param) })),
  hooks: v.array(
    v.object({
      name: v.string(),
      description: v.string(),
      source: v.string(),
      checksum: v.string(),
      parameters: v.array(Param),
      timeout: v.string(),
      sandbox: v.picklist(["none", "namespaced", "container"]),
    }),
  ),
});

/** Parses a queued payload (outbox body); undefined when it is not one. */
export function parseCapabilitiesBody(body: string | null): CapabilitiesPayload | undefined {
  try {
    const r = v.safeParse(PayloadSchema, JSON.parse(body ?? "null"));
    return r.success ? r.output : undefined;
  } catch {
    return undefined;
  }
}
