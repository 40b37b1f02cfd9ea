/**
 * The signer's half of protocol.md §8.1: Go-style JSON string encoding, payload compaction and
 * the canonical issued_at form. The CP serialises payloads itself, so the exact bytes it signs
 * are the bytes it sends.
 */

const HTML_ESCAPES: Record<string, string> = {
  "<": "\\u003c",
  ">": "\\u003e",
  "&": "\\u0026",
  "\u2028": "\\u2028",
  "\u2029": "\\u2029",
};

/** Encodes a string like Go encoding/json with HTML escaping. Throws on lone surrogates. */
export function goJsonString(s: string): string {
  if (!s.isWellFormed()) throw new Error("string contains a lone surrogate");
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) as number;
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (c === 0x08) out += "\\b";
    else if (c === 0x0c) out += "\\f";
    else if (c === 0x0a) out += "\\n";
    else if (c === 0x0d) out += "\\r";
    else if (c === 0x09) out += "\\t";
    else if (c < 0x20) out += "\\u00" + c.toString(16).padStart(2, "0");
    else out += HTML_ESCAPES[ch] ?? ch;
  }
  return out + '"';
}

/**
 * Compacts JSON text per §8.1 P: whitespace outside string literals removed, string contents kept
 * verbatim except raw `<`,`>`,`&`,U+2028,U+2029 which are escaped. The input must be valid JSON.
 */
export function compactPayload(text: string): string {
  let out = "";
  let inString = false;
  let escaped = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (inString) {
      if (escaped) {
        escaped = false;
        out += ch;
      } else if (ch === "\\") {
        escaped = true;
        out += ch;
      } else if (ch === '"') {
        inString = false;
        out += ch;
      } else {
        out += HTML_ESCAPES[ch] ?? ch;
      }
    } else if (ch === '"') {
      inString = true;
      out += ch;
    } else if (ch !== " " && ch !== "\t" && ch !== "\n" && ch !== "\r") {
      out += ch;
    }
  }
  return out;
}

/** Serialises a JS value as payload text P (JSON.stringify + HTML escaping inside strings). */
export function payloadText(value: unknown): string {
  return compactPayload(JSON.stringify(value ?? null));
}

const ISSUED_AT = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/;

/** The canonical issued_at form of §8.1 S3; undefined when the input is not accepted. */
export function canonicalIssuedAt(text: string): string | undefined {
  const m = ISSUED_AT.exec(text);
  if (!m) return undefined;
  const frac = (m[2] ?? "").slice(0, 9).replace(/0+$/, "");
  const off = m[3] as string;
  const zone = off === "Z" || off === "+00:00" || off === "-00:00" ? "Z" : off;
  return `${m[1]}${frac ? "." + frac : ""}${zone}`;
}

/** The canonical byte string that is signed (§8.1), as text. */
export function canonicalString(f: {
  eventType: string;
  eventId: string;
  issuedAt: string;
  nonce: string;
  payloadText: string;
}): string {
  const issued = canonicalIssuedAt(f.issuedAt);
  if (issued === undefined) throw new Error(`issued_at not RFC 3339: ${f.issuedAt}`);
  return (
    `{"event_type":${goJsonString(f.eventType)},"event_id":${goJsonString(f.eventId)},` +
    `"issued_at":${goJsonString(issued)},"nonce":${goJsonString(f.nonce)},"payload":${f.payloadText}}`
  );
}
