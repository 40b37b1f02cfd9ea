import type { FlagSpecs, Parsed } from "./args.ts";
import type { Io } from "./output.ts";

/** Global flags of config.md §4.1, accepted before or after the command. */
export const GLOBAL_FLAGS: FlagSpecs = {
  config: { kind: "string", value: "PATH", description: "config file (default /etc/plexd/config.yaml)" },
  api: { kind: "string", value: "URL", description: "control plane URL (overrides config/env)" },
  "log-level": { kind: "string", value: "LEVEL", description: "debug, info, warn, error" },
  "log-format": { kind: "string", value: "FORMAT", description: "auto, text, json" },
  mode: { kind: "string", value: "MODE", description: "node or bridge" },
  json: { kind: "bool", description: "machine output: one JSON document" },
  socket: { kind: "string", value: "PATH", description: "socket the command talks to" },
  "no-color": { kind: "bool", description: "no ANSI colours" },
  help: { kind: "bool", short: "h", description: "show help" },
};

export interface CommandContext {
  parsed: Parsed;
  io: Io;
  env: Record<string, string | undefined>;
  json: boolean;
}

export interface Command {
  /** Words after `plexd`, e.g. ["config", "validate"]. */
  path: string[];
  summary: string;
  usage?: string;
  flags?: FlagSpecs;
  hidden?: boolean;
  run(ctx: CommandContext): Promise<number>;
}
