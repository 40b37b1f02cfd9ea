/**
 * `plexd <command> [flags]`: finds the longest matching command path, parses its flags plus the
 * global ones, and maps errors to the exit codes of config.md §4.4.
 */
import { formatFlags, parseArgs, UsageError } from "./args.ts";
import { GLOBAL_FLAGS, type Command } from "./command.ts";
import { EXIT } from "./exit.ts";
import { jsonError, processIo, type Io } from "./output.ts";
import { COMMANDS } from "./commands/index.ts";
import { VERSION } from "../version.ts";

function findCommand(words: readonly string[]): { cmd?: Command; rest: string[] } {
  let best: Command | undefined;
  for (const c of COMMANDS) {
    if (c.path.length <= words.length && c.path.every((w, i) => words[i] === w)) {
      if (!best || c.path.length > best.path.length) best = c;
    }
  }
  return { cmd: best, rest: words.slice(best?.path.length ?? 0) };
}

export function topHelp(): string {
  const visible = COMMANDS.filter((c) => !c.hidden);
  const w = Math.max(...visible.map((c) => c.path.join(" ").length));
  return [
    `plexd ${VERSION} — node agent of a WireGuard mesh`,
    "",
    "Usage: plexd <command> [flags]",
    "",
    "Commands:",
    ...visible.map((c) => `  ${c.path.join(" ").padEnd(w)}  ${c.summary}`),
    "",
    "Global flags:",
    formatFlags(GLOBAL_FLAGS),
    "",
    "Run `plexd <command> --help` for a command's flags.",
  ].join("\n");
}

function commandHelp(cmd: Command): string {
  const parts = [`Usage: plexd ${cmd.path.join(" ")}${cmd.usage ? " " + cmd.usage : " [flags]"}`, "", cmd.summary];
  if (cmd.flags && Object.keys(cmd.flags).length) parts.push("", "Flags:", formatFlags(cmd.flags));
  parts.push("", "Global flags:", formatFlags(GLOBAL_FLAGS));
  return parts.join("\n");
}

export async function runCli(argv: readonly string[], io: Io = processIo, env = process.env): Promise<number> {
  // Command words are the leading non-flag arguments.
  const words: string[] = [];
  for (const a of argv) {
    if (a.startsWith("-")) break;
    words.push(a);
  }
  if (argv[0] === "--version") return runCli(["version", ...argv.slice(1)], io, env);
  const { cmd } = findCommand(words);
  const wantsJson = argv.includes("--json");
  if (!cmd) {
    if (words.length === 0) {
      io.out(topHelp());
      return argv.includes("--help") || argv.includes("-h") ? EXIT.ok : EXIT.usage;
    }
    const msg = `unknown command "${words.join(" ")}" (see plexd --help)`;
    if (wantsJson) io.out(jsonError("usage", msg));
    else io.err(`plexd: ${msg}`);
    return EXIT.usage;
  }
  try {
    const parsed = parseArgs(argv.slice(cmd.path.length), { ...GLOBAL_FLAGS, ...cmd.flags });
    if (parsed.flags.help) {
      io.out(commandHelp(cmd));
      return EXIT.ok;
    }
    return await cmd.run({ parsed, io, env, json: parsed.flags.json === true });
  } catch (err) {
    if (err instanceof UsageError) {
      if (wantsJson) io.out(jsonError("usage", err.message));
      else io.err(`plexd ${cmd.path.join(" ")}: ${err.message}`);
      return EXIT.usage;
    }
    const e = err as Error & { code?: string; exitCode?: number };
    if (wantsJson) io.out(jsonError(e.code ?? "internal", e.message));
    else io.err(`plexd: ${e.message}`);
    return e.exitCode ?? EXIT.failure;
  }
}
