/** Wires the stores and routes together and serves them with Bun.serve. */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { dirname } from "node:path";
import type { Cp, CpConfig } from "./context.ts";
import { openDb } from "./db.ts";
import { KeyRing } from "./sign.ts";
import { EventLog } from "./events.ts";
import { TokenStore } from "./tokens.ts";
import { Ipam } from "./ipam.ts";
import { Policies } from "./policies.ts";
import { Nodes } from "./nodes.ts";
import { Desired } from "./desired.ts";
import { Records } from "./records.ts";
import { Reports } from "./reports.ts";
import { Executions } from "./executions.ts";
import { Artifacts } from "./artifacts.ts";
import { Faults } from "./faults.ts";
import { Router } from "./router.ts";
import { HttpError } from "./errors.ts";
import { ARTIFACT_LIMIT, errorResponse, json } from "./http.ts";
import { ensureTls } from "./tls.ts";
import { registerRoutes } from "./routes/register.ts";
import { nodeRoutes } from "./routes/node.ts";
import { secretRoutes } from "./routes/secrets.ts";
import { executionRoutes } from "./routes/executions.ts";
import { telemetryRoutes } from "./routes/telemetry.ts";
import { artifactRoutes } from "./routes/artifacts.ts";
import { eventRoutes } from "./routes/events.ts";
import { adminRoutes } from "./admin.ts";
import { belowMinVersion, exemptFrom426 } from "./version.ts";

/** A running CP. */
export interface RunningCp {
  cp: Cp;
  url: string;
  caFile: string | null;
  stop(): Promise<void>;
}

/** Reads the admin token file, creating it (0600, random) on first start. */
function adminToken(file: string): string {
  if (existsSync(file)) {
    const t = readFileSync(file, "utf8").trim();
    if (t.length < 16) throw new Error(`admin token in ${file} is too short (min 16 chars)`);
    return t;
  }
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const t = `plxa_${randomBytes(24).toString("base64url")}`;
  writeFileSync(file, `${t}\n`, { mode: 0o600, flag: "wx" });
  return t;
}

/** Builds every store over one database. */
export function buildCp(config: CpConfig): Cp {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const db = openDb(config.dbPath);
  const keys = new KeyRing(db);
  const events = new EventLog(db, keys);
  const tokens = new TokenStore(db);
  const ipam = new Ipam(db, config.ipCooldownMs);
  const policies = new Policies(db);
  const nodes = new Nodes(db, events, ipam, tokens, policies, () => keys.current().publicKey);
  return {
    config,
    db,
    keys,
    events,
    tokens,
    ipam,
    policies,
    nodes,
    desired: new Desired(db, events),
    records: new Records(db),
    reports: new Reports(db),
    executions: new Executions(db, events),
    artifacts: new Artifacts(db, `${config.dataDir}/artifacts`),
    faults: new Faults(config.faults),
    adminToken: adminToken(config.adminTokenFile),
  };
}

function buildRouter(cp: Cp): Router {
  const r = new Router();
  registerRoutes(cp, r);
  nodeRoutes(cp, r);
  secretRoutes(cp, r);
  executionRoutes(cp, r);
  telemetryRoutes(cp, r);
  artifactRoutes(cp, r);
  eventRoutes(cp, r);
  adminRoutes(cp, r);
  return r;
}

/** Starts the CP; resolves once it listens. */
export async function startCp(config: CpConfig): Promise<RunningCp> {
  const cp = buildCp(config);
  const router = buildRouter(cp);
  const tls = config.tls ? await ensureTls(config.certDir, config.host) : undefined;

  const handle = async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    try {
      if (url.pathname.startsWith("/v1/")) {
        const injected = await cp.faults.intercept(req.method, url.pathname);
        if (injected) return injected;
        const agentVersion = req.headers.get("x-plexd-version");
        if (config.minVersion && agentVersion && !exemptFrom426(url.pathname) && belowMinVersion(agentVersion, config.minVersion)) {
          return json(
            { error: "upgrade_required", min_version: config.minVersion, message: `agent ${agentVersion} is older than ${config.minVersion}` },
            426,
          );
        }
      }
      const { handler, params } = router.match(req, url);
      return await handler({ req, url, params });
    } catch (e) {
      if (e instanceof HttpError) return errorResponse(e);
      console.error(JSON.stringify({ level: "error", msg: "request failed", path: url.pathname, error: String(e) }));
      return json({ error: "internal_error", message: "internal error" }, 500);
    }
  };

  const server = Bun.serve({
    hostname: config.host,
    port: config.port,
    idleTimeout: 0, // SSE streams live for hours; keep-alive comments keep proxies happy
    maxRequestBodySize: ARTIFACT_LIMIT + 1,
    ...(tls ? { tls: { cert: Bun.file(tls.certFile), key: Bun.file(tls.keyFile) } } : {}),
    fetch: handle,
  });

  const sweepEvery = Math.max(50, Math.min(config.heartbeatIntervalMs / 2, 5000));
  const sweeper = setInterval(() => {
    try {
      cp.nodes.sweep(config.heartbeatIntervalMs);
    } catch (e) {
      console.error(JSON.stringify({ level: "error", msg: "liveness sweep failed", error: String(e) }));
    }
  }, sweepEvery);

  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  return {
    cp,
    url: `${tls ? "https" : "http"}://${host}:${server.port}`,
    caFile: tls?.caFile ?? null,
    async stop() {
      clearInterval(sweeper);
      for (const n of cp.nodes.active()) cp.events.closeStreams(n.id);
      await server.stop(true);
      cp.db.close();
    },
  };
}
