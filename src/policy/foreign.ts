/**
 * Foreign base chains that can drop mesh traffic (for `plexd policies`). Pure.
 *
 * nftables runs every base chain registered on a hook, in priority order; an `accept` ends
 * only the chain it is in, while a `drop` anywhere is final. So a foreign chain on input,
 * output or forward with a drop policy, or with drop/reject rules not restricted to another
 * interface, can drop what plexd accepted. Chains with a priority lower than or equal to ours
 * (0) run first and are reported as `warn`; later ones as `info`.
 */
import type { FwRule } from "../kernel/firewall-api.ts";
import type { RaisedRule } from "../kernel/nft.ts";
import type { ForeignTable } from "./target.ts";

export interface ForeignChainWarning {
  level: "warn" | "info";
  family: string;
  table: string;
  chain: string;
  hook: string;
  priority: number;
  /** True when it runs before (or, at equal priority, possibly before) plexd's chain. */
  runsFirst: boolean;
  reason: string;
}

const HOOKS = new Set(["input", "output", "forward"]);
/** NF_DROP as read back in an opaque immediate expression. */
const NF_DROP = 0;

function mayDropMesh(r: RaisedRule, ifname: string): boolean {
  if (r.opaque)
    return r.opaque.some((x) => (x.type === "immediate" && x.verdict === NF_DROP) || (x.type === "unknown" && x.name === "reject"));
  if (!r.stmt.some((s) => s.stmt === "verdict" && s.verdict === "drop")) return false;
  // `iifname "eth0" … drop` cannot hit mesh traffic; `iifname != "plexd0"` cannot either.
  const other = r.match.some(
    (m) =>
      m.match === "cmp" &&
      (m.field === "meta iifname" || m.field === "meta oifname") &&
      ((m.op ?? "eq") === "eq" ? m.value !== ifname : m.value === ifname),
  );
  return !other;
}

/** Warnings for foreign base chains on our hooks; `ourPriority` is 0 (lifecycle.md §4.3). */
export function foreignWarnings(tables: readonly ForeignTable[], ifname: string, ourPriority = 0): ForeignChainWarning[] {
  const out: ForeignChainWarning[] = [];
  for (const t of tables) {
    for (const c of t.dump.chains) {
      if (!c.hook || !HOOKS.has(c.hook)) continue;
      const priority = c.priority ?? 0;
      const runsFirst = priority <= ourPriority;
      const base = { level: runsFirst ? ("warn" as const) : ("info" as const), family: t.family, table: t.name, chain: c.name, hook: c.hook, priority, runsFirst };
      if (c.policy === "drop") out.push({ ...base, reason: "policy drop" });
      const rules = t.dump.rules.filter((r: FwRule) => r.chain === c.name) as RaisedRule[];
      const dropping = rules.filter((r) => mayDropMesh(r, ifname)).length;
      if (dropping) out.push({ ...base, reason: `${dropping} drop/reject rule${dropping === 1 ? "" : "s"} not limited to another interface` });
    }
  }
  return out;
}
