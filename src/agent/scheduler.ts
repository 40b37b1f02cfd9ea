/**
 * Reconcile trigger discipline (lifecycle.md §9.1): triggers coalesce (at most one pending),
 * cycles never overlap, at least `minGapMs` (2 s) between cycle starts, and every cycle —
 * periodic or triggered — restarts the interval timer.
 */

/** Options of {@link CycleScheduler}. */
export interface SchedulerOptions {
  /** The work; its failures are the caller's to log (a throw is swallowed here). */
  readonly cycle: (reason: string) => Promise<void>;
  /** Period between cycles (`reconcile.interval`); read per cycle so a reload applies. */
  readonly intervalMs: () => number;
  /** Minimum spacing of cycle starts [2000]. */
  readonly minGapMs?: number;
  /** ± fraction of jitter on the interval (`schedule.jitter`) [0.1]. */
  readonly jitter?: number;
  readonly now?: () => number;
  readonly random?: () => number;
  readonly onError?: (err: unknown) => void;
}

/** See the file comment. */
export class CycleScheduler {
  readonly #o: SchedulerOptions;
  readonly #now: () => number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<void> | undefined;
  #pending: string | undefined;
  #lastStart = -Infinity;
  #stopped = true;
  runs = 0;

  constructor(opts: SchedulerOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
  }

  get running(): boolean {
    return this.#running !== undefined;
  }

  /** Starts the periodic timer; the first periodic cycle comes after one interval. */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#arm(this.#interval(), "interval");
  }

  /** Asks for a cycle now (coalesced, spaced ≥ minGap from the previous start). */
  trigger(reason: string): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#pending ??= reason;
      return;
    }
    const wait = Math.max(0, this.#lastStart + (this.#o.minGapMs ?? 2_000) - this.#now());
    this.#arm(wait, reason);
  }

  /** Stops the timer and waits for a running cycle. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending = undefined;
    await this.#running;
  }

  /** Resolves when no cycle is running (tests). */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  #interval(): number {
    const j = this.#o.jitter ?? 0.1;
    const r = this.#o.random ?? Math.random;
    return Math.max(1, this.#o.intervalMs() * (1 - j + 2 * j * r()));
  }

  #arm(ms: number, reason: string): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#run(reason);
    }, ms);
  }

  async #run(reason: string): Promise<void> {
    if (this.#stopped) return;
    if (this.#running) {
      this.#pending ??= reason;
      return;
    }
    this.#lastStart = this.#now();
    this.runs++;
    // The interval restarts at every cycle start (triggered cycles included).
    this.#arm(this.#interval(), "interval");
    this.#running = (async () => {
      try {
        await this.#o.cycle(reason);
      } catch (err) {
        this.#o.onError?.(err);
      }
    })();
    await this.#running;
    this.#running = undefined;
    if (this.#pending !== undefined && !this.#stopped) {
      const next = this.#pending;
      this.#pending = undefined;
      this.trigger(next);
    }
  }
}
