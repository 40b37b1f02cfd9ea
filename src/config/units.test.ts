import { describe, expect, test } from "bun:test";
import { formatDuration, formatSize, parseCpu, parseDuration, parseEnvBool, parseSize } from "./units.ts";

describe("parseDuration", () => {
  test.each([
    ["500ms", 500],
    ["30s", 30_000],
    ["5m", 300_000],
    ["1h30m", 5_400_000],
    ["168h", 604_800_000],
    ["1.5s", 1500],
    ["1.1s", 1100],
    [".5s", 500],
    ["1500us", 1.5],
    ["1500\u00b5s", 1.5],
    ["0", 0],
    ["0s", 0],
    ["+2s", 2000],
  ])("%s → %d ms", (text, ms) => expect(parseDuration(text)).toBe(ms));

  test.each(["7d", "1w", "30", "", "s", "1.5", "-5s", "5 s", "5S", "1h-5m", "abc"])("rejects %p", (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});

describe("formatDuration", () => {
  test.each([
    [0, "0s"],
    [500, "500ms"],
    [1500, "1.5s"],
    [60_000, "1m"],
    [90_000, "1m30s"],
    [5_400_000, "1h30m"],
    [604_800_000, "168h"],
    [1.5, "1500us"],
    [0.000001, "1ns"],
    [3_600_500, "1h0.5s"],
  ])("%d ms → %s and back", (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
    expect(parseDuration(text)).toBe(ms);
  });
});

describe("parseSize", () => {
  test.each([
    [16384, 16384],
    ["16384", 16384],
    ["512Mi", 512 * 1024 ** 2],
    ["512M", 512 * 1024 ** 2],
    ["1G", 1024 ** 3],
    ["1Gi", 1024 ** 3],
    ["64Ki", 65536],
    ["1.5Ki", 1536],
  ])("%p → %d", (input, bytes) => expect(parseSize(input)).toBe(bytes));

  test.each(["1KB", "1MiB", "1g", "-1", "1.3", "1.0001Ki", "Mi", "", 1.5, -1, true, null])("rejects %p", (input) => {
    expect(parseSize(input)).toBeUndefined();
  });

  test("formatSize picks the largest exact binary unit", () => {
    expect(formatSize(512 * 1024 ** 2)).toBe("512Mi");
    expect(formatSize(1024 ** 3)).toBe("1Gi");
    expect(formatSize(16384)).toBe("16Ki");
    expect(formatSize(1000)).toBe(1000);
    expect(formatSize(1536)).toBe(1536);
  });
});

describe("parseCpu", () => {
  test.each([
    ["0.5", 0.5],
    [0.5, 0.5],
    ["1.0", 1],
    [2, 2],
    [".25", 0.25],
  ])("%p → %d", (input, n) => expect(parseCpu(input)).toBe(n));
  test.each(["0", 0, -1, "abc", "1e3", "", Number.POSITIVE_INFINITY, "0.0"])("rejects %p", (input) => {
    expect(parseCpu(input)).toBeUndefined();
  });
});

describe("parseEnvBool", () => {
  test.each([
    ["true", true],
    ["TRUE", true],
    ["1", true],
    ["yes", true],
    ["false", false],
    ["0", false],
    ["No", false],
  ])("%s → %p", (t, b) => expect(parseEnvBool(t)).toBe(b));
  test.each(["on", "off", "", "2", "y"])("rejects %p", (t) => expect(parseEnvBool(t)).toBeUndefined());
});
