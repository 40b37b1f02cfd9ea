import { describe, expect, test } from "bun:test";
import { SseParser, type SseItem } from "./sse.ts";
import { seededRandom } from "./testing.ts";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

function parseAll(input: Uint8Array | string, chunks?: number[], max?: number): SseItem[] {
  const bytes = typeof input === "string" ? enc(input) : input;
  const p = new SseParser(max !== undefined ? { maxEventBytes: max } : {});
  const out: SseItem[] = [];
  if (chunks === undefined) return p.push(bytes);
  let pos = 0;
  for (const c of chunks) {
    out.push(...p.push(bytes.subarray(pos, pos + c)));
    pos += c;
  }
  out.push(...p.push(bytes.subarray(pos)));
  return out;
}

const ev = (data: string, extra: Partial<{ event: string; id: string; lastEventId: string }> = {}) => ({
  type: "event",
  data,
  event: extra.event,
  id: extra.id,
  lastEventId: extra.lastEventId ?? "",
});

describe("SseParser framing", () => {
  test("data, multi-line join, field value space rule", () => {
    const items = parseAll("data: a\ndata:b\ndata:  c\ndata\n\n");
    expect(items).toMatchObject([ev("a\nb\n c\n")]);
    expect((items[0] as { dataBytes: number }).dataBytes).toBe(7);
  });

  test("LF, CR and CRLF line ends, mixed", () => {
    expect(parseAll("data: 1\r\rdata: 2\r\n\r\ndata: 3\n\ndata: 4\r\n\n")).toMatchObject([ev("1"), ev("2"), ev("3"), ev("4")]);
  });

  test("leading BOM stripped once; a later BOM is data", () => {
    expect(parseAll("\ufeffdata: x\n\n")).toMatchObject([ev("x")]);
    expect(parseAll("\ufeff\ufeffdata: x\n\n")).toEqual([]); // second BOM makes the field name unknown
    expect(parseAll("data: \ufeffx\n\n")).toMatchObject([ev("\ufeffx")]);
    expect(parseAll(Uint8Array.from([0xef, 0xbb, 0x64, 0x61, 0x0a]))).toEqual([]); // partial BOM is data
  });

  test("comments and unknown fields are ignored", () => {
    expect(parseAll(": keep-alive\n:\nfoo: bar\ndata: x\n: mid\n\n")).toMatchObject([ev("x")]);
  });

  test("event and id fields; id persists as lastEventId; NUL ids ignored; empty id resets", () => {
    const items = parseAll(
      "event: peer_added\nid: 7\ndata: a\n\ndata: b\n\nid: 8\u0000x\ndata: c\n\nid\ndata: d\n\nid: 9\n\ndata: e\n\n",
    );
    expect(items).toMatchObject([
      ev("a", { event: "peer_added", id: "7", lastEventId: "7" }),
      ev("b", { lastEventId: "7" }),
      ev("c", { lastEventId: "7" }),
      ev("d", { id: "", lastEventId: "" }),
      ev("e", { lastEventId: "9" }),
    ]);
    expect((items[1] as { id?: string }).id).toBeUndefined();
  });

  test("retry: digits only, reported in order", () => {
    expect(parseAll("retry: 2500\nretry: 1x\nretry:\nretry: -1\ndata: a\n\nretry:10\n")).toEqual([
      { type: "retry", ms: 2500 },
      expect.objectContaining(ev("a")) as never,
      { type: "retry", ms: 10 },
    ]);
  });

  test("dispatch needs a data field; empty data value dispatches an empty event", () => {
    expect(parseAll("event: x\n\n\n\n")).toEqual([]);
    expect(parseAll("data:\n\n")).toMatchObject([ev("")]);
    expect(parseAll("data\n\n")).toMatchObject([ev("")]);
  });

  test("event type does not leak into the next block", () => {
    expect(parseAll("event: a\ndata: 1\n\ndata: 2\n\n")).toMatchObject([ev("1", { event: "a" }), ev("2")]);
  });

  test("an incomplete event at end of stream is never dispatched", () => {
    const p = new SseParser();
    expect(p.push(enc("data: a\n\ndata: b\n"))).toHaveLength(1);
    p.end();
    expect(p.push(enc("\n"))).toEqual([]);
  });

  test("invalid UTF-8 becomes U+FFFD; multi-byte characters survive", () => {
    const bytes = Uint8Array.from([...enc("data: é😀"), 0xff, 0xe2, 0x82, ...enc("\n\n")]);
    expect(parseAll(bytes)).toMatchObject([ev("é😀\ufffd\ufffd")]);
  });
});

