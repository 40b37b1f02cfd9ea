/**
 * nft-like one-line rendering of a read-back rule, for `plexd policies` and logs. Pure.
 * Not a parser's input: it only has to be readable and stable.
 */
import type { FwRule, Match, Statement } from "../kernel/firewall-api.ts";
import type { RaisedRule } from "../kernel/nft.ts";

const PROTO: Record<number, string> = { 1: "icmp", 6: "tcp", 17: "udp", 58: "ipv6-icmp" };

function matchText(m: Match): string {
  switch (m.match) {
    case "ct":
      return `ct state ${m.states.join(",")}`;
    case "set":
      return `${m.fields.join(" . ")} ${m.neg ? "!= " : ""}@${m.set}`;
    case "cmp": {
      const field = m.field === "meta iifname" ? "iifname" : m.field === "meta oifname" ? "oifname" : m.field;
      let v = typeof m.value === "string" && field.endsWith("ifname") ? JSON.stringify(m.value) : String(m.value);
      if (m.field === "meta l4proto" && typeof m.value === "number") v = PROTO[m.value] ?? v;
      return `${field} ${m.op === "neq" ? "!= " : ""}${v}`;
    }
  }
}

function stmtText(s: Statement): string {
  switch (s.stmt) {
    case "counter":
      return s.packets === undefined ? "counter" : `counter packets ${s.packets} bytes ${s.bytes ?? 0}`;
    case "log":
      return ["log", s.prefix !== undefined ? `prefix ${JSON.stringify(s.prefix)}` : "", s.level ? `level ${s.level}` : ""]
        .filter(Boolean)
        .join(" ");
    case "verdict":
      return s.verdict === "jump" || s.verdict === "goto" ? `${s.verdict} ${s.chain}` : s.verdict;
  }
}

/** `ip saddr . meta l4proto . th dport @allow_in4_svc counter packets 3 bytes 180 accept`. */
export function ruleText(r: FwRule | RaisedRule): string {
  if ("opaque" in r && r.opaque) return `<rule with ${r.opaque.length} expressions plexd does not build>`;
  return [...r.match.map(matchText), ...r.stmt.map(stmtText)].join(" ");
}

/** Counter values of a read-back rule (0/0 when it has no counter). */
export function counterOf(r: FwRule): { packets: number; bytes: number } {
  const c = r.stmt.find((s) => s.stmt === "counter");
  return c && c.stmt === "counter" ? { packets: c.packets ?? 0, bytes: c.bytes ?? 0 } : { packets: 0, bytes: 0 };
}
