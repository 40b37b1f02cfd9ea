/**
 * Shared pieces of the agent-facing commands: config loading with exit 78, the control socket
 * path (`--socket` > `actions.socket`), daemon calls and output.
 */
import type { CommandContext } from "../command.ts";
import { EXIT } from "../exit.ts";
import { jsonData, jsonError } from "../output.ts";
import { ConfigError, loadConfig, type LoadedConfig } from "../../config/index.ts";
import { callDaemon, DEFAULT_CONTROL_SOCKET, type DaemonAnswer } from "../../agent/control-socket-client.ts";
import { configFlags } from "./config.ts";

/** A command failure with exit code and stable error code. */
export class CommandFailure extends Error {
  override readonly name = "CommandFailure";
  constructor(
    readonly code: string,
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/** Loads the config; a ConfigError becomes exit 78 with the spec's message format. */
export async function loadAgentConfig(ctx: CommandContext): Promise<LoadedConfig> {
  const f = configFlags(ctx);
  try {
    return await loadConfig({
      flags: { ...(f.config ? { config: f.config } : {}), ...(f.api ? { api: f.api } : {}), ...(f.logLevel ? { logLevel: f.logLevel } : {}), ...(f.mode ? { mode: f.mode } : {}) },
      env: ctx.env,
    });
  } catch (err) {
    if (err instanceof ConfigError) throw new CommandFailure("config", err.format(), EXIT.config);
    throw err;
  }
}

/** Socket path without needing a valid config: `--socket`, else config's actions.socket, else default. */
export async function socketPath(ctx: CommandContext): Promise<string> {
  const s = ctx.parsed.flags.socket;
  if (typeof s === "string" && s !== "") return s;
  try {
    return (await loadAgentConfig(ctx)).config.actions.socket;
  } catch {
    return DEFAULT_CONTROL_SOCKET;
  }
}

/** Prints data (`--json` wrapper or human text) and returns 0. */
export function printData(ctx: CommandContext, data: unknown, human: () => string): number {
  ctx.io.out(ctx.json ? jsonData(data) : human());
  return EXIT.ok;
}

/** Prints an error and returns its exit code. */
export function printError(ctx: CommandContext, code: string, message: string, exitCode: number): number {
  if (ctx.json) ctx.io.out(jsonError(code, message));
  else ctx.io.err(`plexd: ${message}`);
  return exitCode;
}

/** Calls the daemon; maps "down" to exit 3 and error answers to exit 1 (or `map`). */
export async function daemon(
  ctx: CommandContext,
  method: "GET" | "POST",
  path: string,
  body?: unknown,
  timeoutMs?: number,
): Promise<{ ok: true; body: unknown } | { ok: false; exit: number; answer: DaemonAnswer }> {
  const sock = await socketPath(ctx);
  const a = await callDaemon(sock, method, path, body, timeoutMs);
  if (a.kind === "ok") return { ok: true, body: a.body };
  if (a.kind === "down") return { ok: false, exit: printError(ctx, "daemon_down", a.message, EXIT.daemonDown), answer: a };
  return { ok: false, exit: -1, answer: a };
}

/** Relative age: `12s ago`, `3m ago`, `2h ago`, `-` when null. */
export function age(isoTime: string | null, now = Date.now()): string {
  if (isoTime === null) return "-";
  const s = Math.max(0, Math.round((now - Date.parse(isoTime)) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  if (s < 172800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

/** IEC size: `1.5 KiB`. */
export function iec(n: number): string {
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${u[i]}`;
}
