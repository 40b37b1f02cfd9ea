/**
 * wireguard-go UAPI client on `<socketDir>/<ifname>.sock`: request text from uapi-codec.ts,
 * reply read until the terminating `errno=N` + empty line. Non-blocking (node:net), bounded by
 * a timeout.
 *
 * Connections: wireguard-go serves any number of requests on one connection, in order, so by
 * default (`persistent`) one connection per interface is kept and requests are queued on it —
 * connect + accept is half the cost of a one-peer write (≈ 0.25 of 0.5 ms). A connection is
 * dropped after an error reply (wireguard-go may have left part of a failed `set` unread), a
 * timeout or any socket error; a request on a REUSED connection that died before any reply byte
 * arrived is sent once more on a fresh one (wireguard-go restarted in between; every request we
 * send is idempotent).
 */
import { createConnection, type Socket } from "node:net";
import { checkIfname, KernelError } from "./kernel-error.ts";
import type { WgDevice, WgSet } from "./types.ts";
import { buildGet, buildSet, parseGet, parseSetReply } from "./uapi-codec.ts";

/** Where wireguard-go puts its sockets (shared by all network namespaces, platform-notes). */
export const DEFAULT_SOCKET_DIR = "/var/run/wireguard";

/** Options of UapiClient. */
export interface UapiClientOptions {
  /** Default "/var/run/wireguard". */
  socketDir?: string;
  /** Per-request limit, default 30 000 ms (a 5,000-peer set takes well under a second). */
  timeoutMs?: number;
  /** Keep one connection per interface [true]; false = one connection per request. */
  persistent?: boolean;
}

/** One kept connection and the request in flight on it. */
interface Conn {
  readonly sock: Socket;
  closed: boolean;
  reply: string;
  waiter: ((err: unknown, reply?: string) => void) | null;
}

/** The connection died before any reply byte: safe to send again on a fresh one. */
class StaleConnection extends KernelError {}

const TRAILER = /\nerrno=-?\d{1,10}\n\n$/;

function isAbsent(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "ENOENT" || code === "ECONNREFUSED";
}

/** Talks UAPI to wireguard-go. */
export class UapiClient {
  readonly socketDir: string;
  readonly timeoutMs: number;
  readonly persistent: boolean;
  readonly #conns = new Map<string, Conn>();
  readonly #queues = new Map<string, Promise<unknown>>();

  constructor(opts: UapiClientOptions = {}) {
    this.socketDir = opts.socketDir ?? DEFAULT_SOCKET_DIR;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.persistent = opts.persistent ?? true;
    if (!Number.isFinite(this.timeoutMs) || this.timeoutMs <= 0) {
      throw new KernelError("INVALID_ARGUMENT", `UapiClient: timeoutMs must be > 0, got ${opts.timeoutMs}`);
    }
  }

  /** Path of the UAPI socket of `ifname`. */
  socketPath(ifname: string): string {
    checkIfname(ifname);
    return `${this.socketDir}/${ifname}.sock`;
  }

