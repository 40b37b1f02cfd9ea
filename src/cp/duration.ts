/** Go duration strings ("300ms", "1m30s", "72h15m0s") ↔ milliseconds. */

const UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  "μs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Parses a Go duration into milliseconds; returns undefined when invalid. Bare "0" is allowed. */
export function parseDuration(text: string): number | undefined {
  let s = text.trim();
  if (s === "0") return 0;
  let sign = 1;
  if (s.startsWith("-") || s.startsWith("+")) {
    if (s[0] === "-") sign = -1;
    s = s.slice(1);
  }
  if (s === "") return undefined;
  const re = /^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/;
  let total = 0;
  while (s.length > 0) {
    const m = re.exec(s);
    if (!m) return undefined;
    total += Number(m[1]) * (UNITS[m[2] as string] as number);
    s = s.slice(m[0].length);
  }
  return sign * total;
}

/** Like parseDuration but throws a descriptive error naming the option. */
export function requireDuration(text: string, what: string): number {
  const ms = parseDuration(text);
  if (ms === undefined || ms < 0) throw new Error(`${what}: invalid duration ${JSON.stringify(text)}`);
  return ms;
}
