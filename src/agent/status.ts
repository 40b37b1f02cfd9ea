/**
 * The status snapshot (`plexd status`, `GET /v1/status`) and the overall health used by the
 * heartbeat `status` field.
 */
import { VERSION } from "../version.ts";
import { natStatus } from "./nat.ts";
import type { Supervisor } from "./supervisor.ts";
import { iso, type HealthProblem, type StatusSnapshot } from "./types.ts";

/** Builds the snapshot from the supervisor's parts (reads the kernel for peer counts). */
export async function buildStatus(s: Supervisor): Promise<StatusSnapshot> {
  const c = s.config;
  const now = s.now();
  const id = s.ctx.maybe;
  const problems: HealthProblem[] = [];
  const conn = s.cpMonitor.connectivity();
  const auth = s.auth?.state ?? "ok";
  if (s.mesh && !s.mesh.healthy) problems.push({ indicator: "mesh", severity: "unhealthy", message: "mesh configuration failed; retrying" });
  if (s.rotator && s.rotator.degradedUntil > now) problems.push({ indicator: "mesh", severity: "degraded", message: "key rotation failed; old key kept" });
  if (auth === "unauthorized") problems.push({ indicator: "control_plane", severity: "unhealthy", message: "identity rejected — run `plexd join`" });
  else if (s.cpMonitor.nodeUnknown) problems.push({ indicator: "control_plane", severity: "unhealthy", message: "node not known to control plane" });
  // Grace at start: before the first CP answer is due, "no success yet" is not a problem.
  else if (s.phase === "connected" && conn !== "online" && (s.cpMonitor.lastSuccessAt !== undefined || now - s.startedAt > 2 * c.heartbeat.interval)) problems.push({ indicator: "control_plane", severity: "degraded", message: `control plane ${conn}` });
  if (s.cpMonitor.upgradeRequired) problems.push({ indicator: "control_plane", severity: "degraded", message: `agent version ${VERSION} below min_version ${s.cpMonitor.upgradeRequired}` });
  if (s.signing?.continuityBroken) problems.push({ indicator: "control_plane", severity: "degraded", message: "signing key continuity broken" });
  // firewall (critical while policy.enabled): last apply failed → unhealthy; drift corrected in
  // the last reconcile interval → degraded.
  const fw = s.firewall?.health();
  if (fw?.enabled && fw.lastError !== null) problems.push({ indicator: "firewall", severity: "unhealthy", message: `firewall apply failed: ${fw.lastError}` });
  else if (fw?.enabled && fw.lastRestoredAt !== null && now - fw.lastRestoredAt <= c.reconcile.interval) problems.push({ indicator: "firewall", severity: "degraded", message: "table inet plexd differed from the desired ruleset; restored" });
  const natEnabled = c.nat_traversal.enabled;
  if (natEnabled && s.nat && s.phase === "connected") {
    const ind = s.nat.indicator();
    if (ind.status !== "healthy") problems.push({ indicator: "nat", severity: "degraded", message: ind.message });
  }
  const status = problems.some((p) => p.severity === "unhealthy") ? "unhealthy" : problems.length > 0 ? "degraded" : "healthy";

  let up = 0;
  let total = 0;
  let visible = 0;
  const list: StatusSnapshot["peers"]["list"] = [];
  if (s.mesh && id) {
    const dev = await s.mesh.readDevice();
    total = dev?.peers.length ?? 0;
    const idByKey = new Map(s.mesh.peers.map((p) => [p.public_key, p.id]));
    for (const p of dev?.peers ?? []) {
      list.push({ id: idByKey.get(p.publicKey) ?? "", public_key: p.publicKey, endpoint: p.endpoint, last_handshake: iso(p.lastHandshakeMs) });
    }
    // "up" = completed a handshake within WireGuard's 180 s session lifetime.
    up = dev?.peers.filter((p) => p.lastHandshakeMs !== null && now - p.lastHandshakeMs <= 180_000).length ?? 0;
    try {
      visible = s.mesh.desired().visible.size;
    } catch {
      visible = 0;
    }
  }
  const hb = s.heartbeat;
  const stats = s.stream?.stats;
  return {
    phase: s.phase,
    node_id: id?.nodeId ?? null,
    mesh_ip: id?.meshIp ?? null,
    public_key: id?.publicKey ?? null,
    interface: c.mesh.interface,
    backend: s.kernel?.backend ?? "none",
    control_plane: { url: c.api.url, connectivity: conn, auth, last_success_at: iso(s.cpMonitor.lastSuccessAt) },
    sse: {
      state: s.stream?.state ?? "stopped",
      reconnects_total: stats?.reconnectsTotal ?? 0,
      last_connected_at: iso(stats?.lastConnectedAt),
      last_event_id: s.journal?.lastEventId() ?? null,
    },
    heartbeat: {
      last_sent_at: iso(hb?.lastSentAt),
      last_ok_at: iso(hb?.lastOkAt),
      age_seconds: hb?.lastOkAt === undefined ? null : Math.round((now - hb.lastOkAt) / 1000),
      consecutive_failures: hb?.consecutiveFailures ?? 0,
    },
    reconcile: {
      last_run_at: iso(s.reconciler?.lastRunAt),
      last_ok_at: iso(s.reconciler?.lastOkAt),
      runs: s.scheduler?.runs ?? 0,
      last_corrections: s.reconciler?.lastCorrections ?? 0,
    },
    nat: natStatus(s.nat?.state(), natEnabled, now),
    firewall: { enabled: fw?.enabled ?? false, last_applied_at: iso(fw?.lastAppliedAt), last_restored_at: iso(fw?.lastRestoredAt), last_error: fw?.lastError ?? null },
    peers: { up, total, visible, list },
    health: { status, problems },
    uptime_seconds: Math.round((now - s.startedAt) / 1000),
    version: VERSION,
    pid: process.pid,
  };
}
