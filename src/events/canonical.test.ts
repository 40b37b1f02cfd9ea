import { describe, expect, test } from "bun:test";
import { canonicalIssuedAt, canonicalText, compactJsonSlice, encodeGoJsonString } from "./canonical.ts";

describe("encodeGoJsonString (Go encoding/json, HTML escaping)", () => {
  const cases: [string, string][] = [
    ["plain", '"plain"'],
    ['q"b\\s/', '"q\\"b\\\\s/"'],
    ["\b\f\n\r\t", '"\\b\\f\\n\\r\\t"'],
    ["\u0000\u0001\u001f\u000b", '"\\u0000\\u0001\\u001f\\u000b"'],
    ["a<b>&c", '"a\\u003cb\\u003e\\u0026c"'],
    ["\u2028\u2029", '"\\u2028\\u2029"'],
    ["é😀\u007f\u0080\ufeff", '"é😀\u007f\u0080\ufeff"'],
    ["", '""'],
  ];
  for (const [s, e] of cases) test(JSON.stringify(s), () => expect(encodeGoJsonString(s)).toBe(e));

  test("agrees with JSON.stringify apart from the HTML/line-separator escapes", () => {
    for (let c = 0; c < 0x3000; c++) {
      if (c >= 0xd800 && c <= 0xdfff) continue;
      const s = `x${String.fromCharCode(c)}y`;
      let expected = JSON.stringify(s);
      if (c === 0x3c || c === 0x3e || c === 0x26 || c === 0x2028 || c === 0x2029) {
        expected = `"x\\u${c.toString(16).padStart(4, "0")}y"`;
      }
      expect(encodeGoJsonString(s)).toBe(expected);
    }
  });
});

describe("canonicalIssuedAt (S3)", () => {
  const cases: [string, string][] = [
    ["2025-01-15T10:30:00Z", "2025-01-15T10:30:00Z"],
    ["2025-01-15T10:30:00.000Z", "2025-01-15T10:30:00Z"],
    ["2025-01-15T10:30:00.0Z", "2025-01-15T10:30:00Z"],
    ["2025-01-15T12:30:00.500+02:00", "2025-01-15T12:30:00.5+02:00"],
    ["2025-01-15T10:30:00+00:00", "2025-01-15T10:30:00Z"],
    ["2025-01-15T10:30:00-00:00", "2025-01-15T10:30:00Z"],
    ["2025-01-15T10:30:00.1-05:30", "2025-01-15T10:30:00.1-05:30"],
    ["2025-01-15T10:30:00.12Z", "2025-01-15T10:30:00.12Z"],
    ["2025-01-15T10:30:00.123Z", "2025-01-15T10:30:00.123Z"],
    ["2025-01-15T10:30:00.1234Z", "2025-01-15T10:30:00.1234Z"],
    ["2025-01-15T10:30:00.12345Z", "2025-01-15T10:30:00.12345Z"],
    ["2025-01-15T10:30:00.123456Z", "2025-01-15T10:30:00.123456Z"],
    ["2025-01-15T10:30:00.1234567Z", "2025-01-15T10:30:00.1234567Z"],
    ["2025-01-15T10:30:00.12345678Z", "2025-01-15T10:30:00.12345678Z"],
    ["2025-01-15T10:30:00.123456789Z", "2025-01-15T10:30:00.123456789Z"],
    ["2025-01-15T10:30:00.1234567891Z", "2025-01-15T10:30:00.123456789Z"],
    ["2025-01-15T10:30:00.000000000999Z", "2025-01-15T10:30:00Z"],
    ["2025-01-15T10:30:00.120000000+14:00", "2025-01-15T10:30:00.12+14:00"],
  ];
  for (const [i, o] of cases) test(`${i} → ${o}`, () => expect(canonicalIssuedAt(i)).toBe(o));
  for (const bad of ["2025-01-15T10:30:00.Z", "2025-01-15T10:30:00", "2025-01-15 10:30:00Z", "x"]) {
    test(`rejects ${bad}`, () => expect(canonicalIssuedAt(bad)).toBeUndefined());
  }
});

describe("compactJsonSlice (P)", () => {
  const c = (s: string): string => compactJsonSlice(s, 0, s.length);
  test("removes whitespace outside strings only", () => {
    expect(c('{ "a b" :\t[ 1 ,\r\n 2 ] , "c" : " x " }')).toBe('{"a b":[1,2],"c":" x "}');
  });
  test("escapes raw <, >, &, U+2028, U+2029 inside strings; keeps existing escapes", () => {
    expect(c('{"u":"a<b>&c\u2028\u2029","e":"\\u003c\\"<\\\\&\\/"}')).toBe(
      '{"u":"a\\u003cb\\u003e\\u0026c\\u2028\\u2029","e":"\\u003c\\"\\u003c\\\\\\u0026\\/"}',
    );
    // a key is a string literal too
    expect(c('{"<k>":1}')).toBe('{"\\u003ck\\u003e":1}');
  });
  test("preserves numbers, literals, order, duplicates, non-ASCII", () => {
    const s = '{"b":1.0,"a":1e3,"10":-0,"2":1E+2,"b":[true,false,null],"é":"😀"}';
    expect(c(s)).toBe(s);
  });
  test("returns the slice itself when nothing changes, and respects bounds", () => {
    expect(c("null")).toBe("null");
    const t = 'xx{ "a" : 1 }yy';
    expect(compactJsonSlice(t, 2, 13)).toBe('{"a":1}');
    expect(c('"<"')).toBe('"\\u003c"');
  });
});

test("canonicalText layout", () => {
  expect(
    canonicalText({ eventType: "t<", eventId: "i", issuedAt: "2025-01-15T10:30:00Z", nonce: "n\n", payload: "null" }),
  ).toBe('{"event_type":"t\\u003c","event_id":"i","issued_at":"2025-01-15T10:30:00Z","nonce":"n\\n","payload":null}');
});
