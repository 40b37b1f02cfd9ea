/**
 * Go-compatible durations and RFC 3339 timestamps (protocol.md §1: "Durations" and
 * "Timestamps sent/accepted").
 *
 * Durations are computed in integer nanoseconds (bigint) like Go's `time.Duration`, so
 * `"2.34s"` round-trips exactly and overflow is detected where Go detects it; the `…Ms`
 * variants are conveniences for timers.
 */

/** Thrown for an unparsable duration string; `code` is stable for callers and logs. */
export class DurationError extends Error {
  override readonly name = "DurationError";
  readonly code = "invalid_duration";
  constructor(
    message: string,
    readonly input: string,
  ) {
    super(message);
  }
}

const NS_PER_UNIT: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  "\u00b5s": 1_000n, // U+00B5 micro sign (what Go emits)
  "\u03bcs": 1_000n, // U+03BC Greek mu (Go accepts both)
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

/** Go's Duration is an int64 of nanoseconds; larger magnitudes are "invalid duration" there. */
const MAX_NS = (1n << 63n) - 1n;

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/**
 * Parses a Go duration string (`time.ParseDuration`): a signed sequence of decimal numbers with
 * optional fraction and a unit each (`300ms`, `-1.5h`, `1h30m`, `2.34s`, `5µs`). A bare number is
 * rejected, except `"0"` which Go accepts as a special case. Returns nanoseconds.
 * @throws DurationError naming the input.
 */
export function parseDurationNs(input: string): bigint {
  const fail = (why: string): never => {
    throw new DurationError(`invalid duration ${JSON.stringify(input)}: ${why}`, input);
  };
  let s = input;
  let neg = false;
  if (s !== "" && (s[0] === "-" || s[0] === "+")) {
    neg = s[0] === "-";
    s = s.slice(1);
  }
  if (s === "0") return 0n;
  if (s === "") fail("empty");
  let total = 0n;
  let i = 0;
  while (i < s.length) {
    const intStart = i;
    while (i < s.length && isDigit(s.charCodeAt(i))) i++;
    const intPart = s.slice(intStart, i);
    let fracPart = "";
    if (s[i] === ".") {
      i++;
      const fracStart = i;
      while (i < s.length && isDigit(s.charCodeAt(i))) i++;
      fracPart = s.slice(fracStart, i);
    }
    if (intPart === "" && fracPart === "") fail("expected a number");
    const unitStart = i;
    while (i < s.length && !isDigit(s.charCodeAt(i)) && s[i] !== ".") i++;
    const unit = s.slice(unitStart, i);
    if (unit === "") fail("missing unit");
    const scale = NS_PER_UNIT[unit];
    if (scale === undefined) fail(`unknown unit ${JSON.stringify(unit)}`);
    const unitNs = scale as bigint;
    let v = intPart === "" ? 0n : BigInt(intPart) * unitNs;
    if (fracPart !== "") {
      // Go keeps as many fraction digits as it can and truncates the rest toward zero.
      v += (BigInt(fracPart) * unitNs) / 10n ** BigInt(fracPart.length);
    }
    total += v;
    if (total > MAX_NS + (neg ? 1n : 0n)) fail("overflow");
  }
  return neg ? -total : total;
}

/** {@link parseDurationNs} in (possibly fractional) milliseconds, for timers. */
export function parseDurationMs(input: string): number {
  return Number(parseDurationNs(input)) / 1e6;
}

/** Appends the fraction of v / 10^prec without trailing zeros (Go's fmtFrac). */
function fmtFrac(v: bigint, prec: number): [string, bigint] {
  let out = "";
  let printed = false;
  for (let i = 0; i < prec; i++) {
    const digit = v % 10n;
    printed = printed || digit !== 0n;
    if (printed) out = digit.toString() + out;
    v /= 10n;
  }
  return [printed ? `.${out}` : "", v];
}

/**
 * Formats nanoseconds like Go's `Duration.String()`: `72h15m0s`, `2.34s`, `1m30s`, `0s`,
 * `1.5ms`, `1µs` (U+00B5), `100ns`.
 */
