/**
 * wireguard-go UAPI client: one Unix-socket connection per request on
 * `<socketDir>/<ifname>.sock`, request text from uapi-codec.ts, reply read until the
 * terminating `errno=N` + empty line. Non-blocking (node:net), bounded by a timeout.
 */
import { createConnection } from "node:net";
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
}

const TRAILER = /\nerrno=-?\d{1,10}\n\n$/;

function isAbsent(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "ENOENT" || code === "ECONNREFUSED";
}

/** Talks UAPI to wireguard-go. */
export class UapiClient {
  readonly socketDir: string;
  readonly timeoutMs: number;

  constructor(opts: UapiClientOptions = {}) {
    this.socketDir = opts.socketDir ?? DEFAULT_SOCKET_DIR;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
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
