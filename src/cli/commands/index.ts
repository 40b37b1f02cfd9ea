import type { Command } from "../command.ts";
import { cleanupCommand } from "./cleanup.ts";
import { configDumpCommand, configValidateCommand } from "./config.ts";
import { deregisterCommand } from "./deregister.ts";
import { dlqListCommand, dlqPurgeCommand, dlqRetryAllCommand, dlqRetryCommand, dlqShowCommand, replayCommand } from "./dlq.ts";
import { joinCommand } from "./join.ts";
import { peersCommand, statusCommand } from "./status.ts";
import { policiesCommand } from "./policies.ts";
import { upCommand } from "./up.ts";
import { versionCommand } from "./version.ts";

/** Every command the binary offers; only commands that work are listed. */
export const COMMANDS: Command[] = [
  versionCommand,
  configValidateCommand,
  configDumpCommand,
  upCommand,
  joinCommand,
  statusCommand,
  peersCommand,
  policiesCommand,
  deregisterCommand,
  dlqListCommand,
  dlqShowCommand,
  dlqRetryCommand,
  dlqRetryAllCommand,
  dlqPurgeCommand,
  replayCommand,
  cleanupCommand,
];
