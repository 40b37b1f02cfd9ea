/** `plexd status` and `plexd peers` (config.md §4.2): read views from the daemon. */
import type { Command } from "../command.ts";
import { EXIT } from "../exit.ts";
import { table } from "../output.ts";
import type { PeerView } from "../../mesh/controller.ts";
import type { StatusSnapshot } from "../../agent/types.ts";
import { age, daemon, iec, loadAgentConfig, printData, printError } from "./agent-common.ts";
import type { CommandContext } from "../command.ts";
import { CpApi } from "../../controlplane/api.ts";
import { HttpClient } from "../../controlplane/http.ts";
import { loadIdentity } from "../../identity/index.ts";

/** `status --check`: GET /v1/ping; any HTTP answer proves reachability (protocol.md §6.18). */
async function pingCp(ctx: CommandContext): Promise<{ reachable: boolean; http_status?: number; error?: string }> {
  try {
    const c = (await loadAgentConfig(ctx)).config;
    const id = loadIdentity(c.data_dir);
    const http = new HttpClient({
      baseUrl: c.api.url,
      auth: () => (id.registered ? id.identity.nodeSecretKey : undefined),
      caFile: c.api.ca_file || undefined,
      tlsInsecureSkipVerify: c.api.tls_insecure_skip_verify,
      requestTimeoutMs: 10_000,
    });
    const r = await new CpApi({ http }).ping();
    return r.ok ? { reachable: true, http_status: r.value.httpStatus } : { reachable: false, error: r.error.kind };
  } catch (err) {
    return { reachable: false, error: (err as Error).message };
  }
}

function humanNat(n: StatusSnapshot["nat"]): string {
  if (!n.enabled) return "disabled";
  const parts = [n.type + (n.public_endpoint ? ` ${n.public_endpoint}` : "")];
  if (n.mode) parts.push(`${n.mode} socket`);
  parts.push(n.last_success_age_s === null ? "no STUN answer yet" : `last success ${n.last_success_age_s}s ago`);
  if (n.report_pending) parts.push("report pending");
  if (n.last_error) parts.push(`last error: ${n.last_error}`);
  return parts.join(", ");
}

function humanStatus(s: StatusSnapshot): string {
  const rows: Array<[string, string]> = [
    ["phase", s.phase],
    ["node id", s.node_id ?? "-"],
    ["mesh ip", s.mesh_ip ?? "-"],
    ["interface", `${s.interface} (${s.backend})`],
    ["control plane", `${s.control_plane.connectivity}${s.control_plane.auth === "unauthorized" ? ", unauthorized" : ""} (${s.control_plane.url})`],
    ["sse", `${s.sse.state}, ${s.sse.reconnects_total} reconnects, last connected ${age(s.sse.last_connected_at)}`],
    ["last heartbeat", age(s.heartbeat.last_ok_at)],
    ["nat", humanNat(s.nat)],
    ["firewall", s.firewall.enabled ? (s.firewall.last_error ? `apply failed: ${s.firewall.last_error}` : `enforced, applied ${age(s.firewall.last_applied_at)}`) : "not enforced"],
    ["peers", `${s.peers.up} up / ${s.peers.total} configured (${s.peers.visible} visible)`],
    ["health", s.health.status + (s.health.problems.length ? ": " + s.health.problems.map((p) => `${p.indicator} ${p.severity} (${p.message})`).join("; ") : "")],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  const head = rows.map(([k, v]) => `${(k + ":").padEnd(w + 1)}  ${v}`).join("\n");
  if (s.peers.list.length === 0) return head;
  const peers = table(
    ["PEER", "ENDPOINT", "HANDSHAKE"],
    s.peers.list.map((p) => [p.id || p.public_key.slice(0, 12), p.endpoint ?? "-", age(p.last_handshake)]),
  );
  return `${head}\n\n${peers}`;
}

export const statusCommand: Command = {
  path: ["status"],
  summary: "show phase, identity, connectivity, SSE, heartbeat, NAT and peers (exit 3 when the daemon is down)",
  flags: { check: { kind: "bool", description: "also probe the control plane (/v1/ping)" } },
  run: async (ctx) => {
    const r = await daemon(ctx, "GET", "/v1/status", undefined, 10_000);
    if (!r.ok) return r.exit >= 0 ? r.exit : printError(ctx, r.answer.kind === "error" ? r.answer.code : "error", r.answer.kind === "error" ? r.answer.message : "", EXIT.failure);
    const s = r.body as StatusSnapshot;
    let check: { reachable: boolean; http_status?: number; error?: string } | undefined;
    if (ctx.parsed.flags.check === true) check = await pingCp(ctx);
    printData(ctx, check ? { ...s, check } : s, () => humanStatus(s) + (check ? `\ncp check:       ${check.reachable ? `reachable (HTTP ${check.http_status})` : `unreachable (${check.error})`}` : ""));
    if (check && !check.reachable) return EXIT.unavailable;
    return s.health.status === "unhealthy" ? EXIT.failure : EXIT.ok;
  },
};

export const peersCommand: Command = {
  path: ["peers"],
  summary: "list mesh peers: PEER MESH_IP ENDPOINT HANDSHAKE RX TX VISIBLE",
  run: async (ctx) => {
    const r = await daemon(ctx, "GET", "/v1/peers", undefined, 10_000);
    if (!r.ok) return r.exit >= 0 ? r.exit : printError(ctx, r.answer.kind === "error" ? r.answer.code : "error", r.answer.kind === "error" ? r.answer.message : "", EXIT.failure);
    const peers = ((r.body as { peers?: PeerView[] }).peers ?? []) as PeerView[];
    return printData(ctx, { peers }, () =>
      table(
        ["PEER", "MESH_IP", "ENDPOINT", "HANDSHAKE", "RX", "TX", "VISIBLE"],
        peers.map((p) => [p.id || p.public_key.slice(0, 12), p.mesh_ip || "-", p.endpoint || "-", age(p.last_handshake), iec(p.rx_bytes), iec(p.tx_bytes), p.visible ? "yes" : "no"]),
      ),
    );
  },
};
