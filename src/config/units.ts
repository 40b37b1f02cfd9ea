/**
 * Value syntaxes of config.md §1: Go durations, byte sizes, CPU counts and env booleans.
 *
 * These return `undefined` instead of throwing because bad input is an expected outcome here
 * and the caller turns it into a located config issue. Durations use the one Go-duration
 * parser in `util/duration.ts`.
 */
import { parseDurationMs } from "../util/duration.ts";

/**
 * Parses a Go duration string (`500ms`, `1h30m`, `1.5s`, `0`) into milliseconds (may be
 * fractional below 1 ms). Returns `undefined` for anything Go's `time.ParseDuration` rejects,
 * for negative values (no config duration may be negative) and for units Go lacks (`d`, `w`).
 */
export function parseDuration(text: string): number | undefined {
  if (text.startsWith("-")) return undefined;
  try {
    return parseDurationMs(text);
  } catch {
    return undefined;
  }
}

/**
 * Formats milliseconds as a compact Go duration string that `parseDuration` reads back to the
 * same value: `0s`, `500ms`, `1.5s`, `5m`, `1h30m`, `168h`.
 */
export function formatDuration(ms: number): string {
  let ns = Math.round(ms * 1e6);
  if (ns === 0) return "0s";
  const neg = ns < 0;
  if (neg) ns = -ns;
  const h = Math.floor(ns / 3600e9);
  ns -= h * 3600e9;
  const m = Math.floor(ns / 60e9);
  ns -= m * 60e9;
  let out = (h ? `${h}h` : "") + (m ? `${m}m` : "");
  if (ns > 0) {
    if (out !== "" || ns >= 1e9) out += `${trimDecimal(ns / 1e9)}s`;
    else if (ns % 1e6 === 0) out += `${ns / 1e6}ms`;
    else if (ns % 1e3 === 0) out += `${ns / 1e3}us`;
    else out += `${ns}ns`;
  }
  return (neg ? "-" : "") + out;
}

function trimDecimal(n: number): string {
  // Up to nanosecond precision, without float noise or trailing zeros.
  return n.toFixed(9).replace(/\.?0+$/, "");
}

const SIZE_UNITS: Record<string, number> = { K: 1024, M: 1024 ** 2, G: 1024 ** 3, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 };
const SIZE = /^(\d+(?:\.\d+)?)(K|M|G|Ki|Mi|Gi)?$/;

/**
 * Parses a size: a non-negative integer number of bytes, or a number plus `K`/`M`/`G`/`Ki`/
 * `Mi`/`Gi` (all binary, ×1024). The result must be a whole number of bytes.
 */
export function parseSize(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== "string") return undefined;
  const m = SIZE.exec(value.trim());
  if (!m) return undefined;
  const bytes = Number(m[1]) * (m[2] ? SIZE_UNITS[m[2]]! : 1);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** Formats bytes with the largest binary unit that divides it exactly (`512Mi`, `16Ki`, `100`). */
export function formatSize(bytes: number): string | number {
  for (const [unit, mult] of [["Gi", 1024 ** 3], ["Mi", 1024 ** 2], ["Ki", 1024]] as const) {
    if (bytes >= mult && bytes % mult === 0) return `${bytes / mult}${unit}`;
  }
  return bytes;
}

const CPU = /^(?:\d+(?:\.\d*)?|\.\d+)$/;

/** Parses a CPU count (`1`, `0.5`, `"0.5"`); must be finite and > 0. */
export function parseCpu(value: unknown): number | undefined {
  let n: number;
  if (typeof value === "number") n = value;
  else if (typeof value === "string" && CPU.test(value.trim())) n = Number(value.trim());
  else return undefined;
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

/** Parses an environment boolean: `true/false/1/0/yes/no`, case-insensitive. */
export function parseEnvBool(text: string): boolean | undefined {
  switch (text.trim().toLowerCase()) {
    case "true":
    case "1":
    case "yes":
      return true;
    case "false":
    case "0":
    case "no":
      return false;
    default:
      return undefined;
  }
}