describe("SseParser size limit", () => {
  test("exactly the limit is accepted; one byte more is an oversize marker", () => {
    expect(parseAll(`data: ${"x".repeat(10)}\n\n`, undefined, 10)).toMatchObject([ev("x".repeat(10))]);
    expect(parseAll(`data: ${"x".repeat(5)}\ndata: ${"y".repeat(4)}\n\n`, undefined, 10)).toMatchObject([
      ev(`${"x".repeat(5)}\n${"y".repeat(4)}`),
    ]);
    expect(parseAll(`id: 3\nevent: e\ndata: ${"x".repeat(5)}\ndata: ${"y".repeat(5)}\n\ndata: ok\n\n`, undefined, 10)).toMatchObject([
      { type: "oversize", id: "3", event: "e", lastEventId: "3" },
      ev("ok", { lastEventId: "3" }),
    ]);
  });

  test("a huge single line across many chunks is discarded without buffering it", () => {
    const p = new SseParser({ maxEventBytes: 1024 });
    const out: SseItem[] = [];
    out.push(...p.push(enc("id: 42\ndata: ")));
    const block = new Uint8Array(64 * 1024).fill(0x61);
    for (let i = 0; i < 160; i++) out.push(...p.push(block)); // 10 MiB
    out.push(...p.push(enc("\n\ndata: next\n\n")));
    expect(out).toMatchObject([{ type: "oversize", id: "42" }, ev("next", { lastEventId: "42" })]);
    expect((out[0] as { bytesSeen: number }).bytesSeen).toBeGreaterThan(1024);
  });

  test("a huge comment is skipped without an oversize marker", () => {
    const p = new SseParser({ maxEventBytes: 100 });
    const out = [...p.push(enc(`:${"c".repeat(500)}`)), ...p.push(enc(`${"c".repeat(500)}\ndata: x\n\n`))];
    expect(out).toMatchObject([ev("x")]);
  });

  test("constructor validates", () => {
    expect(() => new SseParser({ maxEventBytes: 0 })).toThrow(RangeError);
  });
});

describe("SseParser random chunk splits (fixed seed)", () => {
  const stream =
    "\ufeff: hello\r\nretry: 1500\r\n" +
    "event: peer_added\r\nid: 1\r\ndata: {\"a\":\"é😀\u2028\"}\r\n\r\n" +
    "data: line1\rdata: line2\r\r" +
    "id: 2\ndata: 日本語\ndata:\n\n" +
    ": ping\n\n\nid: x\u0000y\nevent: e\ndata:  spaced\r\n\r\n" +
    `data: ${"z".repeat(300)}\n\n` +
    "data: tail";
  const bytes = enc(stream);
  const reference = parseAll(bytes);

  test("reference parse is what the spec says", () => {
    expect(reference).toMatchObject([
      { type: "retry", ms: 1500 },
      ev('{"a":"é😀\u2028"}', { event: "peer_added", id: "1", lastEventId: "1" }),
      ev("line1\nline2", { lastEventId: "1" }),
      ev("日本語\n", { id: "2", lastEventId: "2" }),
      ev(" spaced", { event: "e", lastEventId: "2" }),
      ev("z".repeat(300), { lastEventId: "2" }),
    ]);
    expect(reference).toHaveLength(6);
  });

  test("1-byte chunks", () => {
    expect(parseAll(bytes, Array(bytes.length).fill(1))).toEqual(reference);
  });

  test("every split point (two chunks)", () => {
    for (let i = 0; i <= bytes.length; i++) expect(parseAll(bytes, [i])).toEqual(reference);
  });

  test("2000 random splittings", () => {
    const r = seededRandom(0x5ee);
    for (let k = 0; k < 2000; k++) {
      const chunks: number[] = [];
      let left = bytes.length;
      while (left > 0) {
        const c = Math.min(left, Math.floor(r() * 12));
        chunks.push(c);
        left -= c;
      }
      expect(parseAll(bytes, chunks)).toEqual(reference);
    }
  });

  test("chunk buffers reused by the caller do not corrupt pending lines", () => {
    const p = new SseParser();
    const buf = new Uint8Array(3);
    const out: SseItem[] = [];
    for (let i = 0; i < bytes.length; i += 3) {
      const n = Math.min(3, bytes.length - i);
      buf.set(bytes.subarray(i, i + n));
      out.push(...p.push(buf.subarray(0, n)));
      buf.fill(0);
    }
    expect(out).toEqual(reference);
  });
});
