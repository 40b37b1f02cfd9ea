import type { Command } from "../command.ts";
import { configDumpCommand, configValidateCommand } from "./config.ts";
import { versionCommand } from "./version.ts";

/** Every command the binary offers; only commands that work are listed. */
export const COMMANDS: Command[] = [versionCommand, configValidateCommand, configDumpCommand];
