/**
 * Fuzz-style robustness of the wireguard-go UAPI get-reply parser (`parseGet`): random text,
 * every truncation of a captured reply (raw and re-terminated so the body parser sees cut
 * lines), and thousands of character- and line-level mutations. Fixed seeds: a failure
 * reproduces. The only acceptable outcomes are a device or a UapiError (EPROTO for malformed
 * text, the errno's name when a mutation produced a valid non-zero errno line); any other throw
 * (TypeError, CidrError, KeyFormatError, RangeError…) fails, and every device that does parse
 * must still be well-formed (keys are 32-byte base64, numbers are non-negative integers,
 * allowed IPs are canonical CIDRs).
 */
import { describe, expect, test } from "bun:test";
import { seededRandom as rng } from "../util/seeded-random.test-util.ts";
import { normaliseCidr } from "./cidr.ts";
import { hexToBase64, publicKeyOf } from "./keys.ts";
import type { WgDevice } from "./types.ts";
import { parseGet, UapiError } from "./uapi-codec.ts";
import { GET_REPLY, PEER1_HEX, PEER2_HEX, PRIV_HEX, PSK_HEX, ZERO } from "./uapi-fixture.test-util.ts";

// The captured get=1 reply, plus the fwmark line wireguard-go prints when one is set.
const REPLY = GET_REPLY.replace("listen_port=51999\n", "listen_port=51999\nfwmark=51820\n");

const KEYS = [
  "private_key",
  "listen_port",
  "fwmark",
  "public_key",
  "preshared_key",
  "protocol_version",
  "endpoint",
  "last_handshake_time_sec",
  "last_handshake_time_nsec",
  "tx_bytes",
  "rx_bytes",
  "persistent_keepalive_interval",
  "allowed_ip",
  "errno",
  "replace_peers",
];
// Characters that matter to the grammar, plus some that never should appear.
const ALPHABET = "0123456789abcdefABCDEF=\n\n\n:[]/.-_% xyz\t\r\0\u00e9\u{1F600}";

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
const B64_KEY = /^[A-Za-z0-9+/]{43}=$/;
// Integers, not safe integers: rx/tx are u64 on the wire and parseGet deliberately keeps
// Number()'s rounding beyond 2^53.
const uint = (n: number) => Number.isInteger(n) && n >= 0;

/** A parsed device must be well-formed whatever the input was. */
function checkDevice(d: WgDevice): void {
  expect(d.ifname).toBe("wg0");
  if (d.privateKey === null) expect(d.publicKey).toBeNull();
  else {
    expect(d.privateKey).toMatch(B64_KEY);
    expect(d.publicKey).toBe(publicKeyOf(d.privateKey));
  }
  expect(uint(d.listenPort) && uint(d.fwmark)).toBe(true);
  for (const p of d.peers) {
    expect(p.publicKey).toMatch(B64_KEY);
    if (p.presharedKey !== null) expect(p.presharedKey).toMatch(B64_KEY);
    expect(p.endpoint === null || (typeof p.endpoint === "string" && !p.endpoint.includes("\n"))).toBe(true);
    expect(uint(p.persistentKeepalive) && uint(p.rxBytes) && uint(p.txBytes)).toBe(true);
    expect(p.lastHandshakeMs === null || uint(p.lastHandshakeMs)).toBe(true);
    for (const ip of p.allowedIps) expect(normaliseCidr(ip)).toBe(ip);
  }
}

/** parseGet → "ok" (device checked) or "error" (a UapiError); anything else fails the test. */
function outcome(text: string): "ok" | "error" {
  let d: WgDevice;
  try {
    d = parseGet(text, "wg0");
  } catch (e) {
    if (!(e instanceof UapiError)) throw new Error(`non-UapiError for ${JSON.stringify(text.slice(0, 200))}`, { cause: e });
    expect(e.op).toBe("get");
    expect(e.errno).toBeGreaterThan(0);
    expect(e.code).toMatch(/^E[A-Z0-9]+$/);
    return "error";
  }
  checkDevice(d);
  return "ok";
}

/** Splits into lines keeping the terminator structure: body lines, then "errno=0", "", "". */
const lines = (t: string) => t.split("\n");

function mutateChars(r: () => number, t: string): string {
  let s = t;
  const edits = 1 + Math.floor(r() * 4);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(r() * s.length);
    const op = r();
    if (op < 0.45) s = s.slice(0, at) + pick(r, [...ALPHABET]) + s.slice(at + 1);
    else if (op < 0.7) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(r() * 4));
    else s = s.slice(0, at) + pick(r, [...ALPHABET]) + s.slice(at);
  }
  return s;
}

