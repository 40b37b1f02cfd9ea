import { expect, test } from "bun:test";
import { CycleScheduler } from "./scheduler.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("triggers coalesce, cycles never overlap, starts are spaced by minGap", async () => {
  const starts: number[] = [];
  let active = 0;
  let maxActive = 0;
  const s = new CycleScheduler({
    intervalMs: () => 60_000,
    minGapMs: 50,
    cycle: async () => {
      starts.push(Date.now());
      active++;
      maxActive = Math.max(maxActive, active);
      await sleep(30);
      active--;
    },
  });
  s.start();
  s.trigger("a");
  await sleep(5);
  for (let i = 0; i < 10; i++) s.trigger(`b${i}`);
  await sleep(200);
  await s.idle();
  await s.stop();
  expect(maxActive).toBe(1);
  expect(starts.length).toBe(2); // one running + one coalesced pending
  expect(starts[1]! - starts[0]!).toBeGreaterThanOrEqual(48);
});

test("the interval runs cycles and a trigger restarts it", async () => {
  const reasons: string[] = [];
  const s = new CycleScheduler({ intervalMs: () => 40, jitter: 0, minGapMs: 0, cycle: async (r) => void reasons.push(r) });
  s.start();
  await sleep(100);
  await s.stop();
  expect(reasons.filter((r) => r === "interval").length).toBeGreaterThanOrEqual(2);
  const n = reasons.length;
  await sleep(60);
  expect(reasons.length).toBe(n); // stopped
});

test("a failing cycle is reported and does not stop the scheduler", async () => {
  const errors: unknown[] = [];
  let n = 0;
  const s = new CycleScheduler({
    intervalMs: () => 60_000,
    minGapMs: 0,
    onError: (e) => errors.push(e),
    cycle: async () => {
      n++;
      throw new Error("boom");
    },
  });
  s.start();
  s.trigger("x");
  await sleep(10);
  s.trigger("y");
  await sleep(10);
  await s.stop();
  expect(n).toBe(2);
  expect(errors).toHaveLength(2);
});
