/**
 * Peer visibility (lifecycle.md §4.3): which peers get configured on the mesh interface.
 *
 * - `policy.default: allow` → every peer is visible.
 * - otherwise a peer is visible only when an `allow` rule links the local node and that peer,
 *   in either direction. Rule ends match by node id, `*`, or an IPv4 address/CIDR inside
 *   10.100.0.0/16 containing the node's mesh IP. A node id nobody has matches nothing.
 * - `deny` rules do not hide peers (the firewall enforces them); visibility only decides whether
 *   a tunnel can exist at all.
 * - Rule ends naming addresses outside 10.100.0.0/16 are skipped (the rest still applies).
 *
 * Pure: no I/O, no logging; the caller reports `skipped` rules.
 */

/** The part of a policy rule visibility looks at. */
export interface VisibilityRule {
  readonly src: string;
  readonly dst: string;
  readonly action: string;
}

/** The part of a policy visibility looks at. */
export interface VisibilityPolicy {
  readonly id: string;
  readonly rules: readonly VisibilityRule[];
}

/** A node as visibility sees it. */
export interface VisibilityNode {
  readonly id: string;
  readonly meshIp: string;
}

/** Inputs of {@link visiblePeers}. */
export interface VisibilityInput {
  readonly self: VisibilityNode;
  readonly peers: readonly VisibilityNode[];
  readonly policies: readonly VisibilityPolicy[];
  /** config `policy.default`. */
  readonly defaultAction: "allow" | "deny";
}

/** Result: the visible peer ids plus rules that were skipped because of an out-of-range end. */
export interface VisibilityResult {
  readonly visible: Set<string>;
  readonly skipped: Array<{ policyId: string; index: number; reason: string }>;
}

const MESH_NET = 0x0a640000;
const MESH_MASK = 0xffff0000;

function ipv4(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const b = Number(m[i]);
    if (b > 255) return undefined;
    n = n * 256 + b;
  }
  return n >>> 0;
}

/** A parsed rule end. */
type End = { kind: "any" } | { kind: "node"; id: string } | { kind: "cidr"; net: number; mask: number } | { kind: "invalid"; reason: string };

const looksLikeAddress = (s: string) => /^\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?$/.test(s);

/** Parses one rule end (`*`, node id, IPv4 or CIDR inside 10.100.0.0/16). */
export function parseRuleEnd(s: string): End {
  if (s === "*") return { kind: "any" };
  if (!looksLikeAddress(s)) return s === "" ? { kind: "invalid", reason: "empty rule end" } : { kind: "node", id: s };
  const [ip = "", plenText] = s.split("/");
  const addr = ipv4(ip);
  const plen = plenText === undefined ? 32 : Number(plenText);
  if (addr === undefined || plen > 32) return { kind: "invalid", reason: `${s} is not an IPv4 address or CIDR` };
  const mask = plen === 0 ? 0 : (0xffffffff << (32 - plen)) >>> 0;
  const net = (addr & mask) >>> 0;
  // The whole range must lie inside the mesh: a /8 naming 10.0.0.0 reaches outside it.
  if (plen < 16 || ((net & MESH_MASK) >>> 0) !== MESH_NET) return { kind: "invalid", reason: `${s} is outside 10.100.0.0/16` };
  return { kind: "cidr", net, mask };
}

function matches(end: End, node: VisibilityNode): boolean {
  switch (end.kind) {
    case "any":
      return true;
    case "node":
      return end.id === node.id;
    case "cidr": {
      const a = ipv4(node.meshIp);
      return a !== undefined && ((a & end.mask) >>> 0) === end.net;
    }
    case "invalid":
      return false;
  }
}

/** Computes the visible peers (self is never visible). */
export function visiblePeers(input: VisibilityInput): VisibilityResult {
  const peers = input.peers.filter((p) => p.id !== input.self.id);
  const skipped: VisibilityResult["skipped"] = [];
  if (input.defaultAction === "allow") return { visible: new Set(peers.map((p) => p.id)), skipped };
  const visible = new Set<string>();
  for (const pol of input.policies) {
    pol.rules.forEach((rule, index) => {
      const src = parseRuleEnd(rule.src);
      const dst = parseRuleEnd(rule.dst);
      const bad = [src, dst].find((e): e is Extract<End, { kind: "invalid" }> => e.kind === "invalid");
      if (bad) {
        skipped.push({ policyId: pol.id, index, reason: bad.reason });
        return;
      }
      if (rule.action !== "allow") return;
      const outbound = matches(src, input.self);
      const inbound = matches(dst, input.self);
      if (!outbound && !inbound) return;
      for (const p of peers) {
        if (visible.has(p.id)) continue;
        if ((outbound && matches(dst, p)) || (inbound && matches(src, p))) visible.add(p.id);
      }
    });
  }
  return { visible, skipped };
}