  /** Sends one request and returns the raw reply text (through the errno trailer). */
  request(ifname: string, text: string): Promise<string> {
    const path = this.socketPath(ifname);
    if (!this.persistent) return this.#requestOnce(path, text);
    // One request at a time per connection: wireguard-go answers in order.
    const prev = this.#queues.get(path) ?? Promise.resolve();
    const run = prev.then(
      () => this.#requestKept(path, text),
      () => this.#requestKept(path, text),
    );
    const tail = run.catch(() => undefined);
    this.#queues.set(path, tail);
    void tail.then(() => {
      if (this.#queues.get(path) === tail) this.#queues.delete(path);
    });
    return run;
  }

  /** Closes kept connections (all, or the one of `ifname`). */
  closeConnections(ifname?: string): void {
    for (const [path, c] of this.#conns) {
      if (ifname !== undefined && path !== this.socketPath(ifname)) continue;
      this.#drop(path, c);
    }
  }

  #drop(path: string, c: Conn): void {
    c.closed = true;
    if (this.#conns.get(path) === c) this.#conns.delete(path);
    c.sock.destroy();
  }

  #connect(path: string): Promise<Conn> {
    return new Promise<Conn>((resolve, reject) => {
      const sock = createConnection({ path });
      sock.setEncoding("utf8");
      const c: Conn = { sock, closed: false, reply: "", waiter: null };
      let connected = false;
      sock.on("connect", () => {
        connected = true;
        // An idle kept connection must not keep a finished process alive.
        sock.unref();
        this.#conns.set(path, c);
        resolve(c);
      });
      sock.on("data", (chunk: string) => {
        c.reply += chunk;
        if (!c.waiter || !TRAILER.test(c.reply.length > 64 ? c.reply.slice(-64) : `\n${c.reply}`)) return;
        const reply = c.reply;
        c.reply = "";
        // After an error reply wireguard-go may have part of the request unread: start fresh.
        if (!reply.endsWith("\nerrno=0\n\n") && reply !== "errno=0\n\n") this.#drop(path, c);
        const w = c.waiter;
        c.waiter = null;
        w(null, reply);
      });
      const fail = (err: unknown) => {
        const nothing = c.reply === "";
        const w = c.waiter;
        c.waiter = null;
        this.#drop(path, c);
        if (!connected) reject(err);
        else if (w) {
          const msg = `UAPI ${path}: connection closed before the reply ended (${c.reply.length} bytes)`;
          w(nothing ? new StaleConnection("UAPI_IO", msg, { cause: err }) : (err ?? new KernelError("UAPI_IO", msg)));
        }
      };
      sock.on("error", (err) => fail(err));
      sock.on("close", () => fail(null));
    });
  }

  async #requestKept(path: string, text: string, retry = true): Promise<string> {
    let c = this.#conns.get(path);
    const reused = c !== undefined && !c.closed;
    if (!c || c.closed) c = await this.#connect(path);
    const conn = c;
    try {
      return await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => {
          conn.waiter = null;
          this.#drop(path, conn);
          reject(new KernelError("UAPI_IO", `UAPI ${path}: no reply within ${this.timeoutMs} ms`));
        }, this.timeoutMs);
        conn.reply = "";
        conn.waiter = (err, reply) => {
          clearTimeout(timer);
          if (err) reject(err);
          else resolve(reply ?? "");
        };
        conn.sock.write(text);
      });
    } catch (err) {
      if (retry && reused && err instanceof StaleConnection) return this.#requestKept(path, text, false);
      throw err;
    }
  }

  #requestOnce(path: string, text: string): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      let reply = "";
      let done = false;
      const sock = createConnection({ path });
      sock.setEncoding("utf8");
      const finish = (err: unknown, value?: string) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        sock.destroy();
        if (err) reject(err);
        else resolve(value ?? "");
      };
      const timer = setTimeout(
        () => finish(new KernelError("UAPI_IO", `UAPI ${path}: no reply within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      sock.on("connect", () => sock.write(text));
      sock.on("data", (chunk: string) => {
        reply += chunk;
        // Only the tail can hold the trailer; avoid rescanning megabytes of peers per chunk.
        if (TRAILER.test(reply.length > 64 ? reply.slice(-64) : `\n${reply}`)) finish(null, reply);
      });
      sock.on("error", (err) => finish(err));
      sock.on("close", () =>
        finish(new KernelError("UAPI_IO", `UAPI ${path}: connection closed before the reply ended (${reply.length} bytes)`)),
      );
    });
  }

  /** Reads the device; null when no wireguard-go serves `ifname`. */
  async get(ifname: string): Promise<WgDevice | null> {
    let text: string;
    try {
      text = await this.request(ifname, buildGet());
    } catch (err) {
      if (isAbsent(err)) return null;
      throw err;
    }
    return parseGet(text, ifname);
  }

  /** Writes a set; throws UapiError on errno != 0, KernelError NO_DEVICE when nothing listens. */
  async set(ifname: string, set: WgSet): Promise<void> {
    const body = buildSet(set);
    let text: string;
    try {
      text = await this.request(ifname, body);
    } catch (err) {
      if (isAbsent(err)) throw new KernelError("NO_DEVICE", `no wireguard-go for ${ifname}`, { cause: err });
      throw err;
    }
    parseSetReply(text);
  }
}
