/** The wired CP: configuration plus every store, passed to route modules. */
import type { Db } from "./db.ts";
import type { KeyRing } from "./sign.ts";
import type { EventLog } from "./events.ts";
import type { TokenStore } from "./tokens.ts";
import type { Ipam } from "./ipam.ts";
import type { Policies } from "./policies.ts";
import type { Nodes, NodeRow } from "./nodes.ts";
import type { Desired } from "./desired.ts";
import type { Records } from "./records.ts";
import type { Reports } from "./reports.ts";
import type { Executions } from "./executions.ts";
import type { Artifacts } from "./artifacts.ts";
import type { Faults } from "./faults.ts";
import { HttpError, forbidden, unauthorized } from "./errors.ts";
import { bearer } from "./http.ts";

/** Runtime configuration (from CLI flags). */
export interface CpConfig {
  host: string;
  port: number;
  dbPath: string;
  dataDir: string;
  tls: boolean;
  certDir: string;
  adminTokenFile: string;
  faults: boolean;
  heartbeatIntervalMs: number;
  keepaliveMs: number;
  ipCooldownMs: number;
  defaultTransitionMs: number;
  minVersion: string | undefined;
}

export interface Cp {
  config: CpConfig;
  db: Db;
  keys: KeyRing;
  events: EventLog;
  tokens: TokenStore;
  ipam: Ipam;
  policies: Policies;
  nodes: Nodes;
  desired: Desired;
  records: Records;
  reports: Reports;
  executions: Executions;
  artifacts: Artifacts;
  faults: Faults;
  adminToken: string;
}

/**
 * NSK authentication for node-scoped paths: 401 without a known NSK, 404 for an unknown (or
 * removed) node id, 403 when the NSK belongs to another node.
 */
export function authNode(cp: Cp, req: Request, nodeId: string | undefined): NodeRow {
  const token = bearer(req);
  const self = token ? cp.nodes.byNsk(token) : undefined;
  if (!self) throw unauthorized("missing or unknown node secret key");
  if (nodeId === undefined) return self;
  const target = cp.nodes.get(nodeId);
  if (!target || target.removed_at !== null) throw new HttpError(404, "node_not_found", "unknown node");
  if (target.id !== self.id) throw forbidden("node secret key belongs to another node");
  return self;
}
