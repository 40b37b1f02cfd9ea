/** Ed25519 signing keys (with rotation + transition period) and signed event envelopes (§8). */
import { createPrivateKey, createPublicKey, randomBytes, sign, type KeyObject } from "node:crypto";
import type { Db } from "./db.ts";
import { canonicalString, goJsonString } from "./canonical.ts";

const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

/** One Ed25519 key pair. */
export interface SigningKey {
  readonly id: number;
  readonly publicKey: string;
  readonly privateKey: KeyObject;
  /** When this key became current, the predecessor stays valid until this instant (ms). */
  readonly transitionExpires: number | null;
}

/** Builds a private key object from a 32-byte Ed25519 seed. */
export function keyFromSeed(seed: Uint8Array): { privateKey: KeyObject; publicKey: string } {
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]),
    format: "der",
    type: "pkcs8",
  });
  const spki = createPublicKey(privateKey).export({ format: "der", type: "spki" });
  return { privateKey, publicKey: Buffer.from(spki.subarray(spki.length - 32)).toString("base64") };
}

/** Fields of an envelope before signing. `issuedAt` is written as given and canonicalised to sign. */
export interface EnvelopeFields {
  eventType: string;
  eventId: string;
  issuedAt: string;
  nonce: string;
  /** Compact payload text P (see canonical.ts). */
  payloadText: string;
}

/** Signs the canonical string of `f`; returns base64 std signature. */
export function signEnvelope(key: KeyObject, f: EnvelopeFields): string {
  return sign(null, Buffer.from(canonicalString(f), "utf8"), key).toString("base64");
}

/** The SSE `data` text of an envelope: canonical members in order, then `signature`. */
export function envelopeText(f: EnvelopeFields, signature: string): string {
  return (
    `{"event_type":${goJsonString(f.eventType)},"event_id":${goJsonString(f.eventId)},` +
    `"issued_at":${goJsonString(f.issuedAt)},"nonce":${goJsonString(f.nonce)},` +
    `"payload":${f.payloadText},"signature":${goJsonString(signature)}}`
  );
}

interface KeyRow {
  id: number;
  seed: string;
  transition_expires: number | null;
}

/** Persistent key ring: the newest row is current, the one before it is `previous`. */
export class KeyRing {
  private cache: SigningKey[] = [];

  constructor(private readonly db: Db, private readonly now: () => number = Date.now) {
    this.load();
    if (this.cache.length === 0) this.insert(null);
  }

  private load(): void {
    const rows = this.db
      .query("SELECT id, seed, transition_expires FROM signing_keys ORDER BY id DESC LIMIT 2")
      .all() as KeyRow[];
    this.cache = rows.map((r) => {
      const k = keyFromSeed(Buffer.from(r.seed, "base64"));
      return { id: r.id, ...k, transitionExpires: r.transition_expires };
    });
  }

  private insert(transitionExpires: number | null): void {
    const seed = randomBytes(32);
    const { publicKey } = keyFromSeed(seed);
    this.db
      .query("INSERT INTO signing_keys (seed, public_key, created_at, transition_expires) VALUES (?, ?, ?, ?)")
      .run(seed.toString("base64"), publicKey, this.now(), transitionExpires);
    this.load();
  }

  /** The key that signs new events. */
  current(): SigningKey {
    return this.cache[0] as SigningKey;
  }

  /** The predecessor while its transition period runs, else undefined. */
  previous(): SigningKey | undefined {
    const cur = this.current();
    const prev = this.cache[1];
    if (!prev || cur.transitionExpires === null || cur.transitionExpires <= this.now()) return undefined;
    return prev;
  }

  /** SigningKeys object of protocol.md §5. */
  state(): { current: string; previous: string | null; transition_expires?: string } {
    const cur = this.current();
    const prev = this.previous();
    if (!prev) return { current: cur.publicKey, previous: null };
    return {
      current: cur.publicKey,
      previous: prev.publicKey,
      transition_expires: new Date(cur.transitionExpires as number).toISOString(),
    };
  }

  /** Creates a new current key; the old one stays valid for `transitionMs`. Returns the old key. */
  rotate(transitionMs: number): SigningKey {
    const old = this.current();
    this.insert(this.now() + transitionMs);
    return old;
  }
}
