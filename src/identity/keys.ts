/**
 * WireGuard (Curve25519) keys for the node identity (lifecycle.md §3): 32 random bytes,
 * clamped as WireGuard does, public key = X25519(priv, 9) through node:crypto.
 */
import { createPrivateKey, createPublicKey, diffieHellman, randomBytes as nodeRandomBytes } from "node:crypto";

/** PKCS#8 DER prefix of a raw X25519 private key (RFC 8410). */
const PKCS8_X25519 = Buffer.from("302e020100300506032b656e04220420", "hex");
/** SPKI DER prefix of a raw X25519 public key. */
const SPKI_X25519 = Buffer.from("302a300506032b656e032100", "hex");
const B64_32 = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/** A malformed key; `code` is stable. */
export class IdentityKeyError extends Error {
  override readonly name = "IdentityKeyError";
  readonly code = "invalid_key";
}

/** Clamps a scalar: `b[0] &= 248; b[31] &= 127; b[31] |= 64` (returns a copy). */
export function clampKey(raw: Uint8Array): Uint8Array {
  if (raw.length !== 32) throw new IdentityKeyError(`key has ${raw.length} bytes, want 32`);
  const k = new Uint8Array(raw);
  k[0] = k[0]! & 248;
  k[31] = (k[31]! & 127) | 64;
  return k;
}

/** True when the bytes are already clamped. */
export function isClamped(raw: Uint8Array): boolean {
  return raw.length === 32 && (raw[0]! & 7) === 0 && (raw[31]! & 128) === 0 && (raw[31]! & 64) === 64;
}

/** base64 std of exactly 32 bytes → bytes; throws IdentityKeyError otherwise. */
export function decodeKey(b64: string): Uint8Array {
  if (!B64_32.test(b64)) throw new IdentityKeyError("key is not base64 of 32 bytes");
  return new Uint8Array(Buffer.from(b64, "base64"));
}

export function encodeKey(raw: Uint8Array): string {
  if (raw.length !== 32) throw new IdentityKeyError(`key has ${raw.length} bytes, want 32`);
  return Buffer.from(raw).toString("base64");
}

/** X25519(k, u) for raw 32-byte scalar and u-coordinate (RFC 7748 §5). */
export function x25519(scalar: Uint8Array, u: Uint8Array): Uint8Array {
  const priv = createPrivateKey({ key: Buffer.concat([PKCS8_X25519, scalar]), format: "der", type: "pkcs8" });
  const pub = createPublicKey({ key: Buffer.concat([SPKI_X25519, u]), format: "der", type: "spki" });
  return new Uint8Array(diffieHellman({ privateKey: priv, publicKey: pub }));
}

/** Public key of a raw private key: X25519(priv, 9). */
export function publicKeyOf(priv: Uint8Array): Uint8Array {
  if (priv.length !== 32) throw new IdentityKeyError(`key has ${priv.length} bytes, want 32`);
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_X25519, priv]), format: "der", type: "pkcs8" });
  const spki = createPublicKey(key).export({ format: "der", type: "spki" });
  return new Uint8Array(spki.subarray(spki.length - 32));
}

/** A new key pair, base64: 32 random bytes, clamped. */
export function generateKeyPair(random: (n: number) => Uint8Array = (n) => new Uint8Array(nodeRandomBytes(n))): {
  privateKey: string;
  publicKey: string;
} {
  const priv = clampKey(random(32));
  return { privateKey: encodeKey(priv), publicKey: encodeKey(publicKeyOf(priv)) };
}

/** Public key (base64) of a private key (base64). */
export function publicKeyOfBase64(privateKey: string): string {
  return encodeKey(publicKeyOf(decodeKey(privateKey)));
}
