/**
 * Strict RFC 8259 JSON scanner that reports source offsets instead of building values, so the
 * envelope can take the exact source text of `payload` (protocol.md §8.1: `JSON.parse` +
 * `JSON.stringify` would change numbers, key order and escapes).
 *
 * Offsets are UTF-16 code-unit indices into the JS string (the decoded SSE `data`). That is
 * equivalent to UTF-8 byte offsets for everything the canonical form does: a well-formed
 * string's UTF-8 encoding maps every code-unit slice boundary that falls between characters to
 * a byte boundary, and every character the compactor removes or replaces is a single code unit.
 * Well-formedness is enforced here: raw lone surrogates and lone surrogate escapes are errors.
 *
 * Nesting is handled with an explicit stack (no recursion), so deep input cannot overflow the
 * call stack; the only bound is the input size (SSE caps events at 1 MiB).
 */

/** JSON value kinds, as found at a value's first character. */
export type JsonKind = "object" | "array" | "string" | "number" | "true" | "false" | "null";

/** Stable codes of {@link JsonScanError}. */
export type JsonErrorCode =
  | "unexpected_end"
  | "unexpected_char"
  | "invalid_escape"
  | "lone_surrogate"
  | "control_character"
  | "invalid_number"
  | "duplicate_key"
  | "not_an_object"
  | "trailing_data";

/** A typed syntax rejection (never thrown by the scanner). */
export interface JsonScanError {
  readonly ok: false;
  readonly code: JsonErrorCode;
  /** Code-unit offset where the problem was detected. */
  readonly offset: number;
  readonly message: string;
}

/** One member of the top-level object. `start`/`end` delimit the value's source text. */
export interface JsonMember {
  /** Decoded member name. */
  readonly key: string;
  readonly keyOffset: number;
  readonly kind: JsonKind;
  /** First code unit of the value. */
  readonly start: number;
  /** One past the value's last code unit. */
  readonly end: number;
  /** Decoded value when `kind === "string"`. */
  readonly value?: string;
}

/** Successful scan of a top-level object. */
export interface JsonObjectScan {
  readonly ok: true;
  /** Members in source order (duplicates are an error, so names are unique). */
  readonly members: readonly JsonMember[];
  /** Members by decoded name. */
  readonly byKey: ReadonlyMap<string, JsonMember>;
}

