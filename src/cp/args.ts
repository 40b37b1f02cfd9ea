/** Minimal argv parser: positionals, `--flag`, `--key value`, `--key=value`, repeatable keys. */
import { UsageError } from "./errors.ts";

export interface Parsed {
  positionals: string[];
  flags: Map<string, string[]>;
}

/** Options that never take a value. */
const BOOLEAN = new Set(["tls", "no-tls", "faults", "unsigned", "help", "insecure"]);

export function parseArgs(argv: string[]): Parsed {
  const positionals: string[] = [];
  const flags = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith("--")) {
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    let value: string;
    if (eq > 0) value = a.slice(eq + 1);
    else if (BOOLEAN.has(name)) value = "true";
    else {
      const next = argv[i + 1];
      if (next === undefined) throw new UsageError(`--${name} needs a value`);
      value = next;
      i++;
    }
    flags.set(name, [...(flags.get(name) ?? []), value]);
  }
  return { positionals, flags };
}

/** Last value of a flag. */
export const flag = (p: Parsed, name: string): string | undefined => p.flags.get(name)?.at(-1);
/** All values of a repeatable flag. */
export const flagAll = (p: Parsed, name: string): string[] => p.flags.get(name) ?? [];
/** Boolean flag. */
export const has = (p: Parsed, name: string): boolean => p.flags.has(name);

/** Splits `HOST:PORT` / `[v6]:PORT`. */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new UsageError(`--listen: expected HOST:PORT, got ${JSON.stringify(text)}`);
  return { host: (m[1] ?? m[2]) as string, port };
}
