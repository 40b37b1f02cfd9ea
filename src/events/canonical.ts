/**
 * The canonical byte string an envelope signature covers (protocol.md §8.1):
 *
 *   {"event_type":S1,"event_id":S2,"issued_at":S3,"nonce":S4,"payload":P}
 *
 * Strings are built in UTF-16 and encoded to UTF-8 once at the end; see json-tokenizer.ts for
 * why code-unit slicing equals byte slicing here.
 */
import { parseRfc3339 } from "../util/duration.ts";

// Characters Go's encoding/json (HTML escaping on) does not emit raw.
const NEEDS_ESCAPE = /["\\\u0000-\u001f<>&\u2028\u2029]/;
const HEX = "0123456789abcdef";

/**
 * Encodes a decoded string value as Go `encoding/json` does with HTML escaping (S1, S2, S4):
 * `\"`, `\\`, `\b \f \n \r \t`, other C0 controls as `\u00xx` (lowercase hex), `<`, `>`, `&`,
 * U+2028, U+2029 as `\u003c` … `\u2029`; everything else raw (no `\/`).
 * The input must be well-formed UTF-16 (the tokenizer guarantees it).
 */
export function encodeGoJsonString(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return `"${s}"`;
  let out = '"';
  let run = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let rep: string | undefined;
    if (c < 0x20) {
      switch (c) {
        case 0x08:
          rep = "\\b";
          break;
        case 0x0c:
          rep = "\\f";
          break;
        case 0x0a:
          rep = "\\n";
          break;
        case 0x0d:
          rep = "\\r";
          break;
        case 0x09:
          rep = "\\t";
          break;
        default:
          rep = `\\u00${HEX[c >> 4]}${HEX[c & 15]}`;
      }
    } else if (c === 0x22) rep = '\\"';
    else if (c === 0x5c) rep = "\\\\";
    else if (c === 0x3c) rep = "\\u003c";
    else if (c === 0x3e) rep = "\\u003e";
    else if (c === 0x26) rep = "\\u0026";
    else if (c === 0x2028) rep = "\\u2028";
    else if (c === 0x2029) rep = "\\u2029";
    if (rep !== undefined) {
      out += s.slice(run, i) + rep;
      run = i + 1;
    }
  }
  return `${out}${s.slice(run)}"`;
}

/**
 * S3: re-formats an `issued_at` value, keeping the wall clock and offset as written: fraction
 * cut to 9 digits and stripped of trailing zeros (dropped when zero), `Z` for a zero offset.
 * Returns undefined when the value is not `YYYY-MM-DDTHH:MM:SS[.F+](Z|±HH:MM)`.
 */
export function canonicalIssuedAt(raw: string): string | undefined {
  const t = parseRfc3339(raw);
  if (t === undefined) return undefined;
  return formatCanonicalIssuedAt(t.wall, t.fraction, t.offsetMinutes, t.offset);
}

/** S3 from already parsed fields (saves a second parse in the envelope path). */
export function formatCanonicalIssuedAt(
  wall: string,
  fraction: string,
  offsetMinutes: number,
  offset: string,
): string {
  let end = fraction.length;
  while (end > 0 && fraction.charCodeAt(end - 1) === 0x30) end--;
  const frac = end === 0 ? "" : `.${fraction.slice(0, end)}`;
  return `${wall}${frac}${offsetMinutes === 0 ? "Z" : offset}`;
}

/**
 * P: compacts the source slice `text[start, end)` of an already validated JSON value. Removes
 * 0x20/0x09/0x0A/0x0D outside string literals; inside literals keeps everything verbatim
 * (existing escapes included) except raw `<`, `>`, `&`, U+2028, U+2029, which become
 * `\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029`. Returns the slice itself when nothing changes.
 */
export function compactJsonSlice(text: string, start: number, end: number): string {
  let out = "";
  let run = start;
  let inString = false;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) {
        i++; // the escaped character is copied verbatim with its backslash
        continue;
      }
      if (c === 0x22) {
        inString = false;
        continue;
      }
      let rep: string | undefined;
      if (c === 0x3c) rep = "\\u003c";
      else if (c === 0x3e) rep = "\\u003e";
      else if (c === 0x26) rep = "\\u0026";
      else if (c === 0x2028) rep = "\\u2028";
      else if (c === 0x2029) rep = "\\u2029";
      if (rep !== undefined) {
        out += text.slice(run, i) + rep;
        run = i + 1;
      }
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
      out += text.slice(run, i);
      run = i + 1;
    }
  }
  if (run === start) return text.slice(start, end);
  return out + text.slice(run, end);
}

/** The five signed inputs, as decoded from the envelope. */
export interface CanonicalFields {
  readonly eventType: string;
  readonly eventId: string;
  /** Already canonical S3 (see {@link canonicalIssuedAt}). */
  readonly issuedAt: string;
  readonly nonce: string;
  /** Compacted payload text (P); `"null"` when the payload is absent. */
  readonly payload: string;
}

/** The canonical string (before UTF-8 encoding). */
export function canonicalText(f: CanonicalFields): string {
  return (
    `{"event_type":${encodeGoJsonString(f.eventType)},"event_id":${encodeGoJsonString(f.eventId)}` +
    `,"issued_at":"${f.issuedAt}","nonce":${encodeGoJsonString(f.nonce)},"payload":${f.payload}}`
  );
}

const encoder = new TextEncoder();

/** The canonical byte string that the Ed25519 signature covers. */
export function canonicalBytes(f: CanonicalFields): Uint8Array {
  return encoder.encode(canonicalText(f));
}