function randomValue(r: () => number): string {
  switch (Math.floor(r() * 8)) {
    case 0:
      return pick(r, [PRIV_HEX, PEER1_HEX, PSK_HEX, ZERO, PRIV_HEX.toUpperCase(), PRIV_HEX.slice(1)]);
    case 1:
      return String(Math.floor(r() * 2 ** (r() * 70)));
    case 2:
      return pick(r, ["-1", "", "1e3", "0x10", " 1", "+5", "99999999999999999999999"]);
    case 3:
      return pick(r, ["10.0.0.0/8", "10.0.0.1/33", "fd00::1/128", "::/0", "1.2.3.4", "fd00::/129", "a/b", "/"]);
    case 4:
      return pick(r, ["[fd00::1]:51820", "192.0.2.1:0", "host:1", "[::]:99999", ":", "1.2.3.4"]);
    default: {
      let v = "";
      for (let i = Math.floor(r() * 70); i > 0; i--) v += pick(r, [...ALPHABET.replace(/\n/g, "")]);
      return v;
    }
  }
}

function mutateLines(r: () => number, t: string): string {
  const ls = lines(t);
  const body = ls.length - 3; // last three: "errno=0", "", ""
  const edits = 1 + Math.floor(r() * 3);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(r() * body);
    const op = r();
    if (op < 0.25) ls.splice(at, 1);
    else if (op < 0.45) ls.splice(at, 0, ls[Math.floor(r() * body)] ?? "");
    else if (op < 0.85) ls.splice(at, 0, `${pick(r, KEYS)}=${randomValue(r)}`);
    else ls[at] = `${(ls[at] ?? "").split("=")[0]}=${randomValue(r)}`;
  }
  return ls.join("\n");
}

describe("parseGet fuzz (seeded)", () => {
  test("the seed parses", () => {
    const d = parseGet(REPLY, "wg0");
    expect(d.privateKey).toBe(hexToBase64(PRIV_HEX));
    expect(d.fwmark).toBe(51820);
    expect(d.peers.map((p) => p.publicKey)).toEqual([hexToBase64(PEER1_HEX), hexToBase64(PEER2_HEX)]);
    checkDevice(d);
  });

  test("every truncation, raw and re-terminated with errno=0", () => {
    const seen = { ok: 0, error: 0 };
    for (let n = 0; n <= REPLY.length; n++) {
      seen[outcome(REPLY.slice(0, n))]++;
      seen[outcome(`${REPLY.slice(0, n)}\nerrno=0\n\n`)]++;
    }
    expect(seen.ok).toBeGreaterThan(50);
    expect(seen.error).toBeGreaterThan(REPLY.length);
  });

  test("5000 character-level mutations", () => {
    const r = rng(0x0a41);
    const seen = { ok: 0, error: 0 };
    for (let i = 0; i < 5000; i++) seen[outcome(mutateChars(r, REPLY))]++;
    expect(seen.ok).toBeGreaterThan(200);
    expect(seen.error).toBeGreaterThan(200);
  });

  test("5000 line-level mutations (drop, duplicate, inject key=value, replace value)", () => {
    const r = rng(0x11e5);
    const seen = { ok: 0, error: 0 };
    for (let i = 0; i < 5000; i++) seen[outcome(mutateLines(r, REPLY))]++;
    expect(seen.ok).toBeGreaterThan(200);
    expect(seen.error).toBeGreaterThan(200);
  });

  test("3000 random texts (raw and errno-terminated)", () => {
    const r = rng(0xbeef);
    const seen = { ok: 0, error: 0 };
    for (let i = 0; i < 3000; i++) {
      let s = "";
      const nLines = Math.floor(r() * 12);
      for (let l = 0; l < nLines; l++) s += r() < 0.6 ? `${pick(r, KEYS)}=${randomValue(r)}\n` : `${randomValue(r)}\n`;
      const tail = r();
      if (tail < 0.4) s += "errno=0\n\n";
      else if (tail < 0.6) s += `errno=${randomValue(r)}\n\n`;
      seen[outcome(s)]++;
    }
    expect(seen.ok).toBeGreaterThan(50);
    expect(seen.error).toBeGreaterThan(500);
  });

  test("a non-zero errno with a mutated body is still a typed error", () => {
    const r = rng(7);
    for (let i = 0; i < 1000; i++) {
      const body = mutateLines(r, REPLY).replace(/errno=0\n\n$/, "");
      const errno = pick(r, ["-1", "-22", "-55", "-98", "-4242", "-0"]);
      outcome(`${body}errno=${errno}\n\n`);
    }
  });
});

/** Values wireguard-go can never send: out of range → EPROTO, like any other malformed reply. */
describe("parseGet: out-of-range values are malformed", () => {
  const P = `public_key=${PEER1_HEX}\n`;
  const eproto = (text: string) => expect(() => parseGet(text, "wg0")).toThrow(expect.objectContaining({ name: "UapiError", code: "EPROTO" }));
  test("errno=8 (positive) is malformed, not errno -8 / code E-8", () => eproto("errno=8\n\n"));
  test("listen_port above 65535", () => eproto("listen_port=99999\nerrno=0\n\n"));
  test("fwmark above 2^32-1", () => eproto("fwmark=4294967296\nerrno=0\n\n"));
  test("persistent_keepalive_interval above 65535", () => eproto(`${P}persistent_keepalive_interval=70000\nerrno=0\n\n`));
  test("endpoint port above 65535", () => eproto(`${P}endpoint=[::]:99999\nerrno=0\n\n`));
});
