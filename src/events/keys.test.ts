import { expect, test } from "bun:test";
import { ed25519KeyFromBase64, ed25519KeyFromRaw, SigningKeyError } from "./keys.ts";
import { VECTOR_PUBLIC_KEY } from "./testing.ts";

test("raw 32-byte key round-trips through the SPKI prefix", () => {
  const k = ed25519KeyFromBase64(VECTOR_PUBLIC_KEY);
  expect(k.asymmetricKeyType).toBe("ed25519");
  const raw = Buffer.from(k.export({ format: "der", type: "spki" })).subarray(12);
  expect(raw.toString("base64")).toBe(VECTOR_PUBLIC_KEY);
});

test("rejects wrong lengths and non-canonical base64", () => {
  for (const bad of ["", "AAAA", Buffer.alloc(31).toString("base64"), Buffer.alloc(33).toString("base64"),
    `${VECTOR_PUBLIC_KEY.slice(0, 42)}R=`, VECTOR_PUBLIC_KEY.slice(0, 43), VECTOR_PUBLIC_KEY.replace("/", "_")]) {
    expect(() => ed25519KeyFromBase64(bad)).toThrow(SigningKeyError);
  }
  expect(() => ed25519KeyFromRaw(new Uint8Array(31))).toThrow(/32 bytes, got 31/);
});
