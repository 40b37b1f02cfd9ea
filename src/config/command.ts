/**
 * `plexd config validate [--json]` and `plexd config dump [--json]` as pure-ish functions: they
 * take the parsed global options and return what to print and the exit code; the CLI frame
 * does the printing.
 */
import { displayConfig, dumpConfig } from "./dump.ts";
import type { ConfigFlags, Env } from "./env.ts";
import { ConfigError, EXIT_CONFIG } from "./errors.ts";
import { loadConfig, type LoadedConfig } from "./load.ts";

/** Global options relevant to the config commands. */
export interface ConfigCommandOptions extends ConfigFlags {
  json?: boolean;
}

/** Injection points for tests. */
export interface ConfigCommandDeps {
  env?: Env;
  readFile?: (path: string) => Promise<string>;
}

/** What the CLI frame prints and exits with. */
export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

function json(doc: unknown): string {
  return JSON.stringify({ schemaVersion: 1, ...(doc as object) }, null, 2) + "\n";
}

function failure(e: unknown, asJson: boolean): CommandResult {
  if (!(e instanceof ConfigError)) throw e;
  if (asJson) {
    const doc = { error: { code: e.code, message: e.message, issues: e.issues.map((i) => ({ ...i })) } };
    return { exitCode: EXIT_CONFIG, stdout: json(doc), stderr: "" };
  }
  return { exitCode: EXIT_CONFIG, stdout: "", stderr: e.format() + "\n" };
}

function warningLines(loaded: LoadedConfig): string {
  return loaded.warnings.map((w) => `config: warning: ${w.message}\n`).join("");
}

async function load(opts: ConfigCommandOptions, deps: ConfigCommandDeps): Promise<LoadedConfig> {
  const { json: _json, ...flags } = opts;
  return loadConfig({ flags, ...(deps.env ? { env: deps.env } : {}), ...(deps.readFile ? { readFile: deps.readFile } : {}) });
}

/**
 * `plexd config validate`: exit 0 and `config: ok (<path>)`, or exit 78 with one
 * `config: <path>: <problem> (line L, col C)` line per problem on stderr. With `--json`, one
 * document: `{"schemaVersion":1,"data":{"valid":true,"path","file_found","warnings"}}` or
 * `{"schemaVersion":1,"error":{"code":"config_invalid","message","issues":[…]}}`.
 */
export async function configValidate(opts: ConfigCommandOptions, deps: ConfigCommandDeps = {}): Promise<CommandResult> {
  let loaded: LoadedConfig;
  try {
    loaded = await load(opts, deps);
  } catch (e) {
    return failure(e, opts.json === true);
  }
  if (opts.json) {
    const data = { valid: true, path: loaded.path, file_found: loaded.fileFound, warnings: loaded.warnings };
    return { exitCode: 0, stdout: json({ data }), stderr: "" };
  }
  const where = loaded.fileFound ? loaded.path : `${loaded.path} not found; env and flags only`;
  return { exitCode: 0, stdout: `config: ok (${where})\n`, stderr: warningLines(loaded) };
}

/**
 * `plexd config dump`: the effective config as YAML (secrets redacted, durations as Go
 * strings). With `--json`: `{"schemaVersion":1,"data":{"config":{…},"sources":{"<key>":"default"|"file"|"env"|"flag"}}}`,
 * the same shape as the `config.dump` action.
 */
export async function configDump(opts: ConfigCommandOptions, deps: ConfigCommandDeps = {}): Promise<CommandResult> {
  let loaded: LoadedConfig;
  try {
    loaded = await load(opts, deps);
  } catch (e) {
    return failure(e, opts.json === true);
  }
  if (opts.json) {
    return { exitCode: 0, stdout: json({ data: configDumpDocument(loaded) }), stderr: "" };
  }
  return { exitCode: 0, stdout: dumpConfig(loaded.config), stderr: warningLines(loaded) };
}

/** The `config.dump` document (actions.md §7): redacted config plus the source of every key. */
export function configDumpDocument(loaded: LoadedConfig): { config: unknown; sources: Record<string, string> } {
  return { config: displayConfig(loaded.config), sources: loaded.sources };
}
