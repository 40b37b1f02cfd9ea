/**
 * STUN binding request/response codec (RFC 5389 / RFC 8489, lifecycle.md §5.2). Pure: no I/O,
 * no clock. Parsing never throws — every outcome, including garbage, is a value of
 * {@link StunParse} — because its input is whatever arrived on a socket.
 */

/** RFC 5389 magic cookie, bytes 4–7 of every STUN message. */
export const STUN_MAGIC_COOKIE = 0x2112a442;
/** Binding request / success response / error response message types. */
export const STUN_BINDING_REQUEST = 0x0001;
export const STUN_BINDING_SUCCESS = 0x0101;
export const STUN_BINDING_ERROR = 0x0111;
/** Attribute types this codec understands. */
export const ATTR_MAPPED_ADDRESS = 0x0001;
export const ATTR_ERROR_CODE = 0x0009;
export const ATTR_XOR_MAPPED_ADDRESS = 0x0020;
/** Pre-RFC 5389 code point of XOR-MAPPED-ADDRESS, still sent by old servers (stund). */
export const ATTR_XOR_MAPPED_ADDRESS_LEGACY = 0x8020;

/** Size of the fixed STUN header. */
export const STUN_HEADER_LEN = 20;
/** Size of a transaction id. */
export const STUN_TXID_LEN = 12;

/** A reflexive transport address. */
export interface MappedAddress {
  family: 4 | 6;
  /** Dotted quad or RFC 5952 text. */
  ip: string;
  port: number;
  /** Which attribute it came from. */
  source: "xor" | "xor-legacy" | "mapped";
}

/** Outcome of {@link parseBindingResponse}. */
export type StunParse =
  /** 0x0101 for our transaction with a usable mapped address. */
  | { kind: "success"; address: MappedAddress }
  /** 0x0111 for our transaction: this server failed. */
  | { kind: "error"; code: number | null; reason: string }
  /** Not an answer to our transaction (other txid, other type, not STUN): keep waiting. */
  | { kind: "ignore"; reason: string }
  /** Answer to our transaction that cannot be used (malformed, no address): server failed. */
  | { kind: "invalid"; reason: string };

/** 12 random bytes from the crypto RNG (or `random`, for tests). */
export function newTransactionId(random: (n: number) => Uint8Array = (n) => crypto.getRandomValues(new Uint8Array(n))): Uint8Array {
  const id = random(STUN_TXID_LEN);
  if (id.length !== STUN_TXID_LEN) throw new RangeError(`transaction id must be ${STUN_TXID_LEN} bytes, got ${id.length}`);
  return id;
}

function header(type: number, length: number, txid: Uint8Array): Uint8Array {
  if (txid.length !== STUN_TXID_LEN) throw new RangeError(`transaction id must be ${STUN_TXID_LEN} bytes, got ${txid.length}`);
  const b = new Uint8Array(STUN_HEADER_LEN + length);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, type);
  dv.setUint16(2, length);
  dv.setUint32(4, STUN_MAGIC_COOKIE);
  b.set(txid, 8);
  return b;
}

/** A binding request: type 0x0001, length 0, cookie, `txid`, no attributes (20 bytes). */
export function encodeBindingRequest(txid: Uint8Array): Uint8Array {
  return header(STUN_BINDING_REQUEST, 0, txid);
}

/** Hex of a transaction id (map keys, logs). */
export function txidHex(txid: Uint8Array): string {
  return Buffer.from(txid).toString("hex");
}

function formatV6(b: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((b[i] ?? 0) << 8) | (b[i + 1] ?? 0)).toString(16));
  // RFC 5952: compress the longest run (≥ 2) of zero groups, first one on a tie.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(":");
  return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
}

