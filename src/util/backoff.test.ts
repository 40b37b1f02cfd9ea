import { describe, expect, test } from "bun:test";
import { Backoff, BackoffOptionError, backoffDelay, parseRetryAfter } from "./backoff.ts";

describe("backoffDelay", () => {
  test("doubles from base up to the cap, without jitter", () => {
    const o = { baseMs: 1000, capMs: 60_000, jitter: 0 };
    expect([0, 1, 2, 3, 4, 5, 6, 7, 100, 5000].map((n) => backoffDelay(n, o))).toEqual([
      1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000, 60000,
    ]);
  });

  test("jitter spans U(0.75, 1.25)", () => {
    expect(backoffDelay(0, { baseMs: 1000, capMs: 60_000, random: () => 0 })).toBe(750);
    expect(backoffDelay(0, { baseMs: 1000, capMs: 60_000, random: () => 0.5 })).toBe(1000);
    expect(backoffDelay(10, { baseMs: 1000, capMs: 60_000, random: () => 0.999999 })).toBeCloseTo(75_000, -1);
    for (let i = 0; i < 1000; i++) {
      const d = backoffDelay(3, { baseMs: 1000, capMs: 60_000 });
      expect(d).toBeGreaterThanOrEqual(6000);
      expect(d).toBeLessThan(10_000);
    }
  });

  const bad: [string, object, number?][] = [
    ["baseMs", { baseMs: 0, capMs: 10 }],
    ["baseMs", { baseMs: -1, capMs: 10 }],
    ["baseMs", { baseMs: Number.NaN, capMs: 10 }],
    ["capMs", { baseMs: 1, capMs: Number.POSITIVE_INFINITY }],
    ["capMs", { baseMs: 10, capMs: 5 }],
    ["jitter", { baseMs: 1, capMs: 10, jitter: 1 }],
    ["jitter", { baseMs: 1, capMs: 10, jitter: -0.1 }],
    ["random", { baseMs: 1, capMs: 10, random: 3 }],
    ["n", { baseMs: 1, capMs: 10 }, -1],
    ["n", { baseMs: 1, capMs: 10 }, 1.5],
  ];
  for (const [name, o, n] of bad) {
    test(`rejects bad ${name} naming it`, () => {
      try {
        backoffDelay(n ?? 0, o as never);
        throw new Error("no error");
      } catch (e) {
        expect(e).toBeInstanceOf(BackoffOptionError);
        expect((e as BackoffOptionError).code).toBe("invalid_backoff_option");
        expect((e as BackoffOptionError).option).toBe(name);
        expect((e as Error).message).toContain(name);
      }
    });
  }
});

describe("Backoff", () => {
  test("advances, resets, and takes a new base", () => {
    const b = new Backoff({ baseMs: 1000, capMs: 60_000, jitter: 0 });
    expect([b.next(), b.next(), b.next()]).toEqual([1000, 2000, 4000]);
    expect(b.attempt).toBe(3);
    b.reset();
    expect(b.next()).toBe(1000);
    b.setBase(250);
    expect(b.next()).toBe(500);
    expect(() => b.setBase(0)).toThrow(BackoffOptionError);
    b.setBase(120_000);
    expect(b.next()).toBe(60_000);
  });
  test("constructor validates", () => {
    expect(() => new Backoff({ baseMs: 5, capMs: 1 })).toThrow(/capMs/);
  });
});

describe("parseRetryAfter", () => {
  const now = Date.UTC(1994, 10, 6, 8, 49, 0);
  test("delay-seconds", () => {
    expect(parseRetryAfter("120", now)).toBe(120_000);
    expect(parseRetryAfter(" 0 ", now)).toBe(0);
  });
  test("HTTP-date forms", () => {
    expect(parseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", now)).toBe(37_000);
    expect(parseRetryAfter("Sunday, 06-Nov-94 08:49:37 GMT", now)).toBe(37_000);
    expect(parseRetryAfter("Sun Nov  6 08:49:37 1994", now)).toBe(37_000);
    expect(parseRetryAfter("Sun, 06 Nov 1994 08:00:00 GMT", now)).toBe(0);
  });
  test("absent or garbage → undefined", () => {
    for (const v of [null, undefined, "", "-5", "1.5", "soon", "Sun, 06 Nov 1994 08:49:37 PST", "99999999999999999999"]) {
      expect(parseRetryAfter(v, now)).toBeUndefined();
    }
  });
});
