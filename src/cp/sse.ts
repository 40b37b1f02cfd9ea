/**
 * SSE stream of one node: replays the event log after Last-Event-ID, then follows live events.
 * A `:` comment goes out every keepalive interval. Delivery reads the log by cursor, so replay
 * and live events can neither overlap nor leave a gap (all of it runs on one JS thread).
 */
import type { EventLog, Subscriber } from "./events.ts";

export interface SseOptions {
  keepaliveMs: number;
  /** True while fault injection stalls this node's streams (nothing at all is written). */
  stalled: () => boolean;
}

const enc = new TextEncoder();

/** SSE wire form of one stored event; multi-line data becomes several `data:` lines. */
export function frame(eventId: string, eventType: string, data: string): string {
  const lines = data.split(/\r\n|\r|\n/).map((l) => `data: ${l}\n`).join("");
  return `id: ${eventId}\nevent: ${eventType}\n${lines}\n`;
}

/** Builds the streaming response. */
export function sseResponse(log: EventLog, nodeId: string, afterSeq: number, opts: SseOptions): Response {
  let cursor = afterSeq;
  let closed = false;
  let timer: ReturnType<typeof setInterval> | undefined;
  let sub: Subscriber | undefined;

  const cleanup = () => {
    closed = true;
    if (timer) clearInterval(timer);
    if (sub) log.unsubscribe(nodeId, sub);
  };

  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      const write = (text: string) => {
        if (closed) return;
        try {
          controller.enqueue(enc.encode(text));
        } catch {
          cleanup();
        }
      };
      const pump = () => {
        while (!closed && !opts.stalled()) {
          const batch = log.after(nodeId, cursor, 200);
          if (batch.length === 0) return;
          for (const ev of batch) {
            write(frame(ev.eventId, ev.eventType, ev.data));
            cursor = ev.seq;
          }
        }
      };
      sub = {
        wake: pump,
        close: () => {
          if (closed) return;
          cleanup();
          try {
            controller.close();
          } catch {
            /* already closed by the client */
          }
        },
      };
      log.subscribe(nodeId, sub);
      timer = setInterval(() => {
        if (opts.stalled()) return;
        write(":\n\n");
        pump();
      }, opts.keepaliveMs);
      // A first comment flushes the headers at once, so clients see 200 before any event.
      if (!opts.stalled()) write(": connected\n\n");
      pump();
    },
    cancel() {
      cleanup();
    },
  });

  return new Response(stream, {
    status: 200,
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      "x-accel-buffering": "no",
    },
  });
}
