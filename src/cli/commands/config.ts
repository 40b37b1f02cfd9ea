import type { Command, CommandContext } from "../command.ts";
import { configDump, configValidate, type CommandResult, type ConfigCommandOptions } from "../../config/index.ts";

/** Global flags that map onto config keys (config.md §4.1). */
export function configFlags(ctx: CommandContext): ConfigCommandOptions {
  const f = ctx.parsed.flags;
  const str = (k: string) => (typeof f[k] === "string" ? (f[k] as string) : undefined);
  return {
    ...(str("config") !== undefined && { config: str("config") }),
    ...(str("api") !== undefined && { api: str("api") }),
    ...(str("log-level") !== undefined && { logLevel: str("log-level") }),
    ...(str("mode") !== undefined && { mode: str("mode") }),
    json: ctx.json,
  };
}

function print(ctx: CommandContext, r: CommandResult): number {
  if (r.stdout) ctx.io.out(r.stdout);
  if (r.stderr) ctx.io.err(r.stderr);
  return r.exitCode;
}

export const configValidateCommand: Command = {
  path: ["config", "validate"],
  summary: "check the configuration; exit 78 with path, line and column on errors",
  run: async (ctx) => print(ctx, await configValidate(configFlags(ctx), { env: ctx.env })),
};

export const configDumpCommand: Command = {
  path: ["config", "dump"],
  summary: "print the effective configuration (secrets redacted)",
  run: async (ctx) => print(ctx, await configDump(configFlags(ctx), { env: ctx.env })),
};
