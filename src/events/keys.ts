/**
 * Control-plane signing keys as node:crypto KeyObjects (protocol.md §8.2 "Keys": raw 32-byte
 * Ed25519 public keys, base64 std). Building the KeyObject once per key (not per event) keeps
 * verification at native speed.
 */
import { createPublicKey, type KeyObject } from "node:crypto";

/** A key that is not a raw 32-byte Ed25519 public key in base64 std. */
export class SigningKeyError extends Error {
  override readonly name = "SigningKeyError";
  readonly code = "invalid_signing_key";
}

// SubjectPublicKeyInfo header for Ed25519 (RFC 8410): SEQ{SEQ{OID 1.3.101.112}, BIT STRING(32)}.
const ED25519_SPKI_PREFIX = Uint8Array.from([
  0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
]);

/** Wraps a raw 32-byte Ed25519 public key. @throws SigningKeyError */
export function ed25519KeyFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new SigningKeyError(`Ed25519 public key must be 32 bytes, got ${raw.length}`);
  const der = new Uint8Array(44);
  der.set(ED25519_SPKI_PREFIX, 0);
  der.set(raw, 12);
  return createPublicKey({ key: Buffer.from(der), format: "der", type: "spki" });
}

const B64_32 = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/** Parses a base64 std (padded, canonical) raw Ed25519 public key. @throws SigningKeyError */
export function ed25519KeyFromBase64(b64: string): KeyObject {
  if (!B64_32.test(b64)) throw new SigningKeyError("signing key is not 32 bytes of canonical base64 std");
  return ed25519KeyFromRaw(Buffer.from(b64, "base64"));
}

/** The trusted key set used for verification (lifecycle.md §10.2). */
export interface TrustedKeys {
  readonly current: KeyObject;
  /** Accepted only while `now < transitionExpiresMs`. */
  readonly previous?: KeyObject;
  readonly transitionExpiresMs?: number;
}