export function formatDurationNs(ns: bigint): string {
  const neg = ns < 0n;
  let u = neg ? -ns : ns;
  let out: string;
  if (u < 1_000_000_000n) {
    if (u === 0n) return "0s";
    let prec: number;
    let unit: string;
    if (u < 1_000n) {
      prec = 0;
      unit = "ns";
    } else if (u < 1_000_000n) {
      prec = 3;
      unit = "\u00b5s";
    } else {
      prec = 6;
      unit = "ms";
    }
    const [frac, whole] = fmtFrac(u, prec);
    out = `${whole}${frac}${unit}`;
  } else {
    const [frac, secs] = fmtFrac(u, 9);
    u = secs;
    out = `${u % 60n}${frac}s`;
    u /= 60n;
    if (u > 0n) {
      out = `${u % 60n}m${out}`;
      u /= 60n;
      if (u > 0n) out = `${u}h${out}`;
    }
  }
  return neg ? `-${out}` : out;
}

/** {@link formatDurationNs} for milliseconds (rounded to whole nanoseconds). */
export function formatDurationMs(ms: number): string {
  if (!Number.isFinite(ms)) throw new RangeError(`duration must be finite, got ${ms}`);
  return formatDurationNs(BigInt(Math.round(ms * 1e6)));
}

/** Formats an instant the way the agent sends timestamps: `2025-01-15T10:30:00.000Z`. */
export function formatRfc3339Ms(t: number | Date): string {
  const d = typeof t === "number" ? new Date(t) : t;
  const ms = d.getTime();
  if (!Number.isFinite(ms)) throw new RangeError(`invalid instant ${String(t)}`);
  return d.toISOString();
}

/** The fields of an RFC 3339 date-time exactly as written (wall clock + offset, no conversion). */
export interface Rfc3339 {
  /** `YYYY-MM-DDTHH:MM:SS` as given. */
  readonly wall: string;
  /** Fraction digits as given, truncated to 9 (`""` when absent). */
  readonly fraction: string;
  /** Offset from UTC in minutes; 0 for `Z`, `+00:00` and `-00:00`. */
  readonly offsetMinutes: number;
  /** The offset text as given (`Z` or `±HH:MM`). */
  readonly offset: string;
  /** The instant in milliseconds since the epoch (sub-millisecond fraction kept as decimals). */
  readonly epochMs: number;
}

const RFC3339_RE =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/;

function daysInMonth(y: number, m: number): number {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (no Date quirks for years < 100). */
function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/**
 * Parses an RFC 3339 date-time strictly (upper-case `T`/`Z`, at least one digit after `.`,
 * range-checked fields, second 60 rejected as in Go). Returns undefined when malformed.
 */
export function parseRfc3339(s: string): Rfc3339 | undefined {
  const m = RFC3339_RE.exec(s);
  if (m === null) return undefined;
  const [, ys, mos, ds, hs, mis, ss, frac = "", off = "Z"] = m;
  const y = Number(ys);
  const mo = Number(mos);
  const d = Number(ds);
  const h = Number(hs);
  const mi = Number(mis);
  const sec = Number(ss);
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo)) return undefined;
  if (h > 23 || mi > 59 || sec > 59) return undefined;
  let offsetMinutes = 0;
  if (off !== "Z") {
    const oh = Number(off.slice(1, 3));
    const om = Number(off.slice(4, 6));
    if (oh > 23 || om > 59) return undefined;
    const mag = oh * 60 + om;
    offsetMinutes = off[0] === "-" && mag !== 0 ? -mag : mag; // "-00:00" is 0, not -0
  }
  const fraction = frac.length > 9 ? frac.slice(0, 9) : frac;
  const wholeMs =
    (daysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offsetMinutes * 60) * 1000;
  const fracMs = fraction === "" ? 0 : Number(`0.${fraction}`) * 1000;
  return { wall: s.slice(0, 19), fraction, offsetMinutes, offset: off, epochMs: wholeMs + fracMs };
}
