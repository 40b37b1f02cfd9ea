/** `plexd up`: the daemon (config.md §4.2). Logs only; exit 0 clean stop, 1 fatal, 78 config. */
import type { Command } from "../command.ts";
import { EXIT } from "../exit.ts";
import { Supervisor } from "../../agent/supervisor.ts";
import { createKernel } from "../../kernel/index.ts";
import { loadEmbeddedAddon } from "../../kernel/embedded.ts";
import { createLogger } from "../../log/index.ts";
import { VERSION } from "../../version.ts";
import { CommandFailure, loadAgentConfig } from "./agent-common.ts";

export const upCommand: Command = {
  path: ["up"],
  summary: "run the agent daemon (register, build tunnels, stay in sync)",
  run: async (ctx) => {
    let loaded;
    try {
      loaded = await loadAgentConfig(ctx);
    } catch (err) {
      if (err instanceof CommandFailure) {
        ctx.io.err(err.message);
        return err.exitCode;
      }
      throw err;
    }
    const config = loaded.config;
    const fmt = typeof ctx.parsed.flags["log-format"] === "string" ? (ctx.parsed.flags["log-format"] as "auto" | "text" | "json") : config.log_format;
    const log = createLogger({ level: config.log_level, format: fmt, env: ctx.env });
    for (const w of loaded.warnings) log.warn(w.message, { code: w.code });
    if (config.api.tls_insecure_skip_verify) log.warn("api.tls_insecure_skip_verify is set: the control plane certificate is NOT verified");
    log.info("plexd starting", { version: VERSION, config: loaded.path, data_dir: config.data_dir, interface: config.mesh.interface });
    const socketFlag = ctx.parsed.flags.socket;
    const sup = new Supervisor({
      config,
      env: ctx.env,
      log,
      socketPath: typeof socketFlag === "string" && socketFlag !== "" ? socketFlag : config.actions.socket,
      ...(loaded.bootstrapTokenFile ? { explicitTokenFile: loaded.bootstrapTokenFile } : {}),
      loadAddon: () => loadEmbeddedAddon(),
      reloadConfig: async () => (await loadAgentConfig(ctx)).config,
      createKernel: (addon, onRestart) =>
        createKernel({
          backend: config.mesh.backend,
          addon,
          wireguardGoPath: config.mesh.wireguard_go_path,
          onRestart,
          log: log.with({ subsystem: "kernel" }),
          // wireguard-go's own lines only when debugging (decided at spawn time).
          wireguardGoOutput: config.log_level === "debug" ? "log" : "discard",
        }),
    });
    const onSignal = (sig: string) => {
      log.info("signal received; stopping", { signal: sig });
      sup.requestStop();
    };
    const term = () => onSignal("SIGTERM");
    const int = () => onSignal("SIGINT");
    // SIGHUP = service.reload_config (lifecycle.md §14.1); failures are logged by the supervisor.
    const hup = () => {
      log.info("signal received; reloading configuration", { signal: "SIGHUP" });
      void sup.reload().catch(() => undefined);
    };
    process.on("SIGTERM", term);
    process.on("SIGINT", int);
    process.on("SIGHUP", hup);
    try {
      const code = await sup.run();
      // A stopped daemon exits even if a stray handle (e.g. a pooled keep-alive connection)
      // would keep the event loop alive.
      process.exit(code === 0 ? EXIT.ok : code);
    } finally {
      process.off("SIGTERM", term);
      process.off("SIGINT", int);
      process.off("SIGHUP", hup);
    }
  },
};
