import { describe, expect, test } from "bun:test";
import { NonceStore, NonceStoreOptionError } from "./nonce-store.ts";

const TTL = 300_000;

describe("NonceStore", () => {
  test("insert, replay, expiry at issued_at + 5 min (inclusive)", () => {
    const s = new NonceStore();
    expect(s.insert("a", 1000, 1000)).toBe("inserted");
    expect(s.insert("a", 2000, 2000)).toBe("replay");
    expect(s.has("a", 1000 + TTL)).toBe(true);
    expect(s.insert("a", 1000, 1000 + TTL)).toBe("replay"); // still live at the bound
    expect(s.cleanup(1000 + TTL + 1)).toBe(1);
    expect(s.has("a", 1000 + TTL + 1)).toBe(false);
    expect(s.insert("a", 1000 + TTL, 1000 + TTL + 1)).toBe("inserted");
  });

  test("fails closed when full; expired entries make room", () => {
    const s = new NonceStore({ capacity: 3 });
    for (const n of ["a", "b", "c"]) expect(s.insert(n, 0, 0)).toBe("inserted");
    expect(s.insert("d", 10, 10)).toBe("full");
    expect(s.insert("a", 10, 10)).toBe("replay");
    expect(s.insert("d", TTL + 1, TTL + 1)).toBe("inserted");
    expect(s.size).toBe(1);
  });

  test("expiry follows issued_at, not insertion order (heap)", () => {
    const s = new NonceStore();
    const now = 1_000_000;
    const issued = [now + 200_000, now - 100_000, now, now - 250_000, now + 50_000, now - 299_000];
    issued.forEach((t, i) => s.insert(`n${i}`, t, now));
    const live = (t: number) => issued.map((_, i) => `n${i}`).filter((n) => s.has(n, t));
    expect(s.cleanup(now + 2_000)).toBe(1); // n5 expired at now + 1 s
    expect(live(now + 2_000)).toEqual(["n0", "n1", "n2", "n3", "n4"]);
    expect(s.cleanup(now + 60_000)).toBe(1); // n3
    expect(s.cleanup(now + 250_000)).toBe(1); // n1
    expect(s.cleanup(now + 600_000)).toBe(3);
    expect(s.size).toBe(0);
  });

  test("randomised against a naive model", () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const s = new NonceStore({ capacity: 50 });
    const model = new Map<string, number>();
    let now = 0;
    for (let i = 0; i < 20_000; i++) {
      now += Math.floor(rnd() * 5000);
      const nonce = `n${Math.floor(rnd() * 200)}`;
      const issued = now - Math.floor(rnd() * TTL);
      for (const [k, exp] of model) if (exp < now) model.delete(k);
      const expected = model.has(nonce) ? "replay" : model.size >= 50 ? "full" : "inserted";
      if (expected === "inserted") model.set(nonce, issued + TTL);
      expect(s.insert(nonce, issued, now)).toBe(expected);
      if (i % 97 === 0) expect(s.size).toBe(model.size);
    }
  });

  test("seeding from the journal: skips expired, may exceed capacity, keeps the later expiry", () => {
    const s = new NonceStore({ capacity: 2 });
    const now = 10_000_000;
    const added = s.seed(
      [
        { nonce: "old", issuedAtMs: now - TTL - 1 },
        { nonce: "a", issuedAtMs: now - 1000 },
        { nonce: "b", issuedAtMs: now - 2000 },
        { nonce: "c", issuedAtMs: now - 3000 },
        { nonce: "a", issuedAtMs: now - 200_000 },
      ],
      now,
    );
    expect(added).toBe(3);
    expect(s.has("old", now)).toBe(false);
    expect(s.insert("c", now, now)).toBe("replay");
    expect(s.insert("d", now, now)).toBe("full");
    // "a" keeps its later expiry despite the older duplicate row.
    s.cleanup(now - 1500 + TTL); // b and c expired, a (issued now − 1 s) still live
    expect(s.has("a", now - 1500 + TTL)).toBe(true);
    expect(s.size).toBe(1);
    s.clear();
    expect(s.size).toBe(0);
  });

  test("rejects bad options naming the value", () => {
    expect(() => new NonceStore({ capacity: 0 })).toThrow(NonceStoreOptionError);
    expect(() => new NonceStore({ capacity: 1.5 })).toThrow(/1\.5/);
    expect(() => new NonceStore({ ttlMs: -1 })).toThrow(/-1/);
  });

  test("100 000 entries: fill, full, and bulk expiry", () => {
    const s = new NonceStore();
    for (let i = 0; i < 100_000; i++) expect(s.insert(`n${i}`, i, 100_000)).toBe("inserted");
    expect(s.insert("x", 100_000, 100_000)).toBe("full");
    expect(s.cleanup(TTL + 50_000)).toBe(50_000);
    expect(s.insert("x", TTL + 50_000, TTL + 50_000)).toBe("inserted");
  });
});
