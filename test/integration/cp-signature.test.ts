/**
 * Signature tests: every event the CP emits must verify under an INDEPENDENT implementation of
 * protocol.md §8.1 written here (byte-offset scanner + own escaping), never the CP's own code.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createPublicKey, verify } from "node:crypto";
import { admin, registerNode, startCp, type CpProc, type TestNode } from "./cp-harness.ts";

// ---- independent canonical form --------------------------------------------------------------

/** End index of the JSON value starting at i (i at its first non-space char). */
function skipValue(t: string, i: number): number {
  const c = t[i];
  if (c === '"') {
    i++;
    while (t[i] !== '"') i += t[i] === "\\" ? 2 : 1;
    return i + 1;
  }
  if (c === "{" || c === "[") {
    let depth = 0;
    for (;;) {
      const ch = t[i];
      if (ch === '"') {
        i = skipValue(t, i);
        continue;
      }
      if (ch === "{" || ch === "[") depth++;
      if (ch === "}" || ch === "]") depth--;
      i++;
      if (depth === 0) return i;
    }
  }
  while (i < t.length && !",}] \t\r\n".includes(t[i] as string)) i++;
  return i;
}
const ws = (t: string, i: number) => {
  while (" \t\r\n".includes(t[i] as string)) i++;
  return i;
};

/** Top-level members of an object as raw source slices. */
function members(t: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = ws(t, 0);
  if (t[i] !== "{") throw new Error("not an object");
  i = ws(t, i + 1);
  while (t[i] !== "}") {
    const kEnd = skipValue(t, i);
    const key = JSON.parse(t.slice(i, kEnd)) as string;
    i = ws(t, kEnd);
    if (t[i] !== ":") throw new Error("colon expected");
    i = ws(t, i + 1);
    const vEnd = skipValue(t, i);
    if (out.has(key)) throw new Error("duplicate member");
    out.set(key, t.slice(i, vEnd));
    i = ws(t, vEnd);
    if (t[i] === ",") i = ws(t, i + 1);
  }
  return out;
}

const SPECIAL: Record<number, string> = { 8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r", 34: '\\"', 92: "\\\\", 0x3c: "\\u003c", 0x3e: "\\u003e", 0x26: "\\u0026", 0x2028: "\\u2028", 0x2029: "\\u2029" };
function goString(s: string): string {
  const parts: string[] = [];
  for (let k = 0; k < s.length; k++) {
    const code = s.charCodeAt(k);
    parts.push(SPECIAL[code] ?? (code < 0x20 ? "\\u" + code.toString(16).padStart(4, "0") : s[k] as string));
  }
  return `"${parts.join("")}"`;
}
function compact(p: string): string {
  let out = "";
  let str = false;
  for (let k = 0; k < p.length; k++) {
    const ch = p[k] as string;
    if (!str) {
      if (ch === '"') str = true;
      if (!" \t\r\n".includes(ch)) out += ch;
      continue;
    }
    if (ch === "\\") {
      out += ch + p[k + 1];
      k++;
    } else {
      if (ch === '"') str = false;
      out += ({ "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029" } as Record<string, string>)[ch] ?? ch;
    }
  }
  return out;
}
function issued(s: string): string {
  const m = /^(.{19})(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(s);
  if (!m) throw new Error(`bad issued_at ${s}`);
  let f = (m[2] ?? "").slice(0, 9);
  while (f.endsWith("0")) f = f.slice(0, -1);
  const z = ["Z", "+00:00", "-00:00"].includes(m[3] as string) ? "Z" : m[3];
  return m[1] + (f ? "." + f : "") + z;
}
/** Canonical string of an envelope's data text. */
function canonical(data: string): string {
  const m = members(data);
  const s = (k: string) => goString(JSON.parse(m.get(k) as string) as string);
  return `{"event_type":${s("event_type")},"event_id":${s("event_id")},"issued_at":${goString(issued(JSON.parse(m.get("issued_at") as string)))},"nonce":${s("nonce")},"payload":${compact(m.get("payload") ?? "null")}}`;
}
const pub = (b64: string) => createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(b64, "base64").toString("base64url") }, format: "jwk" });
function verifies(data: string, keyB64: string): boolean {
  const sig = Buffer.from(JSON.parse(members(data).get("signature") as string) as string, "base64");
  return sig.length === 64 && verify(null, Buffer.from(canonical(data), "utf8"), pub(keyB64), sig);
}

