/** `plexd-cp serve`: flag handling, ready line, signal handling. */
import { dirname, join, resolve } from "node:path";
import type { CpConfig } from "./context.ts";
import { flag, has, parseListen, type Parsed } from "./args.ts";
import { requireDuration } from "./duration.ts";
import { UsageError } from "./errors.ts";
import { startCp } from "./server.ts";

/** Turns parsed flags into a configuration (defaults documented in README.md). */
export function serveConfig(p: Parsed): CpConfig {
  const db = flag(p, "db");
  if (!db) throw new UsageError("serve: --db PATH is required");
  const dbPath = resolve(db);
  const dataDir = dirname(dbPath);
  const { host, port } = parseListen(flag(p, "listen") ?? "127.0.0.1:8443");
  if (has(p, "tls") && has(p, "no-tls")) throw new UsageError("--tls and --no-tls exclude each other");
  return {
    host,
    port,
    dbPath,
    dataDir,
    tls: !has(p, "no-tls"),
    certDir: resolve(flag(p, "cert-dir") ?? join(dataDir, "tls")),
    adminTokenFile: resolve(flag(p, "admin-token-file") ?? join(dataDir, "admin-token")),
    faults: has(p, "faults"),
    heartbeatIntervalMs: requireDuration(flag(p, "heartbeat-interval") ?? "30s", "--heartbeat-interval"),
    keepaliveMs: Math.max(10, requireDuration(flag(p, "sse-keepalive") ?? "15s", "--sse-keepalive")),
    ipCooldownMs: requireDuration(flag(p, "ip-cooldown") ?? "24h", "--ip-cooldown"),
    defaultTransitionMs: requireDuration(flag(p, "signing-transition") ?? "24h", "--signing-transition"),
    minVersion: flag(p, "min-version"),
  };
}

/** Runs the server until SIGTERM/SIGINT. */
export async function serve(p: Parsed): Promise<void> {
  const config = serveConfig(p);
  // The DB holds NSKs and signing seeds: every file the CP creates is private to its user.
  process.umask(0o077);
  const running = await startCp(config);
  process.stdout.write(
    `${JSON.stringify({ ready: true, url: running.url, admin_token: running.cp.adminToken, ca_file: running.caFile })}\n`,
  );
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await running.stop();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
