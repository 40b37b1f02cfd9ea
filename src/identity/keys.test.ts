import { describe, expect, test } from "bun:test";
import { clampKey, decodeKey, encodeKey, generateKeyPair, isClamped, publicKeyOf, publicKeyOfBase64, x25519 } from "./keys.ts";

const hex = (s: string) => new Uint8Array(Buffer.from(s, "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("X25519 (RFC 7748)", () => {
  test("§5.2 scalar-multiplication vector", () => {
    const out = x25519(hex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"), hex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"));
    expect(toHex(out)).toBe("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");
  });

  test("§6.1 Diffie-Hellman: public = X25519(priv, 9), shared secret agrees", () => {
    const a = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    const b = hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    expect(toHex(publicKeyOf(a))).toBe("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    expect(toHex(publicKeyOf(b))).toBe("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    const nine = new Uint8Array(32);
    nine[0] = 9;
    expect(toHex(x25519(a, nine))).toBe("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    const k = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
    expect(toHex(x25519(a, publicKeyOf(b)))).toBe(k);
    expect(toHex(x25519(b, publicKeyOf(a)))).toBe(k);
    // clamping does not change the public key (X25519 clamps internally)
    expect(toHex(publicKeyOf(clampKey(a)))).toBe("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  });
});

describe("key generation", () => {
  test("clamp: b[0] &= 248; b[31] &= 127; b[31] |= 64", () => {
    const c = clampKey(new Uint8Array(32).fill(0xff));
    expect(c[0]).toBe(0xf8);
    expect(c[31]).toBe(0x7f);
    expect(clampKey(new Uint8Array(32))[31]).toBe(0x40);
    expect(isClamped(c)).toBe(true);
    expect(isClamped(new Uint8Array(32).fill(0xff))).toBe(false);
    expect(() => clampKey(new Uint8Array(31))).toThrow();
  });

  test("generateKeyPair uses the random source, clamps, and derives the public key", () => {
    const fixed = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    const kp = generateKeyPair(() => fixed);
    const priv = decodeKey(kp.privateKey);
    expect(isClamped(priv)).toBe(true);
    expect(toHex(decodeKey(kp.publicKey))).toBe("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    expect(publicKeyOfBase64(kp.privateKey)).toBe(kp.publicKey);
    const r1 = generateKeyPair();
    const r2 = generateKeyPair();
    expect(r1.privateKey).not.toBe(r2.privateKey);
    expect(kp.privateKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
  });

  test("decode/encode reject wrong sizes", () => {
    expect(() => decodeKey("AAAA")).toThrow();
    expect(() => encodeKey(new Uint8Array(16))).toThrow();
  });
});
