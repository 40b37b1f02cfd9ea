/** Random identifiers and the NSK-based secret encryption of nodeapi.md §6. */
import { createCipheriv, createHash, randomBytes } from "node:crypto";

/** A random id with a prefix, e.g. `n_3f9a…` (16 hex chars = 64 bits). */
export const randomId = (prefix: string) => `${prefix}_${randomBytes(8).toString("hex")}`;

/** 32 random bytes, base64 std — the form used for NSKs and PSKs. */
export const random32 = () => randomBytes(32).toString("base64");

/** SHA-256 hex of a string (bootstrap tokens are stored hashed). */
export const sha256Hex = (s: string | Uint8Array) => createHash("sha256").update(s).digest("hex");

/** Key bytes of an NSK per nodeapi.md §6.2 (base64 form first, then raw 32-byte form). */
export function nskKeyBytes(nsk: string): Buffer {
  if (/^[A-Za-z0-9+/]{43}=$/.test(nsk)) {
    const b = Buffer.from(nsk, "base64");
    if (b.length === 32) return b;
  }
  const raw = Buffer.from(nsk, "utf8");
  if (raw.length === 32) return raw;
  throw new Error("NSK has no usable key form");
}

/** AES-256-GCM encryption under the NSK: `{ciphertext (‖ 16-byte tag), nonce}` base64. */
export function encryptForNode(nsk: string, plaintext: Uint8Array): { ciphertext: string; nonce: string } {
  const iv = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", nskKeyBytes(nsk), iv);
  const body = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
  return { ciphertext: body.toString("base64"), nonce: iv.toString("base64") };
}
