import { describe, expect, test } from "bun:test";
import { scanTopLevelObject, scanValue } from "./json-tokenizer.ts";
import { seededRandom, V1, V2 } from "./testing.ts";

describe("scanTopLevelObject", () => {
  test("members, decoded names and values, exact value slices", () => {
    const t = ' { "a" : 1.0e3 , "b\\u0022":"x\\ny" ,"c":{"k":[1,{"k":2}],"k":null},"d":true} ';
    const r = scanTopLevelObject(t);
    if (!r.ok) throw new Error(r.message);
    expect(r.members.map((m) => m.key)).toEqual(["a", 'b"', "c", "d"]);
    expect(r.members.map((m) => m.kind)).toEqual(["number", "string", "object", "true"]);
    expect(r.members.map((m) => t.slice(m.start, m.end))).toEqual([
      "1.0e3",
      '"x\\ny"',
      '{"k":[1,{"k":2}],"k":null}',
      "true",
    ]);
    expect(r.byKey.get('b"')?.value).toBe("x\ny");
    expect(r.byKey.get("a")?.keyOffset).toBe(3);
  });

  test("V1 and V2 payload slices", () => {
    for (const [v, slice] of [
      [V1, '{"peer_id":"n_peer456"}'],
      [V2, '{ "metadata": { "url": "https://x.example/?a=1&b=<2>" }, "data": [ ] }'],
    ] as const) {
      const r = scanTopLevelObject(v);
      if (!r.ok) throw new Error(r.message);
      const p = r.byKey.get("payload")!;
      expect(v.slice(p.start, p.end)).toBe(slice);
    }
  });

  test("empty object, surrogate pairs, non-ASCII", () => {
    expect(scanTopLevelObject("{}").ok).toBe(true);
    const r = scanTopLevelObject('{"e":"\\ud83d\\ude00 😀 é \u2028"}');
    if (!r.ok) throw new Error(r.message);
    expect(r.byKey.get("e")?.value).toBe("😀 😀 é \u2028");
  });

  const rejects: [string, string][] = [
    ['{"a":1,"a":2}', "duplicate_key"],
    ['{"a":1,"\\u0061":2}', "duplicate_key"],
    ['{"a":"\\ud800"}', "lone_surrogate"],
    ['{"a":"\\udc00"}', "lone_surrogate"],
    ['{"a":"\\ud800\\u0041"}', "lone_surrogate"],
    ['{"a":{"b":"x\\udfff"}}', "lone_surrogate"],
    ['{"a":"\ud800"}', "lone_surrogate"],
    ['{"a":"\udc00x"}', "lone_surrogate"],
    ['{"a":"\\x"}', "invalid_escape"],
    ['{"a":"\\u12g4"}', "invalid_escape"],
    ['{"a":"\t"}', "control_character"],
    ['{"a":01}', "unexpected_char"],
    ['{"a":1.}', "invalid_number"],
    ['{"a":.5}', "unexpected_char"],
    ['{"a":1e}', "invalid_number"],
    ['{"a":-}', "invalid_number"],
    ['{"a":+1}', "unexpected_char"],
    ['{"a":tru}', "unexpected_char"],
    ['{"a":NaN}', "unexpected_char"],
    ['{"a":[1,]}', "unexpected_char"],
    ['{"a":1,}', "unexpected_char"],
    ['{"a" 1}', "unexpected_char"],
    ["{'a':1}", "unexpected_char"],
    ['{"a":[1}', "unexpected_char"],
    ['{"a":{"b":1]}', "unexpected_char"],
    ['{"a":1', "unexpected_end"],
    ['{"a":"x', "unexpected_end"],
    ["", "unexpected_end"],
    ["[1]", "not_an_object"],
    ['"x"', "not_an_object"],
    ['{"a":1} x', "trailing_data"],
    ['{"a":1}{}', "trailing_data"],
    ['\ufeff{"a":1}', "not_an_object"],
    ['{"a":1}\u00a0', "trailing_data"],
  ];
  for (const [t, code] of rejects) {
    test(`rejects ${JSON.stringify(t)} as ${code}`, () => {
      const r = scanTopLevelObject(t);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.code).toBe(code as never);
        expect(r.message).toContain("offset");
      }
    });
  }

  test("nested duplicate keys are preserved, not rejected", () => {
    expect(scanTopLevelObject('{"p":{"k":1,"k":2}}').ok).toBe(true);
  });

  test("deep nesting does not overflow the stack", () => {
    const depth = 200_000;
    const t = `{"p":${"[".repeat(depth)}${"]".repeat(depth)}}`;
    expect(scanTopLevelObject(t).ok).toBe(true);
    expect(scanTopLevelObject(`{"p":${"[".repeat(depth)}}`).ok).toBe(false);
  });
});

