/**
 * Value syntaxes of config.md §1: Go durations, byte sizes, CPU counts and env booleans.
 *
 * Kept local to `config/` on purpose (a general Go-duration parser lives in `util/` and may be
 * merged later); these functions return `undefined` instead of throwing because bad input is an
 * expected outcome here and the caller turns it into a located config issue.
 */

const NS_PER: Record<string, number> = {
  ns: 1,
  us: 1e3,
  "\u00b5s": 1e3, // µ (micro sign), accepted by Go
  "\u03bcs": 1e3, // μ (Greek mu), accepted by Go
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

const TERM = /^(\d*)(?:\.(\d*))?([a-z\u00b5\u03bc]+)/;

/**
 * Parses a Go duration string (`500ms`, `1h30m`, `1.5s`, `0`) into milliseconds (may be
 * fractional below 1 ms). Returns `undefined` for anything Go's `time.ParseDuration` rejects,
 * for negative values (no config duration may be negative) and for units Go lacks (`d`, `w`).
 */
export function parseDuration(text: string): number | undefined {
  let s = text;
  if (s.startsWith("+")) s = s.slice(1);
  if (s === "0") return 0;
  if (s === "") return undefined;
  let ns = 0;
  while (s.length > 0) {
    const m = TERM.exec(s);
    if (!m) return undefined;
    const [all, int = "", frac = "", unit = ""] = m;
    if (int === "" && frac === "") return undefined; // "s", ".s"
    const per = NS_PER[unit];
    if (per === undefined) return undefined;
    // Integer arithmetic per term keeps "1.1s" exact (1100 ms, not 1100.0000000000002).
    ns += Number(int || "0") * per;
    if (frac !== "") ns += Math.round(Number(`0.${frac}`) * per);
    s = s.slice(all.length);
  }
  return Number.isFinite(ns) ? ns / 1e6 : undefined;
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
