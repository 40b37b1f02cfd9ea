/**
 * WireGuard key encodings. The agent and the control plane speak base64 (44 chars); the UAPI
 * speaks 64-char lowercase hex; the addon takes raw 32-byte arrays.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";

/** Thrown for a malformed key; `code` is stable. */
export class KeyFormatError extends Error {
  override readonly name = "KeyFormatError";
  readonly code = "EINVAL_KEY";
  constructor(message: string) {
    super(message);
  }
}

const B64_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;
const HEX_KEY = /^[0-9a-f]{64}$/;

/** True for a canonical base64 encoding of 32 bytes. */
export function isBase64Key(s: string): boolean {
  return B64_KEY.test(s);
}

/** base64 (44 chars) → raw 32 bytes. */
export function keyFromBase64(b64: string): Uint8Array {
  if (!B64_KEY.test(b64)) throw new KeyFormatError("key is not 32 bytes of base64");
  return new Uint8Array(Buffer.from(b64, "base64"));
}

/** raw 32 bytes → base64. */
export function keyToBase64(raw: Uint8Array): string {
  if (raw.length !== 32) throw new KeyFormatError(`key has ${raw.length} bytes, want 32`);
  return Buffer.from(raw).toString("base64");
}

/** base64 → 64-char lowercase hex (UAPI). */
export function base64ToHex(b64: string): string {
  return Buffer.from(keyFromBase64(b64)).toString("hex");
}

/** 64-char hex (UAPI) → base64. Uppercase is rejected: wireguard-go only emits lowercase. */
export function hexToBase64(hex: string): string {
  if (!HEX_KEY.test(hex)) throw new KeyFormatError("key is not 64 lowercase hex digits");
  return Buffer.from(hex, "hex").toString("base64");
}

/** True when every byte is zero (the "no key" value in UAPI and netlink). */
export function isZeroKey(raw: Uint8Array): boolean {
  return raw.every((b) => b === 0);
}

const PKCS8_X25519 = Buffer.from("302e020100300506032b656e04220420", "hex");

/** Clamps a Curve25519 scalar as WireGuard does, so `wg` prints the same bytes we store. */
export function clampPrivateKey(raw: Uint8Array): Uint8Array {
  const k = new Uint8Array(raw);
  k[0]! &= 248;
  k[31]! = (k[31]! & 127) | 64;
  return k;
}

/** Public key (base64) of a private key (base64), X25519 via node:crypto. */
export function publicKeyOf(privateB64: string): string {
  const raw = keyFromBase64(privateB64);
  const priv = createPrivateKey({ key: Buffer.concat([PKCS8_X25519, raw]), format: "der", type: "pkcs8" });
  const spki = createPublicKey(priv).export({ format: "der", type: "spki" });
  return keyToBase64(new Uint8Array(spki.subarray(spki.length - 32)));
}

/** A fresh clamped key pair (base64). */
export function generateKeyPair(): { privateKey: string; publicKey: string } {
  const { privateKey } = generateKeyPairSync("x25519");
  const der = privateKey.export({ format: "der", type: "pkcs8" });
  const priv = keyToBase64(clampPrivateKey(new Uint8Array(der.subarray(der.length - 32))));
  return { privateKey: priv, publicKey: publicKeyOf(priv) };
}
