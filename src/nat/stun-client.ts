/**
 * One STUN binding transaction against one server (lifecycle.md §5.2): retransmit at 0, 500 and
 * 1500 ms, give up after `timeoutMs`; accept only a 0x0101 for our transaction from the server's
 * address and port. Plus `host[:port]` parsing and per-cycle IPv4 resolution.
 */
import { lookup } from "node:dns/promises";
import { isIPv4 } from "node:net";
import { encodeBindingRequest, newTransactionId, parseBindingResponse, type MappedAddress } from "./stun-codec.ts";
import type { StunTransport } from "./transport.ts";

/** Default STUN port. */
export const STUN_DEFAULT_PORT = 3478;
/** Send times of the request, ms after the transaction start. */
export const RETRANSMIT_SCHEDULE_MS = [0, 500, 1500] as const;

/** A configured server. */
export interface StunServer {
  /** As configured, for logs and state. */
  text: string;
  host: string;
  port: number;
}

/** Parses `host[:port]` (default port 3478). IPv6 literals are refused (IPv4 only in v1). */
export function parseStunServer(text: string): StunServer | { error: string } {
  const t = text.trim();
  if (t === "") return { error: "empty STUN server" };
  if (t.startsWith("[") || (t.match(/:/g) ?? []).length > 1) return { error: `IPv6 STUN server not supported in v1: ${t}` };
  const i = t.lastIndexOf(":");
  const host = i < 0 ? t : t.slice(0, i);
  const portText = i < 0 ? "" : t.slice(i + 1);
  if (!/^[A-Za-z0-9._-]{1,253}$/.test(host)) return { error: `bad STUN host: ${t}` };
  let port = STUN_DEFAULT_PORT;
  if (i >= 0) {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) return { error: `bad STUN port: ${t}` };
    port = Number(portText);
  }
  return { text: t, host, port };
}

/** Resolves a host to one IPv4 address (literals pass through). */
export type ResolveV4 = (host: string) => Promise<string>;

/** Default resolver: getaddrinfo, IPv4 only, first answer. */
export const resolveV4: ResolveV4 = async (host) => {
  if (isIPv4(host)) return host;
  const r = await lookup(host, { family: 4 });
  return r.address;
};

/** Result of {@link bindingTransaction}. */
export type TransactionResult =
  | { ok: true; mapped: MappedAddress; rttMs: number }
  | { ok: false; reason: "timeout" | "error_response" | "invalid_response" | "send_failed"; detail: string };

/** Options of {@link bindingTransaction}. */
export interface TransactionOptions {
  /** Give up after this long (`nat_traversal.timeout`). */
  timeoutMs: number;
  /** Retransmit schedule, default 0/500/1500 ms. */
  schedule?: readonly number[];
  /** Monotonic-enough clock (ms); default Date.now. */
  now?: () => number;
  /** Transaction id source (tests). */
  txid?: Uint8Array;
  /** Abort (agent stop). */
  signal?: AbortSignal;
}

/**
 * Runs one binding transaction with `server` (already resolved to `ip`:`port`) over `transport`.
 * Never throws for network trouble; a send failure on the first attempt ends the transaction.
 */
export async function bindingTransaction(transport: StunTransport, ip: string, port: number, opts: TransactionOptions): Promise<TransactionResult> {
  const now = opts.now ?? Date.now;
  const schedule = opts.schedule ?? RETRANSMIT_SCHEDULE_MS;
  const txid = opts.txid ?? newTransactionId();
  const request = encodeBindingRequest(txid);
  const start = now();
  const deadline = start + opts.timeoutMs;
  let next = 0; // index into schedule
  let sent = 0;
  let lastSendError = "";

  while (!opts.signal?.aborted) {
    const t = now();
    if (t >= deadline) break;
    while (next < schedule.length && t - start >= (schedule[next] ?? 0)) {
      next++;
      try {
        await transport.send(ip, port, request);
        sent++;
      } catch (err) {
        // EHOSTUNREACH / ENETUNREACH now may clear before the next attempt (route flap).
        lastSendError = (err as Error).message;
      }
    }
    const wakeAt = Math.min(deadline, next < schedule.length ? start + (schedule[next] ?? 0) : deadline);
    const d = await transport.recv(Math.max(1, wakeAt - now()));
    if (d === null) continue;
    if (d.srcIp !== ip || d.srcPort !== port) continue; // not from this server
    const p = parseBindingResponse(d.payload, txid);
    switch (p.kind) {
      case "ignore":
        continue;
      case "success":
        return { ok: true, mapped: p.address, rttMs: now() - start };
      case "error":
        return { ok: false, reason: "error_response", detail: `STUN error ${p.code ?? "?"} ${p.reason}`.trim() };
      case "invalid":
        return { ok: false, reason: "invalid_response", detail: p.reason };
    }
  }
  if (sent === 0 && lastSendError) return { ok: false, reason: "send_failed", detail: lastSendError };
  return { ok: false, reason: "timeout", detail: opts.signal?.aborted ? "aborted" : `no answer within ${opts.timeoutMs} ms` };
}
