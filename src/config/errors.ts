/** Config errors and their stable text form (config.md §1). */

/** Exit code for any configuration error (`EX_CONFIG`, paired with `RestartPreventExitStatus=78`). */
export const EXIT_CONFIG = 78;

/** One problem found while loading the configuration. */
export interface ConfigIssue {
  /** Dotted key path (`mesh.listen_port`, `hooks.definitions[0].name`), or the file path for file-level problems. */
  path: string;
  /** Human-readable problem; never contains secret values. */
  problem: string;
  /** 1-based position in the config file, when the offending key came from the file. */
  line?: number;
  col?: number;
  /** Where a value came from when not from the file, e.g. `env PLEXD_HEARTBEAT_INTERVAL`, `flag --api`. */
  source?: string;
}

/** Formats one issue as `config: <path>: <problem> (line L, col C)`. */
export function formatIssue(i: ConfigIssue): string {
  const where = i.line !== undefined ? ` (line ${i.line}, col ${i.col ?? 1})` : i.source ? ` (${i.source})` : "";
  return `config: ${i.path}: ${i.problem}${where}`;
}

/** The configuration is invalid; `issues` lists every problem found, in file order where known. */
export class ConfigError extends Error {
  override name = "ConfigError";
  readonly code = "config_invalid";
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[], options?: { cause?: unknown }) {
    super(issues.length === 1 ? formatIssue(issues[0]!) : `${issues.length} configuration errors`, options);
    this.issues = issues;
  }

  /** One `config: <path>: <problem> (line L, col C)` line per issue, for stderr. */
  format(): string {
    return this.issues.map(formatIssue).join("\n");
  }
}

/** A non-fatal finding the caller should log once at start. */
export interface ConfigWarning {
  /** Stable code, e.g. `unknown_env`, `tls_insecure`, `bridge_ignored`. */
  code: string;
  message: string;
}
