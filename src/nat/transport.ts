/**
 * How STUN requests leave the host (lifecycle.md §5.1):
 *  - `raw`: the addon's raw IPv4/UDP socket — requests carry source port = mesh listen port
 *    although WireGuard owns it, so the answer is the mapping the NAT keeps for WireGuard;
 *  - `fallback`: an ephemeral node:dgram socket when the raw socket is not allowed (no
 *    CAP_NET_RAW) — only the mapped IP is meaningful then.
 */
import { createSocket, type Socket } from "node:dgram";
import type { NativeAddon, RawUdpHandle } from "../kernel/addon-api.ts";
import { isNativeError } from "../kernel/errors.ts";

/** One received datagram. */
export interface Datagram {
  srcIp: string;
  srcPort: number;
  payload: Uint8Array;
}

/** A socket STUN transactions run over. One transaction at a time. */
export interface StunTransport {
  readonly mode: "raw" | "fallback";
  send(dstIp: string, dstPort: number, payload: Uint8Array): Promise<void>;
  /** Next datagram within timeoutMs, or null. */
  recv(timeoutMs: number): Promise<Datagram | null>;
  close(): Promise<void>;
}

/** Errors of transport opening that mean "not permitted": the caller falls back. */
const NOT_PERMITTED = ["EPERM", "EACCES"];

/** Raw transport over the addon (see addon-api.ts `rawUdpOpen`). */
export class RawTransport implements StunTransport {
  readonly mode = "raw" as const;
  private closed = false;
  private constructor(
    private readonly addon: NativeAddon,
    private readonly handle: RawUdpHandle,
    private readonly listenPort: number,
  ) {}

  /** Opens the raw socket for `listenPort`; rejects with the addon's NativeError (EPERM …). */
  static async open(addon: NativeAddon, listenPort: number): Promise<RawTransport> {
    return new RawTransport(addon, await addon.rawUdpOpen(listenPort), listenPort);
  }

  send(dstIp: string, dstPort: number, payload: Uint8Array): Promise<void> {
    return this.addon.rawUdpSend(this.handle, this.listenPort, dstIp, dstPort, payload);
  }

  async recv(timeoutMs: number): Promise<Datagram | null> {
    if (this.closed) return null;
    try {
      return await this.addon.rawUdpRecv(this.handle, Math.max(0, Math.min(60_000, Math.ceil(timeoutMs))));
    } catch (err) {
      if (isNativeError(err, "ECANCELED")) return null;
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.addon.rawUdpClose(this.handle);
  }
}

/** Ephemeral UDP socket (node:dgram): no privileges, but the mapped port is not WireGuard's. */
export class DgramTransport implements StunTransport {
  readonly mode = "fallback" as const;
  private readonly queue: Datagram[] = [];
  private waiter: ((d: Datagram | null) => void) | null = null;
  private closed = false;

  private constructor(private readonly sock: Socket) {
    sock.on("message", (msg, rinfo) => {
      const d = { srcIp: rinfo.address, srcPort: rinfo.port, payload: new Uint8Array(msg) };
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = null;
        w(d);
      } else if (this.queue.length < 64) {
        this.queue.push(d);
      }
    });
    // Errors (ICMP unreachable surfaced as ECONNREFUSED …) only mean "no answer from there".
    sock.on("error", () => undefined);
  }

  /** Binds 0.0.0.0:0 (or `bindAddress`). */
  static open(bindAddress = "0.0.0.0"): Promise<DgramTransport> {
    return new Promise((resolve, reject) => {
      const sock = createSocket({ type: "udp4" });
      sock.once("error", reject);
      sock.bind(0, bindAddress, () => {
        sock.off("error", reject);
        resolve(new DgramTransport(sock));
      });
    });
  }

  send(dstIp: string, dstPort: number, payload: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => this.sock.send(payload, dstPort, dstIp, (err) => (err ? reject(err) : resolve())));
  }

  recv(timeoutMs: number): Promise<Datagram | null> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        resolve(null);
      }, Math.max(0, timeoutMs));
      this.waiter = (d) => {
        clearTimeout(timer);
        resolve(d);
      };
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const w = this.waiter;
    this.waiter = null;
    w?.(null);
    await new Promise<void>((resolve) => this.sock.close(() => resolve()));
  }
}

/** Why the fallback was used (for the `nat` indicator and logs). */
export interface OpenedTransport {
  transport: StunTransport;
  /** Set when the raw socket could not be opened. */
  fallbackReason?: string;
}

/**
 * Raw socket when the addon allows it, else the dgram fallback. Only "not permitted" (and a
 * missing addon) fall back; any other raw-socket failure is a bug or a broken host and rejects.
 */
export async function openStunTransport(addon: NativeAddon | null, listenPort: number): Promise<OpenedTransport> {
  if (addon === null || typeof addon.rawUdpOpen !== "function") {
    return { transport: await DgramTransport.open(), fallbackReason: "native addon without raw UDP support" };
  }
  try {
    return { transport: await RawTransport.open(addon, listenPort) };
  } catch (err) {
    if (!isNativeError(err, ...NOT_PERMITTED)) throw err;
    return { transport: await DgramTransport.open(), fallbackReason: `raw socket not permitted (${err.code}): no CAP_NET_RAW` };
  }
}
