/**
 * A scripted StunTransport on a fake clock, for unit tests: recv(timeout) advances the clock to
 * the next scripted arrival or by the timeout. Replies are produced by `answer` per request.
 */
import type { Datagram, StunTransport } from "./transport.ts";

export interface Sent {
  at: number;
  dstIp: string;
  dstPort: number;
  payload: Uint8Array;
}

export class FakeClock {
  t = 1_000_000;
  now = () => this.t;
}

export class FakeTransport implements StunTransport {
  readonly sent: Sent[] = [];
  private inbox: Array<{ at: number; d: Datagram }> = [];
  closed = false;
  constructor(
    readonly clock: FakeClock,
    /** Called per request; returns datagrams to deliver after `delayMs`. */
    private readonly answer: (s: Sent, n: number) => Array<{ delayMs: number; d: Datagram }>,
    readonly mode: "raw" | "fallback" = "raw",
  ) {}
  async send(dstIp: string, dstPort: number, payload: Uint8Array): Promise<void> {
    const s = { at: this.clock.t, dstIp, dstPort, payload };
    this.sent.push(s);
    for (const a of this.answer(s, this.sent.length)) this.inbox.push({ at: this.clock.t + a.delayMs, d: a.d });
    this.inbox.sort((x, y) => x.at - y.at);
  }
  async recv(timeoutMs: number): Promise<Datagram | null> {
    const next = this.inbox[0];
    if (next && next.at <= this.clock.t + timeoutMs) {
      this.inbox.shift();
      this.clock.t = Math.max(this.clock.t, next.at);
      return next.d;
    }
    this.clock.t += timeoutMs;
    return null;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

/** Transaction id of a request sent through the fake. */
export function txidOf(s: Sent): Uint8Array {
  return s.payload.slice(8, 20);
}
