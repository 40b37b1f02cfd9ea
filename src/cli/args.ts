/**
 * A small, strict argument parser: `--flag`, `--flag value`, `--flag=value`, repeated flags,
 * `--` ends flags. Unknown flags are usage errors (exit 2), never ignored.
 */
export type FlagKind = "bool" | "string" | "list";

export interface FlagSpec {
  kind: FlagKind;
  description: string;
  short?: string;
  /** Placeholder for help, e.g. PATH. */
  value?: string;
}

export type FlagSpecs = Record<string, FlagSpec>;

export interface Parsed {
  flags: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export class UsageError extends Error {
  override name = "UsageError";
  readonly code = "usage";
}

export function parseArgs(argv: readonly string[], specs: FlagSpecs): Parsed {
  const flags: Parsed["flags"] = {};
  const positionals: string[] = [];
  const byShort = new Map(Object.entries(specs).filter(([, s]) => s.short).map(([n, s]) => [s.short!, n]));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    let name: string | undefined;
    let inline: string | undefined;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
      inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
    } else if (/^-[A-Za-z]$/.test(arg)) {
      name = byShort.get(arg.slice(1));
      if (!name) throw new UsageError(`unknown flag ${arg}`);
    } else {
      positionals.push(arg);
      continue;
    }
    const spec = specs[name];
    if (!spec) throw new UsageError(`unknown flag --${name}`);
    if (spec.kind === "bool") {
      if (inline !== undefined && !/^(true|false)$/.test(inline)) throw new UsageError(`--${name} takes no value`);
      flags[name] = inline === undefined ? true : inline === "true";
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    if (spec.kind === "list") flags[name] = [...((flags[name] as string[] | undefined) ?? []), value];
    else flags[name] = value;
  }
  return { flags, positionals };
}

export function formatFlags(specs: FlagSpecs): string {
  const rows = Object.entries(specs).map(([n, s]) => {
    const left = `${s.short ? `-${s.short}, ` : "    "}--${n}${s.kind === "bool" ? "" : ` ${s.value ?? "VALUE"}`}`;
    return [left, s.description] as const;
  });
  const w = Math.max(0, ...rows.map(([l]) => l.length));
  return rows.map(([l, d]) => `  ${l.padEnd(w)}  ${d}`).join("\n");
}
