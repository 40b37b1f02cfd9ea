import { describe, expect, test } from "bun:test";
import { CpError } from "./errors.ts";
import { RetryClasses, withRetry, type Attempt } from "./retry.ts";

/** A fake clock whose sleep just advances time. */
function fakeTime() {
  let t = 1_000_000;
  const sleeps: number[] = [];
  return {
    now: () => t,
    sleep: async (ms: number) => {
      sleeps.push(ms);
      t += ms;
    },
    sleeps,
    advance: (ms: number) => {
      t += ms;
    },
  };
}
const http = (status: number, retryAfterMs?: number) =>
  new CpError("http", `status ${status}`, { status, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });
const fail = (e: CpError) => ({ ok: false as const, error: e });

describe("withRetry", () => {
  test("registration: transient failures retried with 1 s·2^n (±25 %) capped at 60 s, until 5 min", async () => {
    const ft = fakeTime();
    let calls = 0;
    const r = await withRetry(
      async () => {
        calls++;
        return fail(http(503));
      },
      RetryClasses.registration,
      { now: ft.now, sleep: ft.sleep, random: () => 0.5 },
    );
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toBe("exhausted");
    // random 0.5 → no jitter: 1,2,4,8,16,32,60,60,60,... until 300 s total
    expect(ft.sleeps.slice(0, 8)).toEqual([1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]);
    const total = ft.sleeps.reduce((a, b) => a + b, 0);
    expect(total).toBe(300_000); // the last wait is shortened to the remaining budget
    expect(calls).toBe(ft.sleeps.length + 1);
  });

  test("jitter stays within U(0.75, 1.25)", async () => {
    for (const rnd of [0, 0.999999]) {
      const ft = fakeTime();
      let n = 0;
      await withRetry(async () => (++n < 4 ? fail(http(500)) : { ok: true as const, value: 1 }), RetryClasses.durable, {
        now: ft.now,
        sleep: ft.sleep,
        random: () => rnd,
      });
      const f = rnd === 0 ? 0.75 : 1.25;
      ft.sleeps.forEach((s, i) => expect(s).toBeCloseTo(1000 * 2 ** i * f, 0));
    }
  });

  test.each([400, 401, 403, 404, 409, 426])("registration gives up at once on %d", async (status) => {
    const ft = fakeTime();
    let calls = 0;
    const r = await withRetry(async () => (calls++, fail(http(status))), RetryClasses.registration, { now: ft.now, sleep: ft.sleep });
    expect(calls).toBe(1);
    expect(!r.ok && r.reason).toBe("permanent");
  });

  test("network, timeout, TLS and too_large are retried; 429 Retry-After replaces the delay", async () => {
    const ft = fakeTime();
    const errors = [new CpError("network", "x"), new CpError("timeout", "x"), new CpError("tls", "x"), new CpError("too_large", "x"), http(429, 42_000)];
    let i = 0;
    const r = await withRetry(async () => (i < errors.length ? fail(errors[i++]!) : { ok: true as const, value: "done" }), RetryClasses.registration, {
      now: ft.now,
      sleep: ft.sleep,
      random: () => 0.5,
    });
    expect(r.ok && r.value).toBe("done");
    expect(r.attempts).toBe(6);
    expect(r.errors.map((e) => e.kind)).toEqual(["network", "timeout", "tls", "too_large", "http"]);
    expect(ft.sleeps).toEqual([1000, 2000, 4000, 8000, 42_000]);
  });

  test("Retry-After is ignored on statuses other than 429/503", async () => {
    const ft = fakeTime();
    let n = 0;
    await withRetry(async () => (n++ === 0 ? fail(http(500, 99_000)) : { ok: true as const, value: 0 }), RetryClasses.telemetry, {
      now: ft.now,
      sleep: ft.sleep,
      random: () => 0.5,
    });
    expect(ft.sleeps).toEqual([1000]);
  });

  test("Retry-After beyond the budget is cut to the remaining time", async () => {
    const ft = fakeTime();
    const r = await withRetry(async () => fail(http(503, 3_600_000)), RetryClasses.rotation, { now: ft.now, sleep: ft.sleep });
    expect(ft.sleeps[0]).toBe(300_000);
    expect(!r.ok && r.reason).toBe("exhausted");
  });

  test("artifact: at most 5 attempts, base 2 s", async () => {
    const ft = fakeTime();
    let calls = 0;
    const r = await withRetry(async () => (calls++, fail(http(502))), RetryClasses.artifact, { now: ft.now, sleep: ft.sleep, random: () => 0.5 });
    expect(calls).toBe(5);
    expect(ft.sleeps).toEqual([2000, 4000, 8000, 16000]);
    expect(!r.ok && r.reason).toBe("exhausted");
  });

  test("interactive and periodic: single attempt", async () => {
    for (const cls of [RetryClasses.interactive, RetryClasses.periodic]) {
      let calls = 0;
      const r = await withRetry(async () => (calls++, fail(http(503))), cls, { sleep: async () => {} });
      expect(calls).toBe(1);
      expect(!r.ok && r.reason).toBe("exhausted");
    }
  });

  test("deregister: 3 attempts with 1 s and 2 s waits", async () => {
    const ft = fakeTime();
    let calls = 0;
    await withRetry(async () => (calls++, fail(new CpError("network", "x"))), RetryClasses.deregister, { now: ft.now, sleep: ft.sleep, random: () => 0.5 });
    expect(calls).toBe(3);
    expect(ft.sleeps).toEqual([1000, 2000]);
  });

  test("abort stops the loop", async () => {
    const ac = new AbortController();
    let calls = 0;
    const r = await withRetry(
      async () => {
        calls++;
        if (calls === 2) ac.abort();
        return fail(http(500));
      },
      RetryClasses.durable,
      { sleep: async () => {}, signal: ac.signal },
    );
    expect(calls).toBe(2);
    expect(!r.ok && r.reason).toBe("aborted");
  });

  test("invalid_response is not retried", async () => {
    let calls = 0;
    const r = await withRetry(async () => (calls++, fail(new CpError("invalid_response", "bad"))), RetryClasses.durable, { sleep: async () => {} });
    expect(calls).toBe(1);
    expect(!r.ok && r.reason).toBe("permanent");
  });
});
