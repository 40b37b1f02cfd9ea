/**
 * Streaming W3C EventSource framing (protocol.md §7; HTML "server-sent events" parsing).
 *
 * Works on bytes: line terminators (CR, LF, CRLF) are ASCII and never occur inside a multi-byte
 * UTF-8 sequence, so lines are split before decoding and each complete line is decoded on its
 * own (invalid UTF-8 → U+FFFD, as the W3C decoder does). That makes chunk boundaries anywhere
 * harmless — inside a CRLF pair, inside a character, inside the BOM — and lets the size limit
 * count real bytes. Nothing is buffered beyond `maxEventBytes` (+ a field name): a longer line
 * or a larger data buffer is dropped and the event is reported as an `oversize` marker.
 */

/** A dispatched event. */
export interface SseMessage {
  readonly type: "event";
  /** `event:` field; undefined when the block had none (W3C would call it "message"). */
  readonly event: string | undefined;
  /** Data lines joined with `\n`. */
  readonly data: string;
  /** UTF-8 bytes of `data`. */
  readonly dataBytes: number;
  /** `id:` field of this block (without NUL); undefined when the block had none. */
  readonly id: string | undefined;
  /** W3C last event ID buffer at dispatch (persists across blocks). */
  readonly lastEventId: string;
}

/** An event whose data exceeded the limit; its data was discarded while reading. */
export interface SseOversize {
  readonly type: "oversize";
  readonly event: string | undefined;
  readonly id: string | undefined;
  readonly lastEventId: string;
  /** Bytes counted before discarding started (at least the limit + 1). */
  readonly bytesSeen: number;
}

/** A `retry:` field (decimal milliseconds), reported when read. */
export interface SseRetry {
  readonly type: "retry";
  readonly ms: number;
}

/** Everything {@link SseParser.push} can yield, in stream order. */
export type SseItem = SseMessage | SseOversize | SseRetry;

/** Options of {@link SseParser}. */
export interface SseParserOptions {
  /** Largest event data, UTF-8 bytes (default 1 MiB). */
  readonly maxEventBytes?: number;
}

const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;
const SPACE = 0x20;
const BOM = [0xef, 0xbb, 0xbf] as const;
// Longest field prefix we still need to see in a line that is otherwise over the limit.
const FIELD_SLACK = 16;

const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

function fieldIs(line: Uint8Array, end: number, name: string): boolean {
  if (end !== name.length) return false;
  for (let i = 0; i < end; i++) if (line[i] !== name.charCodeAt(i)) return false;
  return true;
}

/** Incremental parser for one connection (create a new one per connection). */
export class SseParser {
  readonly #max: number;
  #bomMatched = 0;
  #bomCheck = true;
  #skipLF = false;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #discardLine = false;
  // Current event block.
  #data: string[] = [];
  #dataBytes = 0;
  #event: string | undefined;
  #id: string | undefined;
  #oversize = false;
  #lastEventId = "";

