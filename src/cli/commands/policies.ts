/**
 * `plexd policies [--json]` (config.md §4.2): the policy rules as enforced (POLICY SRC DST PROTO
 * PORT ACTION STATUS), the firewall sync state, the nftables rules of `inet plexd` with their
 * counters, and warnings about foreign base chains that can drop mesh traffic. Served by the
 * daemon at GET /v1/policies (Enforcer.status()).
 */
import type { Command } from "../command.ts";
import { EXIT } from "../exit.ts";
import { table } from "../output.ts";
import type { PolicyStatus } from "../../policy/index.ts";
import { age, daemon, printData, printError } from "./agent-common.ts";

/** Human rendering of Enforcer.status(). */
export function humanPolicies(s: PolicyStatus): string {
  const out: string[] = [];
  const sync = s.synced === null ? "not applied yet" : s.synced ? "in sync" : `OUT OF SYNC${s.lastError ? `: ${s.lastError}` : ""}`;
  out.push(
    `firewall: table inet plexd ${s.firewall.exists ? "present" : "ABSENT"}, ${sync}; default ${s.default}, log denied ${s.logDenied ? "on" : "off"}, interface ${s.interface}`,
    `last apply ${age(s.lastApply)}, last reconcile ${age(s.lastReconcile)}, restored ${s.restored}x`,
    "",
  );
  out.push(
    s.rules.length
      ? table(
          ["POLICY", "SRC", "DST", "PROTO", "PORT", "ACTION", "STATUS"],
          s.rules.map((r) => [r.policy, r.src, r.dst, r.protocol, r.port ? String(r.port) : "any", r.action, r.status === "active" ? r.directions.join(",") : `${r.status}${r.reason ? ` (${r.reason})` : ""}`]),
        )
      : "no policy rules",
  );
  out.push("", table(["CHAIN", "PACKETS", "BYTES", "RULE"], s.firewall.rules.map((r) => [r.chain, String(r.packets), String(r.bytes), r.text])));
  const filled = s.firewall.sets.filter((x) => x.elements > 0);
  if (filled.length) out.push("", `sets: ${filled.map((x) => `${x.name}=${x.elements}`).join(", ")}`);
  for (const n of s.notes) out.push(`${n.level}: policy ${n.policy} rule ${n.index}: ${n.message}`);
  for (const w of s.foreign)
    out.push(
      `${w.level}: foreign base chain ${w.family} ${w.table} ${w.chain} (hook ${w.hook}, priority ${w.priority}) ${w.reason}` +
        (w.runsFirst ? " — runs before plexd and can drop mesh traffic" : " — runs after plexd; a drop there still drops mesh traffic"),
    );
  if (s.firewalld) out.push(`firewalld: ${s.firewalld.running ? `running, ${s.interface} in zone ${s.firewalld.zone ?? "none"}` : "not running"}`);
  return out.join("\n");
}

export const policiesCommand: Command = {
  path: ["policies"],
  summary: "show the enforced policy rules, nftables counters and firewall conflicts",
  run: async (ctx) => {
    const r = await daemon(ctx, "GET", "/v1/policies", undefined, 10_000);
    if (!r.ok) return r.exit >= 0 ? r.exit : printError(ctx, r.answer.kind === "error" ? r.answer.code : "error", r.answer.kind === "error" ? r.answer.message : "", EXIT.failure);
    const s = r.body as PolicyStatus;
    return printData(ctx, s, () => humanPolicies(s));
  },
};
