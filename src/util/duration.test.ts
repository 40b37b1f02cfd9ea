import { describe, expect, test } from "bun:test";
import {
  DurationError,
  formatDurationMs,
  formatDurationNs,
  formatRfc3339Ms,
  parseDurationMs,
  parseDurationNs,
  parseRfc3339,
} from "./duration.ts";

describe("parseDurationNs (Go time.ParseDuration)", () => {
  const ok: [string, bigint][] = [
    ["300ms", 300_000_000n],
    ["1h30m", 5_400_000_000_000n],
    ["2.34s", 2_340_000_000n],
    ["1m30s", 90_000_000_000n],
    ["72h15m0s", 260_100_000_000_000n],
    ["5\u00b5s", 5_000n],
    ["5\u03bcs", 5_000n],
    ["7us", 7_000n],
    ["100ns", 100n],
    ["1.5ms", 1_500_000n],
    [".5s", 500_000_000n],
    ["5.s", 5_000_000_000n],
    ["-1.5h", -5_400_000_000_000n],
    ["+2s", 2_000_000_000n],
    ["0", 0n],
    ["0s", 0n],
    ["1.0000000001s", 1_000_000_000n], // beyond-ns precision truncated like Go
    ["9223372036854775807ns", 9223372036854775807n],
    ["-9223372036854775808ns", -9223372036854775808n],
  ];
  for (const [s, ns] of ok) test(`accepts ${JSON.stringify(s)}`, () => expect(parseDurationNs(s)).toBe(ns));

  const bad = ["", "300", "1", "-5", "s", ".s", "1x", "1h30", "1..5s", "9223372036854775808ns", " 1s", "1s ", "1S"];
  for (const s of bad) {
    test(`rejects ${JSON.stringify(s)}`, () => {
      expect(() => parseDurationNs(s)).toThrow(DurationError);
      try {
        parseDurationNs(s);
      } catch (e) {
        expect((e as DurationError).code).toBe("invalid_duration");
        expect((e as Error).message).toContain(JSON.stringify(s));
      }
    });
  }

  test("ms convenience", () => {
    expect(parseDurationMs("90s")).toBe(90_000);
    expect(parseDurationMs("1.5us")).toBe(0.0015);
  });
});

describe("formatDurationNs (Go Duration.String)", () => {
  const cases: [bigint, string][] = [
    [0n, "0s"],
    [1n, "1ns"],
    [1_100n, "1.1\u00b5s"],
    [1_500_000n, "1.5ms"],
    [2_340_000_000n, "2.34s"],
    [90_000_000_000n, "1m30s"],
    [260_100_000_000_000n, "72h15m0s"],
    [3_600_000_000_000n, "1h0m0s"],
    [-2_000_000_000n, "-2s"],
    [9223372036854775807n, "2562047h47m16.854775807s"],
    [-9223372036854775808n, "-2562047h47m16.854775808s"],
  ];
  for (const [ns, s] of cases) test(`${ns} → ${s}`, () => expect(formatDurationNs(ns)).toBe(s));

  test("round-trips", () => {
    for (const s of ["300ms", "2.34s", "1m30s", "72h15m0s", "1.5ms", "0s", "1h0m0.001s"]) {
      expect(formatDurationNs(parseDurationNs(s))).toBe(s);
    }
  });

  test("ms convenience", () => {
    expect(formatDurationMs(90_000)).toBe("1m30s");
    expect(formatDurationMs(2340)).toBe("2.34s");
    expect(() => formatDurationMs(Number.NaN)).toThrow(RangeError);
  });
});

describe("RFC 3339", () => {
  test("formats with milliseconds and Z", () => {
    expect(formatRfc3339Ms(Date.UTC(2025, 0, 15, 10, 30))).toBe("2025-01-15T10:30:00.000Z");
    expect(formatRfc3339Ms(new Date(Date.UTC(2025, 0, 15, 10, 30, 0, 7)))).toBe("2025-01-15T10:30:00.007Z");
    expect(() => formatRfc3339Ms(Number.NaN)).toThrow(RangeError);
  });

  test("parses wall clock, offset and instant", () => {
    const t = parseRfc3339("2025-01-15T12:30:00.500+02:00")!;
    expect(t.wall).toBe("2025-01-15T12:30:00");
    expect(t.fraction).toBe("500");
    expect(t.offsetMinutes).toBe(120);
    expect(t.offset).toBe("+02:00");
    expect(t.epochMs).toBe(Date.UTC(2025, 0, 15, 10, 30, 0, 500));
    expect(parseRfc3339("2025-01-15T10:30:00-00:00")!.offsetMinutes).toBe(0);
    expect(parseRfc3339("2025-01-15T10:30:00.1234567891234Z")!.fraction).toBe("123456789");
    expect(parseRfc3339("0001-01-01T00:00:00Z")!.epochMs).toBe(-62135596800000);
    expect(parseRfc3339("2024-02-29T23:59:59-05:30")!.epochMs).toBe(Date.UTC(2024, 2, 1, 5, 29, 59));
  });

  const bad = [
    "2025-01-15 10:30:00Z",
    "2025-01-15t10:30:00Z",
    "2025-01-15T10:30:00z",
    "2025-01-15T10:30:00",
    "2025-01-15T10:30:00.Z",
    "2025-01-15T10:30Z",
    "2025-13-15T10:30:00Z",
    "2025-02-29T10:30:00Z",
    "2025-01-32T10:30:00Z",
    "2025-01-15T24:00:00Z",
    "2025-01-15T10:60:00Z",
    "2025-01-15T10:30:60Z",
    "2025-01-15T10:30:00+24:00",
    "2025-01-15T10:30:00+02:60",
    "2025-01-15T10:30:00+0200",
    "25-01-15T10:30:00Z",
    "２０２５-01-15T10:30:00Z",
    "",
  ];
  for (const s of bad) test(`rejects ${JSON.stringify(s)}`, () => expect(parseRfc3339(s)).toBeUndefined());
});
