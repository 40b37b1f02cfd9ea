/** Shared agent vocabulary: phases, orthogonal states and the status snapshot (lifecycle.md §1). */
import type { StreamState } from "../events/stream.ts";
import type { NatStatus } from "./nat.ts";

/** Phase machine of lifecycle.md §1. */
export type Phase = "starting" | "registering" | "configuring" | "nat_discovery" | "connected" | "stopping" | "deregistering";

/** CP connectivity (lifecycle.md §1). */
export type Connectivity = "online" | "degraded" | "offline";

/** Auth state (lifecycle.md §11). */
export type AuthState = "ok" | "unauthorized";

/** A named health problem (operations.md §5 indicator shape, reduced). */
export interface HealthProblem {
  readonly indicator: "mesh" | "control_plane" | "nat" | "firewall" | "agent";
  readonly severity: "degraded" | "unhealthy";
  readonly message: string;
}

/** What `GET /v1/status` answers (schemaVersion wrapper added by the CLI). */
export interface StatusSnapshot {
  phase: Phase;
  node_id: string | null;
  mesh_ip: string | null;
  public_key: string | null;
  interface: string;
  backend: string;
  control_plane: { url: string; connectivity: Connectivity; auth: AuthState; last_success_at: string | null };
  sse: { state: StreamState; reconnects_total: number; last_connected_at: string | null; last_event_id: string | null };
  heartbeat: { last_sent_at: string | null; last_ok_at: string | null; age_seconds: number | null; consecutive_failures: number };
  reconcile: { last_run_at: string | null; last_ok_at: string | null; runs: number; last_corrections: number };
  nat: NatStatus;
  firewall: { enabled: boolean; last_applied_at: string | null; last_restored_at: string | null; last_error: string | null };
  /** `list`: every configured peer with the kernel's endpoint and last handshake. */
  peers: { up: number; total: number; visible: number; list: Array<{ id: string; public_key: string; endpoint: string | null; last_handshake: string | null }> };
  health: { status: "healthy" | "degraded" | "unhealthy"; problems: HealthProblem[] };
  uptime_seconds: number;
  version: string;
  pid: number;
}

/** Small ISO helper for optional epoch-ms values. */
export const iso = (ms: number | undefined | null): string | null => (ms === undefined || ms === null ? null : new Date(ms).toISOString());
