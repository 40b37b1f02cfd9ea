/**
 * `plexd join [--token-file F] [--token-stdin]` (config.md §4.2): hands a bootstrap token to
 * the running daemon, or registers directly when no daemon runs. The token comes from the file,
 * stdin, a no-echo prompt on a TTY, or the configured sources — never from the command line.
 */
import { unlink } from "node:fs/promises";
import type { Command } from "../command.ts";
import { EXIT } from "../exit.ts";
import { callDaemon } from "../../agent/control-socket-client.ts";
import { tokenSources } from "../../agent/registration.ts";
import { CpApi } from "../../controlplane/api.ts";
import { HttpClient } from "../../controlplane/http.ts";
import { loadIdentity, register, resolveToken, RegistrationError, TokenError, type ResolvedToken } from "../../identity/index.ts";
import { createLogger } from "../../log/index.ts";
import { writePeersCache } from "../../mesh/cache.ts";
import { ensurePrivateDir } from "../../store/index.ts";
import { sha256FileSync } from "../../util/checksum.ts";
import { buildCapabilities } from "../../agent/capabilities.ts";
import { scanHooks } from "../../hooks/index.ts";
import { loadAgentConfig, printData, printError, socketPath } from "./agent-common.ts";
import { promptHidden, readStdin, stdinIsTty } from "./prompt.ts";

async function explicitToken(ctx: Parameters<Command["run"]>[0]): Promise<ResolvedToken | undefined> {
  const f = ctx.parsed.flags;
  if (typeof f["token-file"] === "string") {
    return resolveToken({ explicitFile: f["token-file"] });
  }
  if (f["token-stdin"] === true) return resolveToken({ explicitValue: await readStdin() });
  return undefined;
}

export const joinCommand: Command = {
  path: ["join"],
  summary: "register this node with a bootstrap token (through the daemon when it runs)",
  flags: {
    "token-file": { kind: "string", value: "F", description: "read the bootstrap token from file F (deleted after success)" },
    "token-stdin": { kind: "bool", description: "read the bootstrap token from stdin" },
  },
  run: async (ctx) => {
    // A CommandFailure (config error → 78) is printed by the CLI frame like printError does.
    const loaded = await loadAgentConfig(ctx);
    const config = loaded.config;
    let token: ResolvedToken | undefined;
    try {
      token = await explicitToken(ctx);
      if (token === undefined && stdinIsTty() && !ctx.json) {
        const v = await promptHidden("Bootstrap token: ");
        token = await resolveToken({ explicitValue: v });
      }
      token ??= await resolveToken(tokenSources(config, ctx.env, loaded.bootstrapTokenFile ? { file: loaded.bootstrapTokenFile } : {}));
    } catch (err) {
      if (err instanceof TokenError) return printError(ctx, err.code, err.message, EXIT.failure);
      throw err;
    }
    if (token === undefined) return printError(ctx, "no_token", "no bootstrap token: use --token-file, --token-stdin or run on a terminal", EXIT.failure);

    const sock = await socketPath(ctx);
    const a = await callDaemon(sock, "POST", "/v1/admin/join", { token: token.token }, 6 * 60_000);
    if (a.kind !== "down") {
      if (a.kind === "error") return printError(ctx, a.code, a.message, a.status === 503 ? EXIT.unavailable : EXIT.failure);
      await deleteTokenFile(token);
      const r = a.body as { node_id: string; mesh_ip: string };
      return printData(ctx, r, () => `node_id: ${r.node_id}\nmesh_ip: ${r.mesh_ip}`);
    }

    // No daemon: register directly.
    const log = createLogger({ level: "warn", format: "text", env: ctx.env });
    ensurePrivateDir(config.data_dir);
    const existing = loadIdentity(config.data_dir, log);
    if (existing.registered) return printError(ctx, "already_registered", `already registered as ${existing.identity.nodeId}`, EXIT.failure);
    let checksum = "";
    if (config.integrity.enabled) {
      try {
        checksum = sha256FileSync(config.integrity.binary_path || "/proc/self/exe");
      } catch {
        /* informational */
      }
    }
    // Same payload as the daemon's registration (lifecycle.md §2 steps 6–7): the daemon records
    // the baselines at its next start; join only announces.
    const hooks = await scanHooks(config.hooks, { log });
    const capabilities = buildCapabilities({ binaryChecksum: checksum, hooks: hooks.valid, profile: config.compat.profile });
    const api = new CpApi({
      http: new HttpClient({ baseUrl: config.api.url, caFile: config.api.ca_file || undefined, tlsInsecureSkipVerify: config.api.tls_insecure_skip_verify, requestTimeoutMs: config.api.request_timeout }),
      logger: log,
    });
    try {
      const reg = await register({
        dataDir: config.data_dir,
        api,
        token,
        capabilities,
        hostname: config.hostname,
        metadata: config.metadata,
        natFallback: config.nat_traversal.fallback,
        maxRetryDurationMs: config.registration.max_retry_duration,
        logger: log,
      });
      writePeersCache(config.data_dir, reg.peers);
      const r = { node_id: reg.identity.nodeId, mesh_ip: reg.identity.meshIp };
      return printData(ctx, r, () => `node_id: ${r.node_id}\nmesh_ip: ${r.mesh_ip}`);
    } catch (err) {
      if (err instanceof RegistrationError) return printError(ctx, err.code, err.message, err.exitCode);
      throw err;
    }
  },
};

async function deleteTokenFile(t: ResolvedToken): Promise<void> {
  if ((t.source === "explicit_file" || t.source === "file") && t.path) await unlink(t.path).catch(() => undefined);
}
