/** Go duration strings ("300ms", "1m30s", "72h15m0s") → milliseconds, for CLI flags and admin bodies. */
import { parseDurationMs } from "../util/duration.ts";

/** Parses a Go duration into milliseconds; returns undefined when invalid. Bare "0" is allowed. */
export function parseDuration(text: string): number | undefined {
  try {
    return parseDurationMs(text.trim());
  } catch {
    return undefined;
  }
}

/** Like parseDuration but throws a descriptive error naming the option. */
export function requireDuration(text: string, what: string): number {
  const ms = parseDuration(text);
  if (ms === undefined || ms < 0) throw new Error(`${what}: invalid duration ${JSON.stringify(text)}`);
  return ms;
}
