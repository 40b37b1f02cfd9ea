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
