/**
 * `plexd deregister [--purge] [--force] [--yes]` (lifecycle.md §14.2): through the daemon when
 * it runs, else directly (notify the CP, tear the mesh down, keep or purge local state).
 * Exit 69 when the CP was not notified.
 */
import type { Command, CommandContext } from "../command.ts";
import { EXIT } from "../exit.ts";
import { callDaemon } from "../../agent/control-socket-client.ts";
import { deregisterNode, type DeregisterResult } from "../../agent/deregister.ts";
import { AgentFirewall } from "../../agent/firewall.ts";
import { nftTarget } from "../../policy/index.ts";
import { CpApi } from "../../controlplane/api.ts";
import { HttpClient } from "../../controlplane/http.ts";
import { loadIdentity } from "../../identity/index.ts";
import { createKernel } from "../../kernel/index.ts";
import { loadEmbeddedAddon } from "../../kernel/embedded.ts";
import { createLogger } from "../../log/index.ts";
import { MeshController } from "../../mesh/controller.ts";
import { loadAgentConfig, printData, printError, socketPath } from "./agent-common.ts";
import { confirm, stdinIsTty } from "./prompt.ts";

function report(ctx: CommandContext, r: DeregisterResult, via: string): number {
  printData(ctx, { ...r, via }, () => [...r.steps.map((s) => `- ${s}`), ...r.errors.map((e) => `! ${e}`)].join("\n"));
  return r.exitCode === 69 ? EXIT.unavailable : r.errors.length > 0 && r.tornDown ? EXIT.failure : EXIT.ok;
}

export const deregisterCommand: Command = {
  path: ["deregister"],
  summary: "remove this node from the mesh (notify the control plane, delete the interface)",
  flags: {
    purge: { kind: "bool", description: "also delete keys, caches, database and the token file" },
    force: { kind: "bool", description: "tear down even when the control plane cannot be notified (exit 69)" },
    yes: { kind: "bool", description: "do not ask for confirmation" },
  },
  run: async (ctx) => {
    const f = ctx.parsed.flags;
    const flags = { purge: f.purge === true, force: f.force === true };
    if (f.yes !== true) {
      if (!stdinIsTty()) return printError(ctx, "usage", "refusing to deregister without --yes when stdin is not a terminal", EXIT.usage);
      if (!(await confirm(`Deregister this node${flags.purge ? " and purge all local state" : ""}?`))) return printError(ctx, "aborted", "aborted", EXIT.failure);
    }
    const sock = await socketPath(ctx);
    const a = await callDaemon(sock, "POST", "/v1/admin/deregister", flags, 120_000);
    if (a.kind === "ok") return report(ctx, a.body as DeregisterResult, "daemon");
    if (a.kind === "error") return printError(ctx, a.code, a.message, EXIT.failure);

    // No daemon: run the steps here.
    // A CommandFailure (config error → 78) is printed by the CLI frame like printError does.
    const loaded = await loadAgentConfig(ctx);
    const c = loaded.config;
    const log = createLogger({ level: "warn", format: "text", env: ctx.env });
    const id = loadIdentity(c.data_dir, log);
    if (!id.registered) return printError(ctx, "not_registered", "this node is not registered", EXIT.failure);
    const identity = id.identity;
    const addon = loadEmbeddedAddon();
    const kernel = await createKernel({ backend: c.mesh.backend, addon, wireguardGoPath: c.mesh.wireguard_go_path, log });
    // Only its remove() is used: the table goes through the same nftables path as enforcement.
    const firewall = new AgentFirewall({ target: addon ? nftTarget(addon) : null, config: () => c, log, firewalld: null });
    try {
      const mesh = new MeshController({
        kernel,
        dataDir: c.data_dir,
        logger: log,
        firewall,
        settings: () => ({ ifname: c.mesh.interface, listenPort: c.mesh.listen_port, mtu: c.mesh.mtu, keepaliveSec: 0, policyDefault: c.policy.default, policyEnabled: c.policy.enabled }),
        self: () => ({ nodeId: identity.nodeId, meshIp: identity.meshIp, privateKey: identity.privateKey, publicKey: identity.publicKey }),
      });
      const api = new CpApi({
        http: new HttpClient({ baseUrl: c.api.url, auth: () => identity.nodeSecretKey, caFile: c.api.ca_file || undefined, tlsInsecureSkipVerify: c.api.tls_insecure_skip_verify }),
        logger: log,
      });
      const r = await deregisterNode(
        {
          api,
          nodeId: identity.nodeId,
          mesh,
          dataDir: c.data_dir,
          tokenFiles: [c.token.file, ...(loaded.bootstrapTokenFile ? [loaded.bootstrapTokenFile] : [])],
          log,
          ...(ctx.json ? {} : { progress: () => undefined }),
        },
        flags,
      );
      return report(ctx, r, "direct");
    } finally {
      await kernel.close();
    }
  },
};