/** Successful scan of one value. */
export interface JsonValueScan {
  readonly ok: true;
  readonly kind: JsonKind;
  readonly start: number;
  readonly end: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function err(code: JsonErrorCode, offset: number, what: string): JsonScanError {
  return { ok: false, code, offset, message: `${what} at offset ${offset}` };
}

function skipWs(t: string, i: number): number {
  const n = t.length;
  while (i < n) {
    const c = t.charCodeAt(i);
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
    else break;
  }
  return i;
}

function hex4(t: string, i: number): number {
  if (i + 4 > t.length) return -1;
  let v = 0;
  for (let k = 0; k < 4; k++) {
    const c = t.charCodeAt(i + k);
    let d: number;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if (c >= 0x61 && c <= 0x66) d = c - 0x57;
    else if (c >= 0x41 && c <= 0x46) d = c - 0x37;
    else return -1;
    v = (v << 4) | d;
  }
  return v;
}

const SIMPLE_ESCAPES: Record<number, string> = {
  0x22: '"',
  0x5c: "\\",
  0x2f: "/",
  0x62: "\b",
  0x66: "\f",
  0x6e: "\n",
  0x72: "\r",
  0x74: "\t",
};

/** Result of scanning a string literal: end offset (after the closing quote) and, if asked, the value. */
interface StringScan {
  end: number;
  value: string | undefined;
}

/**
 * Scans the string literal whose opening quote is at `i`. Decodes it when `decode` is set
 * (only member names and top-level string values need decoding).
 */
function scanString(t: string, i: number, decode: boolean): StringScan | JsonScanError {
  const n = t.length;
  let p = i + 1;
  let parts: string[] | undefined;
  let runStart = p;
  for (;;) {
    if (p >= n) return err("unexpected_end", p, "unterminated string");
    const c = t.charCodeAt(p);
    if (c === QUOTE) {
      let value: string | undefined;
      if (decode) {
        const tail = t.slice(runStart, p);
        value = parts === undefined ? tail : parts.join("") + tail;
      }
      return { end: p + 1, value };
    }
    if (c === BACKSLASH) {
      if (decode) (parts ??= []).push(t.slice(runStart, p));
      if (p + 1 >= n) return err("unexpected_end", p, "unterminated escape");
      const e = t.charCodeAt(p + 1);
      if (e === 0x75 /* u */) {
        const cu = hex4(t, p + 2);
        if (cu < 0) return err("invalid_escape", p, "invalid \\u escape");
        if (cu >= 0xdc00 && cu <= 0xdfff) return err("lone_surrogate", p, "lone low surrogate escape");
        if (cu >= 0xd800 && cu <= 0xdbff) {
          // A high surrogate escape must be followed directly by a low surrogate escape.
          const lo =
            t.charCodeAt(p + 6) === BACKSLASH && t.charCodeAt(p + 7) === 0x75 ? hex4(t, p + 8) : -1;
          if (lo < 0xdc00 || lo > 0xdfff) return err("lone_surrogate", p, "lone high surrogate escape");
          if (decode) parts!.push(String.fromCharCode(cu, lo));
          p += 12;
        } else {
          if (decode) parts!.push(String.fromCharCode(cu));
          p += 6;
        }
      } else {
        const s = SIMPLE_ESCAPES[e];
        if (s === undefined) return err("invalid_escape", p, "invalid escape");
        if (decode) parts!.push(s);
        p += 2;
      }
      runStart = p;
      continue;
    }
    if (c < 0x20) return err("control_character", p, "raw control character in string");
    if (c >= 0xd800 && c <= 0xdfff) {
      // Cannot come from a UTF-8 decoder; guard callers that hand us arbitrary strings.
      const next = t.charCodeAt(p + 1);
      if (c >= 0xdc00 || !(next >= 0xdc00 && next <= 0xdfff)) {
        return err("lone_surrogate", p, "lone surrogate");
      }
      p += 2;
      continue;
    }
    p++;
  }
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** Scans `-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?` at `i`; returns the end offset. */
function scanNumber(t: string, i: number): number | JsonScanError {
  let p = i;
  if (t.charCodeAt(p) === 0x2d) p++;
  const c = t.charCodeAt(p);
  if (c === 0x30) p++;
  else if (c >= 0x31 && c <= 0x39) {
    p++;
    while (isDigit(t.charCodeAt(p))) p++;
  } else return err("invalid_number", p, "invalid number");
  if (t.charCodeAt(p) === 0x2e) {
    p++;
    if (!isDigit(t.charCodeAt(p))) return err("invalid_number", p, "digit expected after '.'");
    while (isDigit(t.charCodeAt(p))) p++;
  }
  const e = t.charCodeAt(p);
  if (e === 0x65 || e === 0x45) {
    p++;
    const s = t.charCodeAt(p);
    if (s === 0x2b || s === 0x2d) p++;
    if (!isDigit(t.charCodeAt(p))) return err("invalid_number", p, "digit expected in exponent");
    while (isDigit(t.charCodeAt(p))) p++;
  }
  return p;
}

function kindAt(c: number): JsonKind | undefined {
  switch (c) {
    case 0x7b:
      return "object";
    case 0x5b:
      return "array";
    case QUOTE:
      return "string";
    case 0x74:
      return "true";
    case 0x66:
      return "false";
    case 0x6e:
      return "null";
    default:
      return c === 0x2d || isDigit(c) ? "number" : undefined;
  }
}

/** Scans a member name + `:` starting at `i` (whitespace already skipped); returns the value start. */
function scanKeyColon(t: string, i: number): number | JsonScanError {
  if (i >= t.length) return err("unexpected_end", i, "member name expected");
  if (t.charCodeAt(i) !== QUOTE) return err("unexpected_char", i, "member name expected");
  const k = scanString(t, i, false);
  if (!("end" in k)) return k;
  const j = skipWs(t, k.end);
  if (t.charCodeAt(j) !== 0x3a) return err(j >= t.length ? "unexpected_end" : "unexpected_char", j, "':' expected");
  return skipWs(t, j + 1);
}

const OBJ = 1;
const ARR = 2;

/**
 * Validates exactly one JSON value starting at `i` (no leading whitespace skipping) and returns
 * its kind and end offset. Nested objects may repeat member names (they are kept verbatim).
 */
export function scanValue(t: string, i: number): JsonValueScan | JsonScanError {
  const start = i;
  const n = t.length;
  if (i >= n) return err("unexpected_end", i, "value expected");
  const firstKind = kindAt(t.charCodeAt(i));
  if (firstKind === undefined) return err("unexpected_char", i, "value expected");
  const stack: number[] = [];
  for (;;) {
    // Expecting a value at i.
    if (i >= n) return err("unexpected_end", i, "value expected");
    const c = t.charCodeAt(i);
    if (c === 0x7b) {
      i = skipWs(t, i + 1);
      if (t.charCodeAt(i) === 0x7d) {
        i++;
      } else {
        const v = scanKeyColon(t, i);
        if (typeof v !== "number") return v;
        stack.push(OBJ);
        i = v;
        continue;
      }
    } else if (c === 0x5b) {
      i = skipWs(t, i + 1);
      if (t.charCodeAt(i) === 0x5d) {
        i++;
      } else {
        stack.push(ARR);
        continue;
      }
    } else if (c === QUOTE) {
      const s = scanString(t, i, false);
      if (!("end" in s)) return s;
      i = s.end;
    } else if (c === 0x74) {
      if (!t.startsWith("true", i)) return err("unexpected_char", i, "invalid literal");
      i += 4;
    } else if (c === 0x66) {
      if (!t.startsWith("false", i)) return err("unexpected_char", i, "invalid literal");
      i += 5;
    } else if (c === 0x6e) {
      if (!t.startsWith("null", i)) return err("unexpected_char", i, "invalid literal");
      i += 4;
    } else if (c === 0x2d || isDigit(c)) {
      const e = scanNumber(t, i);
      if (typeof e !== "number") return e;
      i = e;
    } else {
      return err("unexpected_char", i, "value expected");
    }
    // After a complete value: close containers or move to the next element.
    for (;;) {
      const top = stack[stack.length - 1];
      if (top === undefined) return { ok: true, kind: firstKind, start, end: i };
      i = skipWs(t, i);
      if (i >= n) return err("unexpected_end", i, "',' or closing bracket expected");
      const d = t.charCodeAt(i);
      if (d === 0x2c) {
        i = skipWs(t, i + 1);
        if (top === OBJ) {
          const v = scanKeyColon(t, i);
          if (typeof v !== "number") return v;
          i = v;
        }
        break;
      }
      if ((d === 0x7d && top === OBJ) || (d === 0x5d && top === ARR)) {
        stack.pop();
        i++;
        continue;
      }
      return err("unexpected_char", i, "',' or closing bracket expected");
    }
  }
}

/**
 * Scans a whole JSON text that must be one object (surrounding whitespace allowed) and returns
 * its members with decoded names, value offsets and decoded top-level string values.
 * A repeated member name (compared after decoding, case-sensitively) is `duplicate_key`.
 */
export function scanTopLevelObject(t: string): JsonObjectScan | JsonScanError {
  const n = t.length;
  let i = skipWs(t, 0);
  if (i >= n) return err("unexpected_end", i, "object expected");
  if (t.charCodeAt(i) !== 0x7b) return err("not_an_object", i, "top-level value is not an object");
  const members: JsonMember[] = [];
  const byKey = new Map<string, JsonMember>();
  i = skipWs(t, i + 1);
  if (t.charCodeAt(i) === 0x7d) {
    i++;
  } else {
    for (;;) {
      if (i >= n) return err("unexpected_end", i, "member name expected");
      if (t.charCodeAt(i) !== QUOTE) return err("unexpected_char", i, "member name expected");
      const keyOffset = i;
      const k = scanString(t, i, true);
      if (!("end" in k)) return k;
      const key = k.value as string;
      if (byKey.has(key)) return err("duplicate_key", keyOffset, `duplicate member ${JSON.stringify(key)}`);
      i = skipWs(t, k.end);
      if (t.charCodeAt(i) !== 0x3a) return err(i >= n ? "unexpected_end" : "unexpected_char", i, "':' expected");
      const start = skipWs(t, i + 1);
      let member: JsonMember;
      if (t.charCodeAt(start) === QUOTE) {
        const s = scanString(t, start, true);
        if (!("end" in s)) return s;
        member = { key, keyOffset, kind: "string", start, end: s.end, value: s.value };
      } else {
        const v = scanValue(t, start);
        if (!v.ok) return v;
        member = { key, keyOffset, kind: v.kind, start, end: v.end };
      }
      members.push(member);
      byKey.set(key, member);
      i = skipWs(t, member.end);
      const d = t.charCodeAt(i);
      if (d === 0x2c) {
        i = skipWs(t, i + 1);
        continue;
      }
      if (d === 0x7d) {
        i++;
        break;
      }
      return err(i >= n ? "unexpected_end" : "unexpected_char", i, "',' or '}' expected");
    }
  }
  i = skipWs(t, i);
  if (i !== n) return err("trailing_data", i, "data after the top-level object");
  return { ok: true, members, byKey };
}

// ---------------------------------------------------------------------------------------------
// Fast path for signed envelopes (docs/decisions.md "Journal": envelope parsing). One pass over
// the text that extracts the five signed string fields and the payload's source range, without
// building member objects. It is conservative: anything unusual (escapes in member names or in
// the signed string fields, a repeated member, a non-string signed field, any syntax error)
// returns `undefined` and the caller falls back to the full scanner above, which then decides
// and explains. So whenever this accepts, {@link scanTopLevelObject} accepts the same text with
// the same decoded values and offsets.

/** Fast-path scan of an envelope text; see {@link scanEnvelopeFast}. */
export interface EnvelopeFastScan {
  /** `event_type`, `event_id`, `issued_at`, `nonce`, `signature` (raw = decoded: no escapes). */
  readonly strings: readonly (string | undefined)[];
  /** Payload value source range; `start < 0` when absent. */
  readonly payloadStart: number;
  readonly payloadEnd: number;
  /**
   * True when the payload slice is already in canonical compact form (protocol.md §8.1 P): no
   * whitespace outside string literals and no raw `<`, `>`, `&`, U+2028, U+2029 inside them.
   */
  readonly payloadCompact: boolean;
}

/** Index of each signed string member in {@link EnvelopeFastScan.strings}. */
export const FAST_FIELDS = ["event_type", "event_id", "issued_at", "nonce", "signature"] as const;
const PAYLOAD_BIT = 1 << 5;

// Character classes of ASCII code units inside string literals.
const C_PLAIN = 0;
const C_QUOTE = 1;
const C_BACKSLASH = 2;
const C_CONTROL = 3;
const C_HTML = 4; // < > & : escaped by the canonical compaction
const STRING_CLASS = (() => {
  const t = new Uint8Array(128);
  for (let c = 0; c < 0x20; c++) t[c] = C_CONTROL;
  t[QUOTE] = C_QUOTE;
  t[BACKSLASH] = C_BACKSLASH;
  t[0x3c] = C_HTML;
  t[0x3e] = C_HTML;
  t[0x26] = C_HTML;
  return t;
})();

// Mutable state of one fast scan (module-level: scans are synchronous and never re-entered).
let dirty = false;

/**
 * Skips the string literal whose opening quote is at `i`; returns the offset after the closing
 * quote, or -1 (fall back). Sets `dirty` on characters the compaction would replace. With
 * `plain`, any escape or surrogate falls back too (member names and signed fields, whose
 * decoded value is then the raw slice).
 */
function skipString(t: string, i: number, n: number, plain: boolean): number {
  for (let p = i + 1; p < n; p++) {
    const c = t.charCodeAt(p);
    if (c < 128) {
      const k = STRING_CLASS[c]!;
      if (k === C_PLAIN) continue;
      if (k === C_QUOTE) return p + 1;
      if (k === C_HTML) {
        dirty = true;
        continue;
      }
      if (k === C_CONTROL || plain) return -1;
      // Backslash: a valid escape, copied verbatim by the compaction.
      const e = t.charCodeAt(p + 1);
      if (e === 0x75 /* u */) {
        const cu = hex4(t, p + 2);
        if (cu < 0 || (cu >= 0xd800 && cu <= 0xdfff)) return -1; // surrogate escapes: full scanner
        p += 5;
      } else if (e === QUOTE || e === BACKSLASH || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
        p += 1;
      } else return -1;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      if (plain || c >= 0xdc00) return -1;
      const next = t.charCodeAt(p + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return -1;
      p++;
    } else if (c === 0x2028 || c === 0x2029) {
      dirty = true;
    }
  }
  return -1;
}

function skipWsDirty(t: string, i: number, n: number): number {
  const j = skipWs(t, i);
  if (j !== i) dirty = true;
  return j;
}

/**
 * Validates one JSON value at `i` like {@link scanValue} (nested duplicate names allowed) and
 * returns its end offset, or -1 (fall back). Whitespace inside it sets `dirty`.
 */
function skipValue(t: string, i: number, n: number): number {
  let depth = 0;
  // Container kinds by depth as bits (1 = object); deeper than 31 levels: full scanner.
  let objBits = 0;
  for (;;) {
    if (i >= n) return -1;
    const c = t.charCodeAt(i);
    if (c === QUOTE) {
      i = skipString(t, i, n, false);
      if (i < 0) return -1;
    } else if (c === 0x7b || c === 0x5b) {
      i = skipWsDirty(t, i + 1, n);
      const close = c === 0x7b ? 0x7d : 0x5d;
      if (t.charCodeAt(i) === close) {
        i++;
      } else {
        if (depth === 31) return -1;
        objBits = c === 0x7b ? objBits | (1 << depth) : objBits & ~(1 << depth);
        depth++;
        if (c === 0x7b) {
          i = skipMemberName(t, i, n);
          if (i < 0) return -1;
        }
        continue;
      }
    } else if (c === 0x74) {
      if (!t.startsWith("true", i)) return -1;
      i += 4;
    } else if (c === 0x66) {
      if (!t.startsWith("false", i)) return -1;
      i += 5;
    } else if (c === 0x6e) {
      if (!t.startsWith("null", i)) return -1;
      i += 4;
    } else if (c === 0x2d || isDigit(c)) {
      const e = scanNumber(t, i);
      if (typeof e !== "number") return -1;
      i = e;
    } else return -1;
    // After a complete value: close containers or move to the next element.
    for (;;) {
      if (depth === 0) return i;
      const inObj = (objBits & (1 << (depth - 1))) !== 0;
      i = skipWsDirty(t, i, n);
      const d = t.charCodeAt(i);
      if (d === 0x2c) {
        i = skipWsDirty(t, i + 1, n);
        if (inObj) {
          i = skipMemberName(t, i, n);
          if (i < 0) return -1;
        }
        break;
      }
      if ((d === 0x7d && inObj) || (d === 0x5d && !inObj)) {
        depth--;
        i++;
        continue;
      }
      return -1;
    }
  }
}

/** A nested member name and its `:`; returns the value start or -1. */
function skipMemberName(t: string, i: number, n: number): number {
  if (t.charCodeAt(i) !== QUOTE) return -1;
  const e = skipString(t, i, n, false);
  if (e < 0) return -1;
  const j = skipWsDirty(t, e, n);
  if (t.charCodeAt(j) !== 0x3a) return -1;
  return skipWsDirty(t, j + 1, n);
}

/** Which known top-level member the name at `[s, e)` (no escapes) is: bit index, or -1. */
function knownMember(t: string, s: number, e: number): number {
  switch (e - s) {
    case 10:
      return t.startsWith("event_type", s) ? 0 : -1;
    case 8:
      return t.startsWith("event_id", s) ? 1 : -1;
    case 9:
      return t.startsWith("issued_at", s) ? 2 : t.startsWith("signature", s) ? 4 : -1;
    case 5:
      return t.startsWith("nonce", s) ? 3 : -1;
    case 7:
      return t.startsWith("payload", s) ? 5 : -1;
    default:
      return -1;
  }
}

/**
 * One-pass scan of an envelope text (see the section comment). Returns undefined whenever the
 * full scanner must decide: the caller then runs {@link scanTopLevelObject}.
 */
export function scanEnvelopeFast(t: string): EnvelopeFastScan | undefined {
  const n = t.length;
  let i = skipWs(t, 0);
  if (t.charCodeAt(i) !== 0x7b) return undefined;
  const strings: (string | undefined)[] = [undefined, undefined, undefined, undefined, undefined];
  let seen = 0;
  let others: Set<string> | undefined;
  let payloadStart = -1;
  let payloadEnd = -1;
  let payloadCompact = true;
  i = skipWs(t, i + 1);
  if (t.charCodeAt(i) === 0x7d) return undefined; // empty object: missing fields, full scanner explains
  for (;;) {
    if (t.charCodeAt(i) !== QUOTE) return undefined;
    const ke = skipString(t, i, n, true);
    if (ke < 0) return undefined;
    const m = knownMember(t, i + 1, ke - 1);
    if (m >= 0) {
      if ((seen & (1 << m)) !== 0) return undefined;
      seen |= 1 << m;
    } else {
      const name = t.slice(i + 1, ke - 1);
      others ??= new Set();
      if (others.has(name)) return undefined;
      others.add(name);
    }
    i = skipWs(t, ke);
    if (t.charCodeAt(i) !== 0x3a) return undefined;
    const vs = skipWs(t, i + 1);
    let ve: number;
    if (m >= 0 && m < 5) {
      if (t.charCodeAt(vs) !== QUOTE) return undefined;
      ve = skipString(t, vs, n, true);
      if (ve < 0) return undefined;
      strings[m] = t.slice(vs + 1, ve - 1);
    } else {
      dirty = false;
      ve = skipValue(t, vs, n);
      if (ve < 0) return undefined;
      if (m === 5) {
        payloadStart = vs;
        payloadEnd = ve;
        payloadCompact = !dirty;
      }
    }
    i = skipWs(t, ve);
    const d = t.charCodeAt(i);
    if (d === 0x2c) {
      i = skipWs(t, i + 1);
      continue;
    }
    if (d === 0x7d) break;
    return undefined;
  }
  if (skipWs(t, i + 1) !== n) return undefined;
  if ((seen & PAYLOAD_BIT) === 0) payloadCompact = true;
  return { strings, payloadStart, payloadEnd, payloadCompact };
}