// ---- tests -----------------------------------------------------------------------------------

let cp: CpProc;
let n: TestNode;
beforeAll(async () => {
  cp = await startCp({ faults: true });
  n = await registerNode(cp);
});
afterAll(async () => {
  await cp?.cleanup();
});

async function custom(body: Record<string, unknown>) {
  const r = await admin(cp, "POST", `/admin/nodes/${n.node_id}/events`, body);
  expect(r.status).toBe(201);
  return r.json as { data: string; event_id: string };
}

describe("independent verifier self-check", () => {
  test("reproduces protocol.md §8.3 V1 and V2", () => {
    const key = "ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=";
    const v1 = '{"event_type":"peer_removed","event_id":"evt_0001","issued_at":"2025-01-15T10:30:00Z","nonce":"bm9uY2UtMDAwMQ==","payload":{"peer_id":"n_peer456"},"signature":"I1QpaouIcfNfS2NWgTxmY5gI5RUA3gSJOGAqhaR7aND9IhmIFlZCH6Q7uWhH639Qai+hbPffR/EixlDBqQUpAA=="}';
    const v2 = '{"signature":"l5LBeHTIJpk+8AaRArT4TFLi++V8xo9EHy/dgIzRFKtfb2BTPIoDFbuC0n69VUvYIpbLgrXwVEw+afqYVMXbBw==",\n "event_type":"node_state_updated","event_id":"evt_0002","nonce":"n-0002",\n "issued_at":"2025-01-15T12:30:00.500+02:00",\n "payload": { "metadata": { "url": "https://x.example/?a=1&b=<2>" }, "data": [ ] } }';
    expect(verifies(v1, key)).toBe(true);
    expect(verifies(v2, key)).toBe(true);
    expect(verifies(v1.replace("n_peer456", "n_peer457"), key)).toBe(false);
  });
});

