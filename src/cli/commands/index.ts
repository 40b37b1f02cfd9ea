import type { Command } from "../command.ts";
import { versionCommand } from "./version.ts";

/** Every command the binary offers; only commands that work are listed. */
export const COMMANDS: Command[] = [versionCommand];
