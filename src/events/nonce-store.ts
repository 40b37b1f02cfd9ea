/**
 * In-memory replay guard (protocol.md §8.2 "Nonce store"). The journal's nonce column is the
 * durable store; this is the bounded working set: entries live until `issued_at + 5 min`,
 * capacity 100 000 live entries, and when full with nothing expired, inserts fail closed.
 *
 * An entry is live while `now ≤ issued_at + ttl`, the same inclusive bound as the staleness
 * check, so an event that still passes staleness can never find its nonce already forgotten.
 *
 * Expiry order is kept in a binary min-heap so eviction is O(log n) per entry instead of a
 * full sweep per insert when the store runs near capacity.
 */

/** Outcome of {@link NonceStore.insert}. */
export type NonceInsertResult = "inserted" | "replay" | "full";

/** Options with defaults from the spec. */
export interface NonceStoreOptions {
  /** Live entries allowed (default 100 000). */
  readonly capacity?: number;
  /** Lifetime after `issued_at`, ms (default 5 min). */
  readonly ttlMs?: number;
}

/** A nonce known from the journal, for seeding at start. */
export interface NonceSeed {
  readonly nonce: string;
  readonly issuedAtMs: number;
}

/** Bad {@link NonceStoreOptions}. */
export class NonceStoreOptionError extends Error {
  override readonly name = "NonceStoreOptionError";
  readonly code = "invalid_nonce_store_option";
}

/** Bounded, expiring set of nonces. Time is always passed in, never read. */
export class NonceStore {
  readonly capacity: number;
  readonly ttlMs: number;
  readonly #expires = new Map<string, number>();
  // Parallel arrays form the heap (expiry, nonce); smaller and faster than an array of objects.
  #heapAt: number[] = [];
  #heapNonce: string[] = [];

  constructor(o: NonceStoreOptions = {}) {
    const capacity = o.capacity ?? 100_000;
    const ttlMs = o.ttlMs ?? 5 * 60_000;
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new NonceStoreOptionError(`nonce store capacity must be an integer ≥ 1, got ${capacity}`);
    }
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) {
      throw new NonceStoreOptionError(`nonce store ttlMs must be a positive number, got ${ttlMs}`);
    }
    this.capacity = capacity;
    this.ttlMs = ttlMs;
  }

  /** Entries currently held (live ones, plus expired ones not yet cleaned up). */
  get size(): number {
    return this.#expires.size;
  }

  /** True when `nonce` is held and live at `nowMs`. */
  has(nonce: string, nowMs: number): boolean {
    const at = this.#expires.get(nonce);
    return at !== undefined && at >= nowMs;
  }

  /**
   * Records a nonce of a verified event. `replay` when it is already live; `full` when the
   * store holds `capacity` live entries after evicting expired ones (fail closed).
   */
  insert(nonce: string, issuedAtMs: number, nowMs: number): NonceInsertResult {
    this.cleanup(nowMs);
    if (this.#expires.has(nonce)) return "replay";
    if (this.#expires.size >= this.capacity) return "full";
    this.#add(nonce, issuedAtMs + this.ttlMs);
    return "inserted";
  }

  /**
   * Loads nonces from the journal at start (events with `issued_at` in the last 5 min). Already
   * expired ones are skipped. Seeding may exceed the capacity: forgetting a known nonce would
   * reopen a replay window, so new inserts fail closed until entries expire instead.
   * Returns the number of entries added.
   */
  seed(entries: Iterable<NonceSeed>, nowMs: number): number {
    let added = 0;
    for (const e of entries) {
      const at = e.issuedAtMs + this.ttlMs;
      if (!(at >= nowMs)) continue;
      const old = this.#expires.get(e.nonce);
      if (old !== undefined && old >= at) continue;
      if (old === undefined) added++;
      this.#add(e.nonce, at);
    }
    return added;
  }

  /** Drops entries expired at `nowMs` (run every 60 s, and before each insert). Returns the count. */
  cleanup(nowMs: number): number {
    let removed = 0;
    const at = this.#heapAt;
    while (at.length > 0 && (at[0] as number) < nowMs) {
      const expiry = at[0] as number;
      const nonce = this.#heapNonce[0] as string;
      this.#pop();
      // A nonce re-seeded with a later expiry leaves a stale heap entry: skip it.
      if (this.#expires.get(nonce) === expiry) {
        this.#expires.delete(nonce);
        removed++;
      }
    }
    return removed;
  }

  /** Forgets everything (tests, node identity change). */
  clear(): void {
    this.#expires.clear();
    this.#heapAt = [];
    this.#heapNonce = [];
  }

  #add(nonce: string, expiry: number): void {
    this.#expires.set(nonce, expiry);
    const at = this.#heapAt;
    const ns = this.#heapNonce;
    let i = at.length;
    at.push(expiry);
    ns.push(nonce);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((at[parent] as number) <= expiry) break;
      at[i] = at[parent] as number;
      ns[i] = ns[parent] as string;
      i = parent;
    }
    at[i] = expiry;
    ns[i] = nonce;
  }

  #pop(): void {
    const at = this.#heapAt;
    const ns = this.#heapNonce;
    const lastAt = at.pop() as number;
    const lastNonce = ns.pop() as string;
    const n = at.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && (at[r] as number) < (at[l] as number) ? r : l;
      if ((at[c] as number) >= lastAt) break;
      at[i] = at[c] as number;
      ns[i] = ns[c] as string;
      i = c;
    }
    at[i] = lastAt;
    ns[i] = lastNonce;
  }
}