describe("scanValue", () => {
  test("scalars and end offsets", () => {
    for (const [t, kind, end] of [
      ["0", "number", 1],
      ["-0.5E+10,", "number", 8],
      ['"a\\"b" ', "string", 6],
      ["null]", "null", 4],
      ["false", "false", 5],
      ["[ ]", "array", 3],
      ["{ }", "object", 3],
    ] as const) {
      const r = scanValue(t, 0);
      if (!r.ok) throw new Error(`${t}: ${r.message}`);
      expect([r.kind, r.end]).toEqual([kind, end]);
    }
    expect(scanValue(" 1", 0).ok).toBe(false);
  });
});

// Differential check against JSON.parse over generated documents: the scanner must agree on
// validity, except for what it rejects on purpose (lone surrogates, duplicate top-level keys).
function genValue(r: () => number, depth: number): string {
  const k = Math.floor(r() * (depth > 3 ? 5 : 8));
  const ws = () => [" ", "", "\n", "\t", "\r\n ", ""][Math.floor(r() * 6)]!;
  switch (k) {
    case 0:
      return ["0", "-1", "1.5", "1e3", "-0.0E-2", "123456789012345678901234567890"][Math.floor(r() * 6)]!;
    case 1:
      return ["true", "false", "null"][Math.floor(r() * 3)]!;
    case 2:
    case 3:
      return JSON.stringify(["", "a<b>&c", "é😀", "\u2028\u2029", 'q"\\/', "\u0001\n"][Math.floor(r() * 6)]);
    case 4:
      return '"\\u00e9\\/\\b\\f\\n\\r\\t\\ud83d\\ude00"';
    case 5:
    case 6: {
      const n = Math.floor(r() * 4);
      const items = Array.from({ length: n }, () => ws() + genValue(r, depth + 1) + ws());
      return `[${items.join(",")}]`;
    }
    default: {
      const n = Math.floor(r() * 4);
      const items = Array.from({ length: n }, (_, i) => `${ws()}"k${i % 2}"${ws()}:${ws()}${genValue(r, depth + 1)}`);
      return `{${items.join(",")}}`;
    }
  }
}

function jsonParseOk(t: string): boolean {
  try {
    const v = JSON.parse(t);
    return typeof v === "object" && v !== null && !Array.isArray(v);
  } catch {
    return false;
  }
}

describe("fuzz", () => {
  test("generated documents, truncations and byte mutations agree with JSON.parse and never throw", () => {
    const r = seededRandom(20250115);
    const alphabet = '{}[]:,"\\ \n0123456789-+.eEtruefalsnul\u2028😀\ud800';
    let checked = 0;
    for (let i = 0; i < 3000; i++) {
      const members = Array.from({ length: 1 + Math.floor(r() * 4) }, (_, j) => `"m${j}":${genValue(r, 0)}`);
      const doc = `{${members.join(",")}}`;
      const variants = [doc, doc.slice(0, Math.floor(r() * doc.length))];
      for (let m = 0; m < 3; m++) {
        const pos = Math.floor(r() * doc.length);
        const c = alphabet[Math.floor(r() * alphabet.length)]!;
        variants.push(doc.slice(0, pos) + c + doc.slice(pos + 1));
        variants.push(doc.slice(0, pos) + doc.slice(pos + 1));
      }
      for (const v of variants) {
        const res = scanTopLevelObject(v); // must not throw
        const expected = jsonParseOk(v);
        if (res.ok) {
          expect(expected).toBe(true);
        } else if (expected && res.code !== "lone_surrogate" && res.code !== "duplicate_key") {
          throw new Error(`scanner rejected valid JSON ${JSON.stringify(v)}: ${res.message}`);
        }
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(20_000);
  });
});