describe("CP-signed events verify independently", () => {
  const payloads: [string, string][] = [
    ["html chars", '{"s":"<tag> & </tag>","t":"a\u2028b\u2029c"}'],
    ["numbers as written", '{"a":1.0,"b":1e3,"c":-0.50E-2,"d":[0,1.10,100000000000000000000]}'],
    ["nested key order", '{"z":{"b":1,"a":[{"y":2,"x":1}]},"10":"int-like","2":"x","a":null}'],
    ["non-ASCII", '{"city":"Zürich","jp":"東京","emoji":"🎉","ctl":"\\u0001"}'],
    ["escapes kept verbatim", '{"e":"\\u00e9\\/\\n\\u003c","q":"\\"quoted\\""}'],
    ["whitespace everywhere", ' {\n "a" : [ 1 , 2 ] ,\t"b" : { } , "c":"  spaced  " }\r\n'],
    ["scalar payload", '"just < a string"'],
    ["null payload", "null"],
    ["duplicate members", '{"k":1,"k":2}'],
  ];
  for (const [name, text] of payloads) {
    test(name, async () => {
      const ev = await custom({ event_type: "custom_test", payload_text: text });
      expect(verifies(ev.data, n.signing_public_key)).toBe(true);
      // The payload is sent compacted from the given text, never re-serialised.
      expect(members(ev.data).get("payload")).toBe(compact(text));
      // Any change of the payload breaks it.
      const p = members(ev.data).get("payload") as string;
      const tampered = ev.data.replace(`"payload":${p}`, p.startsWith("{") ? `"payload":{"x":0,${p.slice(1)}` : `"payload":0`);
      expect(tampered).not.toBe(ev.data);
      expect(verifies(tampered, n.signing_public_key)).toBe(false);
    });
  }

  const times = [
    "2025-01-15T10:30:00Z",
    "2025-01-15T10:30:00.1Z",
    "2025-01-15T10:30:00.12Z",
    "2025-01-15T10:30:00.120Z",
    "2025-01-15T10:30:00.123456789Z",
    "2025-01-15T10:30:00.1234567891Z",
    "2025-01-15T10:30:00.000000000Z",
    "2025-01-15T10:30:00+00:00",
    "2025-01-15T10:30:00-00:00",
    "2025-01-15T12:30:00.500+02:00",
    "2025-01-15T05:00:00.5-05:30",
  ];
  for (const t of times) {
    test(`issued_at ${t}`, async () => {
      const ev = await custom({ event_type: "custom_time", payload_text: "{}", issued_at: t });
      expect(JSON.parse(ev.data).issued_at).toBe(t);
      expect(verifies(ev.data, n.signing_public_key)).toBe(true);
    });
  }

  test("awkward event_type and nonce strings", async () => {
    const ev = await custom({ event_type: "t<&>\u2028", payload_text: "{}", nonce: "n&<>\"\\\t\u00e9" });
    expect(verifies(ev.data, n.signing_public_key)).toBe(true);
  });

  test("bad custom input is 400", async () => {
    expect((await admin(cp, "POST", `/admin/nodes/${n.node_id}/events`, { event_type: "x", payload_text: "{bad" })).status).toBe(400);
    expect((await admin(cp, "POST", `/admin/nodes/${n.node_id}/events`, { event_type: "x", payload_text: "{}", issued_at: "2025-01-15 10:30:00Z" })).status).toBe(400);
  });

  test("every event in the log (state, secrets, actions, peers) verifies", async () => {
    await registerNode(cp); // peer_added to n
    await admin(cp, "PATCH", `/admin/nodes/${n.node_id}/metadata`, { url: "https://x/?a=1&b=<2>", note: "line\u2028sep" });
    await admin(cp, "PUT", `/admin/nodes/${n.node_id}/data/cfg`, { payload: { n: 1.5, s: "é & ü" } });
    await admin(cp, "POST", `/admin/nodes/${n.node_id}/actions`, { action: "svc<x>", parameters: { a: "&" } });
    const evs = (await admin(cp, "GET", `/admin/nodes/${n.node_id}/events`)).json.events as { data: string; event_type: string; event_id: string }[];
    expect(evs.length).toBeGreaterThan(20);
    for (const e of evs) {
      expect([e.event_id, verifies(e.data, n.signing_public_key)]).toEqual([e.event_id, true]);
      expect(JSON.parse(e.data).event_id).toBe(e.event_id);
    }
  });

  test("injected forged events fail, stale and replayed ones carry valid signatures", async () => {
    const out: Record<string, string> = {};
    for (const kind of ["forged", "stale", "replayed"]) {
      const r = await admin(cp, "POST", `/admin/nodes/${n.node_id}/faults/event`, { kind });
      expect(r.status).toBe(201);
      const evs = (await admin(cp, "GET", `/admin/nodes/${n.node_id}/events?after=${r.json.seq - 1}`)).json.events;
      out[kind] = evs[0].data;
    }
    expect(verifies(out.forged as string, n.signing_public_key)).toBe(false);
    expect(verifies(out.stale as string, n.signing_public_key)).toBe(true);
    expect(verifies(out.replayed as string, n.signing_public_key)).toBe(true);
  });

  test("signing key rotation: event signed by the old key (Shape A), later events by the new one", async () => {
    const old = n.signing_public_key;
    const r = await admin(cp, "POST", "/admin/signing/rotate", { transition: "1h" });
    expect(r.status).toBe(200);
    expect(r.json.previous).toBe(old);
    expect(r.json.current).not.toBe(old);
    expect(Date.parse(r.json.transition_expires) - Date.now()).toBeGreaterThan(59 * 60_000);
    const evs = (await admin(cp, "GET", `/admin/nodes/${n.node_id}/events`)).json.events as { data: string; event_type: string }[];
    const rot = evs.filter((e) => e.event_type === "signing_key_rotated").at(-1) as { data: string };
    expect(verifies(rot.data, old)).toBe(true);
    expect(verifies(rot.data, r.json.current)).toBe(false);
    expect(JSON.parse(rot.data).payload).toEqual(r.json);
    const next = await custom({ event_type: "after_rotation", payload_text: "{}" });
    expect(verifies(next.data, r.json.current)).toBe(true);
    const state = await admin(cp, "GET", "/admin/signing");
    expect(state.json).toEqual(r.json);
  });
});