  constructor(o: SseParserOptions = {}) {
    const max = o.maxEventBytes ?? 1 << 20;
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`maxEventBytes must be a positive integer, got ${max}`);
    this.#max = max;
  }

  /** W3C last event ID buffer. */
  get lastEventId(): string {
    return this.#lastEventId;
  }

  /** Feeds one chunk; returns the items it completed. */
  push(input: Uint8Array): SseItem[] {
    const out: SseItem[] = [];
    let chunk = input;
    if (this.#bomCheck) {
      let matched = this.#bomMatched;
      let p = 0;
      while (matched < 3 && p < chunk.length && chunk[p] === BOM[matched]) {
        matched++;
        p++;
      }
      if (matched === 3) {
        this.#bomCheck = false;
        chunk = chunk.subarray(p);
      } else if (p === chunk.length) {
        this.#bomMatched = matched; // still a BOM prefix; decide with the next chunk
        return out;
      } else {
        // Not a BOM: the bytes held back were data.
        this.#bomCheck = false;
        if (matched > 0) {
          const joined = new Uint8Array(matched + chunk.length - p);
          joined.set(BOM.slice(0, matched), 0);
          joined.set(chunk.subarray(p), matched);
          chunk = joined;
        }
      }
    }
    const n = chunk.length;
    let i = 0;
    if (this.#skipLF && n > 0) {
      this.#skipLF = false;
      if (chunk[0] === LF) i = 1;
    }
    let nextLF = -2;
    let nextCR = -2;
    while (i < n) {
      if (nextLF !== -1 && nextLF < i) nextLF = chunk.indexOf(LF, i);
      if (nextCR !== -1 && nextCR < i) nextCR = chunk.indexOf(CR, i);
      const j = nextLF === -1 ? nextCR : nextCR === -1 ? nextLF : Math.min(nextLF, nextCR);
      if (j === -1) {
        this.#appendPending(chunk.subarray(i));
        break;
      }
      this.#endLine(out, chunk.subarray(i, j));
      if (chunk[j] === CR) {
        if (j + 1 < n) i = chunk[j + 1] === LF ? j + 2 : j + 1;
        else {
          this.#skipLF = true; // a CRLF pair may be split across chunks
          i = n;
        }
      } else i = j + 1;
    }
    return out;
  }

  /**
   * End of stream: an incomplete event is discarded (W3C). The parser may be reused only for a
   * new stream after this.
   */
  end(): void {
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#discardLine = false;
    this.#resetBlock();
  }

  #appendPending(part: Uint8Array): void {
    if (part.length === 0 || this.#discardLine) return;
    if (this.#pendingBytes + part.length > this.#max + FIELD_SLACK) {
      // Too long for any acceptable line: keep nothing, drop the rest of the line, and mark the
      // event unless the line is a comment (keep-alives must never be able to grow memory).
      const first = this.#pendingBytes > 0 ? this.#pending[0]![0] : part[0];
      if (first !== COLON) {
        this.#oversize = true;
        this.#dataBytes += this.#pendingBytes + part.length;
        this.#data = [];
      }
      this.#pending = [];
      this.#pendingBytes = 0;
      this.#discardLine = true;
      return;
    }
    // Chunks are views into buffers the caller may reuse: copy.
    this.#pending.push(part.slice());
    this.#pendingBytes += part.length;
  }

  #takeLine(): Uint8Array {
    const parts = this.#pending;
    let line: Uint8Array;
    if (parts.length === 1) line = parts[0]!;
    else if (parts.length === 0) line = new Uint8Array(0);
    else {
      line = new Uint8Array(this.#pendingBytes);
      let o = 0;
      for (const p of parts) {
        line.set(p, o);
        o += p.length;
      }
    }
    this.#pending = [];
    this.#pendingBytes = 0;
    return line;
  }

  /** Completes the current line with `tail` (a view into the caller's chunk, used synchronously). */
  #endLine(out: SseItem[], tail: Uint8Array): void {
    let line: Uint8Array;
    if (this.#pendingBytes === 0 && !this.#discardLine && tail.length <= this.#max + FIELD_SLACK) {
      line = tail; // common case: the whole line is inside this chunk, no copy
    } else {
      this.#appendPending(tail);
      if (this.#discardLine) {
        this.#discardLine = false;
        return;
      }
      line = this.#takeLine();
    }
    if (line.length === 0) {
      this.#dispatch(out);
      return;
    }
    if (line[0] === COLON) return; // comment / keep-alive
    let colon = line.indexOf(COLON);
    let vs: number;
    if (colon === -1) {
      colon = line.length;
      vs = line.length;
    } else {
      vs = colon + 1;
      if (line[vs] === SPACE) vs++;
    }
    if (fieldIs(line, colon, "data")) {
      if (this.#oversize) return;
      const bytes = line.length - vs;
      // Joined size: every line after the first adds a "\n".
      const total = this.#dataBytes + bytes + (this.#data.length > 0 ? 1 : 0);
      if (total > this.#max) {
        this.#oversize = true;
        this.#dataBytes = total;
        this.#data = [];
        return;
      }
      this.#dataBytes = total;
      this.#data.push(decoder.decode(line.subarray(vs)));
    } else if (fieldIs(line, colon, "event")) {
      this.#event = decoder.decode(line.subarray(vs));
    } else if (fieldIs(line, colon, "id")) {
      const id = decoder.decode(line.subarray(vs));
      if (!id.includes("\0")) {
        this.#id = id;
        this.#lastEventId = id;
      }
    } else if (fieldIs(line, colon, "retry")) {
      let ok = vs < line.length;
      for (let k = vs; k < line.length; k++) if (line[k]! < 0x30 || line[k]! > 0x39) ok = false;
      if (ok) out.push({ type: "retry", ms: Number(decoder.decode(line.subarray(vs))) });
    }
    // Unknown fields are ignored.
  }

  #dispatch(out: SseItem[]): void {
    if (this.#oversize) {
      out.push({
        type: "oversize",
        event: this.#event,
        id: this.#id,
        lastEventId: this.#lastEventId,
        bytesSeen: this.#dataBytes,
      });
    } else if (this.#data.length > 0) {
      out.push({
        type: "event",
        event: this.#event,
        data: this.#data.length === 1 ? this.#data[0]! : this.#data.join("\n"),
        dataBytes: this.#dataBytes,
        id: this.#id,
        lastEventId: this.#lastEventId,
      });
    }
    this.#resetBlock();
  }

  #resetBlock(): void {
    this.#data = [];
    this.#dataBytes = 0;
    this.#event = undefined;
    this.#id = undefined;
    this.#oversize = false;
  }
}
