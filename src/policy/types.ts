/**
 * Shapes of the policy compiler's input and output. The input types are structural copies of
 * protocol.md §5 Policy/PolicyRule (validated at the control-plane boundary), so this module
 * needs no import from controlplane/.
 */
import type { FwChain, FwElement, FwRule, FwSet } from "../kernel/firewall-api.ts";
import type { Box } from "./ranges.ts";

/** protocol.md §5 PolicyRule. `protocol`: tcp, udp, icmp (extension), "" or "any". */
export interface PolicyRuleInput {
  src: string;
  dst: string;
  port?: number | null;
  protocol?: string | null;
  action: string;
}

/** protocol.md §5 Policy. */
export interface PolicyInput {
  id: string;
  rules: readonly PolicyRuleInput[];
}

/** This node. */
export interface LocalIdentity {
  nodeId: string;
  meshIp: string;
}

/** A peer's node id and mesh IP (from the control plane's peer list). */
export interface PeerAddress {
  id: string;
  meshIp: string;
}

/** Compiler options (config.md §2.7 plus the mesh interface). */
export interface CompileOptions {
  /** Mesh interface name (`mesh.interface`). */
  interface: string;
  /** `policy.default`: final verdict of the mesh chains. */
  default: "deny" | "allow";
  /** `policy.log_denied`: `log prefix "plexd-deny " level debug` on every drop. */
  logDenied: boolean;
  /** Address ranges rules may name; default ["10.100.0.0/16"]. `*` means all of them. */
  meshRanges?: readonly string[];
  /** Filter forwarded mesh traffic too (chain `forward` → `mesh_fwd`); default true. */
  forward?: boolean;
  /** TCP ports of open access sessions, accepted from the mesh before any policy rule. */
  accessPorts?: readonly number[];
  /** Table name; default "plexd" (family is always inet). */
  table?: string;
}

/** Everything the compiler needs. */
export interface PolicySet {
  policies: readonly PolicyInput[];
  local: LocalIdentity;
  peers: readonly PeerAddress[];
}

/** A set with the elements it must hold (canonical spelling, as read back). */
export type DesiredSet = FwSet & { elements: FwElement[] };

/** The rendered `inet plexd` table. */
export interface Ruleset {
  family: "inet";
  table: string;
  /** Base chains first, then the regular chains they jump to. */
  chains: FwChain[];
  sets: DesiredSet[];
  /** In order, per chain. */
  rules: FwRule[];
}

/** Direction a rule was rendered into. */
export type Direction = "in" | "out" | "fwd";

/** How one policy rule ended up (for `plexd policies` and logs). */
export interface RuleReport {
  policy: string;
  index: number;
  src: string;
  dst: string;
  protocol: string;
  port: number;
  action: string;
  /**
   * active: rendered into at least one direction; not_local: concerns neither this node nor
   * (with forwarding off) forwarded traffic; no_match: names an unknown node id (matches
   * nothing, never "anyone"); skipped: invalid or outside the mesh range (warned).
   */
  status: "active" | "not_local" | "no_match" | "skipped";
  directions: Direction[];
  reason?: string;
}

/** A compiler complaint; `warn` for skipped rules, `info` for rules that match nothing. */
export interface CompileNote {
  level: "warn" | "info";
  policy: string;
  index: number;
  message: string;
}

/** The compiler's result. */
export interface Compiled {
  ruleset: Ruleset;
  rules: RuleReport[];
  notes: CompileNote[];
  /** Per set, the disjoint boxes behind its elements (same order), for incremental updates. */
  boxes: Map<string, Box[]>;
}
