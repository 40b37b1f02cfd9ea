/**
 * Test support for src/events (not imported by production code): the protocol.md §8.3 key and
 * vectors, an independent signer, a seeded PRNG and a virtual clock.
 */
import { createPrivateKey, createPublicKey, sign, type KeyObject } from "node:crypto";

/** PKCS#8 header for a raw 32-byte Ed25519 seed (RFC 8410). */
const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

/** Ed25519 key pair from a 32-byte seed. */
export function keyPairFromSeed(seedHex: string): { privateKey: KeyObject; publicKey: KeyObject; publicB64: string } {
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_PREFIX, Buffer.from(seedHex, "hex")]),
    format: "der",
    type: "pkcs8",
  });
  const publicKey = createPublicKey(privateKey);
  const spki = publicKey.export({ format: "der", type: "spki" });
  return { privateKey, publicKey, publicB64: Buffer.from(spki.subarray(12)).toString("base64") };
}

/** protocol.md §8.3 key. */
export const VECTOR_SEED = "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20";
export const VECTOR_PUBLIC_KEY = "ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=";

/** V1 received `data`. */
export const V1 =
  '{"event_type":"peer_removed","event_id":"evt_0001","issued_at":"2025-01-15T10:30:00Z","nonce":"bm9uY2UtMDAwMQ==","payload":{"peer_id":"n_peer456"},"signature":"I1QpaouIcfNfS2NWgTxmY5gI5RUA3gSJOGAqhaR7aND9IhmIFlZCH6Q7uWhH639Qai+hbPffR/EixlDBqQUpAA=="}';
export const V1_CANONICAL =
  '{"event_type":"peer_removed","event_id":"evt_0001","issued_at":"2025-01-15T10:30:00Z","nonce":"bm9uY2UtMDAwMQ==","payload":{"peer_id":"n_peer456"}}';
export const V1_ISSUED_MS = Date.UTC(2025, 0, 15, 10, 30, 0);

/** V2 received `data` (whitespace, `.500`, offset, raw `&<>`). */
export const V2 =
  '{"signature":"l5LBeHTIJpk+8AaRArT4TFLi++V8xo9EHy/dgIzRFKtfb2BTPIoDFbuC0n69VUvYIpbLgrXwVEw+afqYVMXbBw==",\n' +
  ' "event_type":"node_state_updated","event_id":"evt_0002","nonce":"n-0002",\n' +
  ' "issued_at":"2025-01-15T12:30:00.500+02:00",\n' +
  ' "payload": { "metadata": { "url": "https://x.example/?a=1&b=<2>" }, "data": [ ] } }';
export const V2_CANONICAL =
  '{"event_type":"node_state_updated","event_id":"evt_0002","issued_at":"2025-01-15T12:30:00.5+02:00","nonce":"n-0002","payload":{"metadata":{"url":"https://x.example/?a=1\\u0026b=\\u003c2\\u003e"},"data":[]}}';
export const V2_ISSUED_MS = Date.UTC(2025, 0, 15, 10, 30, 0, 500);

/** Signs a canonical string built by hand (the independent signer). Returns base64 std. */
export function signCanonical(privateKey: KeyObject, canonical: string): string {
  return sign(null, Buffer.from(canonical, "utf8"), privateKey).toString("base64");
}

export { seededRandom } from "../util/seeded-random.test-util.ts";

interface Timer {
  at: number;
  seq: number;
  resolve: () => void;
}

/**
 * Virtual time: `sleep` registers a timer, {@link advance} fires timers in order while letting
 * promise chains settle in between, so loops built on `now` + `sleep` run instantly.
 */
export class VirtualTime {
  #now: number;
  #seq = 0;
  #timers: Timer[] = [];
  readonly sleeps: number[] = [];

  constructor(start = 0) {
    this.#now = start;
  }

  readonly now = (): number => this.#now;

  readonly sleep = (ms: number, signal: AbortSignal): Promise<void> => {
    this.sleeps.push(ms);
    return new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      const t: Timer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, resolve: () => {} };
      const onAbort = (): void => {
        this.#timers = this.#timers.filter((x) => x !== t);
        resolve();
      };
      t.resolve = () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
      this.#timers.push(t);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  };

  /** Pending timer count. */
  get pending(): number {
    return this.#timers.length;
  }

  /** Lets queued promise callbacks and stream pulls run. */
  async settle(rounds = 5): Promise<void> {
    for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
  }

  /** Moves time forward by `ms`, firing due timers in order. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    for (;;) {
      await this.settle();
      this.#timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.#timers[0];
      if (next === undefined || next.at > target) break;
      this.#timers.shift();
      this.#now = next.at;
      next.resolve();
    }
    this.#now = target;
    await this.settle();
  }

  /** Advances in steps until `done()` or `limitMs` of virtual time passed. */
  async until(done: () => boolean, limitMs = 3_600_000, stepMs = 100): Promise<void> {
    const end = this.#now + limitMs;
    await this.settle();
    while (!done() && this.#now < end) await this.advance(stepMs);
    if (!done()) throw new Error(`condition not reached within ${limitMs} ms of virtual time`);
  }
}