/** Decodes a (XOR-)MAPPED-ADDRESS value; null when malformed or of an unknown family. */
function decodeAddress(value: Uint8Array, xor: boolean, txid: Uint8Array, source: MappedAddress["source"]): MappedAddress | null {
  if (value.length < 4) return null;
  const dv = new DataView(value.buffer, value.byteOffset, value.byteLength);
  const fam = dv.getUint8(1);
  let port = dv.getUint16(2);
  if (xor) port ^= STUN_MAGIC_COOKIE >>> 16;
  if (fam === 0x01) {
    if (value.length !== 8) return null;
    let a = dv.getUint32(4);
    if (xor) a = (a ^ STUN_MAGIC_COOKIE) >>> 0;
    return { family: 4, ip: `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`, port, source };
  }
  if (fam === 0x02) {
    if (value.length !== 20) return null;
    const a = value.slice(4, 20);
    if (xor) {
      // XOR with cookie || transaction id (RFC 5389 §15.2).
      const key = new Uint8Array(16);
      new DataView(key.buffer).setUint32(0, STUN_MAGIC_COOKIE);
      key.set(txid, 4);
      for (let i = 0; i < 16; i++) a[i] = (a[i] ?? 0) ^ (key[i] ?? 0);
    }
    return { family: 6, ip: formatV6(a), port, source };
  }
  return null;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * True when `buf` looks like a STUN message: top two bits zero, length a multiple of 4 that
 * fits, magic cookie present.
 */
export function isStunMessage(buf: Uint8Array): boolean {
  if (buf.length < STUN_HEADER_LEN) return false;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const type = dv.getUint16(0);
  const len = dv.getUint16(2);
  return (type & 0xc000) === 0 && len % 4 === 0 && STUN_HEADER_LEN + len <= buf.length && dv.getUint32(4) === STUN_MAGIC_COOKIE;
}

/**
 * Parses a datagram as the answer to the binding request with `txid`.
 * Address preference: XOR-MAPPED-ADDRESS (0x0020, then legacy 0x8020), else MAPPED-ADDRESS.
 * Both IPv4 and IPv6 families are decoded; the caller decides what it can use (v1: IPv4).
 */
export function parseBindingResponse(buf: Uint8Array, txid: Uint8Array): StunParse {
  if (!isStunMessage(buf)) return { kind: "ignore", reason: "not a STUN message" };
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const type = dv.getUint16(0);
  const len = dv.getUint16(2);
  if (!sameBytes(buf.subarray(8, 20), txid)) return { kind: "ignore", reason: "other transaction" };
  if (type !== STUN_BINDING_SUCCESS && type !== STUN_BINDING_ERROR) return { kind: "ignore", reason: `message type 0x${type.toString(16).padStart(4, "0")}` };

  const attrs = new Map<number, Uint8Array>();
  const end = STUN_HEADER_LEN + len;
  let off = STUN_HEADER_LEN;
  while (off < end) {
    if (off + 4 > end) return { kind: "invalid", reason: "truncated attribute header" };
    const at = dv.getUint16(off);
    const alen = dv.getUint16(off + 2);
    const vstart = off + 4;
    if (vstart + alen > end) return { kind: "invalid", reason: `attribute 0x${at.toString(16)} overruns the message` };
    // First occurrence wins (RFC 8489 §14: later duplicates may be ignored).
    if (!attrs.has(at)) attrs.set(at, buf.subarray(vstart, vstart + alen));
    off = vstart + alen + ((4 - (alen % 4)) % 4);
  }

  if (type === STUN_BINDING_ERROR) {
    const ec = attrs.get(ATTR_ERROR_CODE);
    if (!ec || ec.length < 4) return { kind: "error", code: null, reason: "" };
    const code = ((ec[2] ?? 0) & 0x07) * 100 + (ec[3] ?? 0);
    return { kind: "error", code, reason: new TextDecoder("utf-8", { fatal: false }).decode(ec.subarray(4)) };
  }

  const candidates: Array<[number, boolean, MappedAddress["source"]]> = [
    [ATTR_XOR_MAPPED_ADDRESS, true, "xor"],
    [ATTR_XOR_MAPPED_ADDRESS_LEGACY, true, "xor-legacy"],
    [ATTR_MAPPED_ADDRESS, false, "mapped"],
  ];
  for (const [at, xor, source] of candidates) {
    const value = attrs.get(at);
    if (!value) continue;
    const address = decodeAddress(value, xor, txid, source);
    if (address) return { kind: "success", address };
  }
  return { kind: "invalid", reason: "no usable mapped address" };
}

/** Options of {@link encodeBindingSuccess} (test servers and tests). */
export interface EncodeSuccessOptions {
  /** Attribute to carry the address in; default XOR-MAPPED-ADDRESS (0x0020). */
  attribute?: number;
  /** Extra raw attributes (type, value) appended after the address, padded. */
  extra?: Array<[number, Uint8Array]>;
}

function parseV4(ip: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return null;
  const o = m.slice(1).map(Number);
  if (o.some((x) => x > 255)) return null;
  return ((o[0]! << 24) | (o[1]! << 16) | (o[2]! << 8) | o[3]!) >>> 0;
}

/**
 * A binding success response carrying an IPv4 `ip:port` (used by the test STUN server and the
 * tests; the agent never answers STUN).
 */
export function encodeBindingSuccess(txid: Uint8Array, ip: string, port: number, opts: EncodeSuccessOptions = {}): Uint8Array {
  const a = parseV4(ip);
  if (a === null) throw new RangeError(`not an IPv4 address: ${ip}`);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`bad port ${port}`);
  const at = opts.attribute ?? ATTR_XOR_MAPPED_ADDRESS;
  const xor = at !== ATTR_MAPPED_ADDRESS;
  const value = new Uint8Array(8);
  const vv = new DataView(value.buffer);
  vv.setUint8(1, 0x01);
  vv.setUint16(2, xor ? port ^ (STUN_MAGIC_COOKIE >>> 16) : port);
  vv.setUint32(4, xor ? (a ^ STUN_MAGIC_COOKIE) >>> 0 : a);
  const attrs: Array<[number, Uint8Array]> = [[at, value], ...(opts.extra ?? [])];
  const body = attrs.reduce((n, [, v]) => n + 4 + v.length + ((4 - (v.length % 4)) % 4), 0);
  const msg = header(STUN_BINDING_SUCCESS, body, txid);
  const dv = new DataView(msg.buffer);
  let off = STUN_HEADER_LEN;
  for (const [t, v] of attrs) {
    dv.setUint16(off, t);
    dv.setUint16(off + 2, v.length);
    msg.set(v, off + 4);
    off += 4 + v.length + ((4 - (v.length % 4)) % 4);
  }
  return msg;
}
