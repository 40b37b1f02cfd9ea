/**
 * `plexd cleanup [--all]` (hidden; the unit's ExecStopPost): removes what a stopped agent leaves
 * behind — stale socket files and the native extraction dir. `--all` also removes the mesh
 * interface and the `inet plexd` table (a plain stop keeps both on purpose, lifecycle.md §14.1).
 * A socket something still listens on is left alone.
 */
import { rmSync, unlinkSync } from "node:fs";
import type { Command } from "../command.ts";
import { EXIT } from "../exit.ts";
import { jsonData } from "../output.ts";
import { createLogger } from "../../log/index.ts";
import { probeSocket } from "../../agent/control-socket.ts";
import { AgentFirewall } from "../../agent/firewall.ts";
import { nftTarget } from "../../policy/index.ts";
import { defaultNativeDir, loadEmbeddedAddon } from "../../kernel/embedded.ts";
import { isNativeError } from "../../kernel/errors.ts";
import { loadAgentConfig } from "./agent-common.ts";

export const cleanupCommand: Command = {
  path: ["cleanup"],
  summary: "remove stale sockets and the native extraction dir; --all also the interface and nftables table",
  hidden: true,
  flags: { all: { kind: "bool", description: "also delete the mesh interface and table inet plexd" } },
  run: async (ctx) => {
    // A CommandFailure (config error → 78) is printed by the CLI frame like printError does.
    const loaded = await loadAgentConfig(ctx);
    const c = loaded.config;
    const log = createLogger({ level: "warn", format: "text", env: ctx.env });
    const removed: string[] = [];
    for (const sock of [c.actions.socket, c.node_api.socket]) {
      if (await probeSocket(sock)) continue; // a live daemon owns it
      try {
        unlinkSync(sock);
        removed.push(sock);
      } catch {
        /* absent */
      }
    }
    if (ctx.parsed.flags.all) {
      const addon = loadEmbeddedAddon();
      try {
        await addon.linkDel(c.mesh.interface);
        removed.push(`link ${c.mesh.interface}`);
      } catch (err) {
        if (!(isNativeError(err) && err.code === "ENODEV")) throw err;
      }
      await new AgentFirewall({ target: nftTarget(addon), config: () => c, log, firewalld: null }).remove();
      removed.push("table inet plexd");
    }
    // Last: the addon may have been extracted above.
    rmSync(defaultNativeDir(ctx.env), { recursive: true, force: true });
    removed.push(defaultNativeDir(ctx.env));
    if (ctx.json) ctx.io.out(jsonData({ removed }));
    else for (const r of removed) ctx.io.out(`removed ${r}`);
    return EXIT.ok;
  },
};
