/**
 * Pure codec of the WireGuard cross-platform userspace API (wireguard-go):
 * a request is `get=1` or `set=1`, then `key=value` lines, then an empty line; every reply ends
 * with `errno=N` and an empty line. Keys are 64-char lowercase hex on the wire, base64 here.
 *
 * The parser is the validator of this boundary: strict per-value checks, unknown keys ignored
 * (forward compatibility with newer wireguard-go), anything malformed → UapiError "EPROTO".
 * Every value written is checked so a hostile string cannot inject extra lines.
 */
import { normaliseCidr } from "./cidr.ts";
import { KernelError } from "./kernel-error.ts";
import { base64ToHex, publicKeyOf } from "./keys.ts";
import type { WgDevice, WgPeer, WgSet } from "./types.ts";

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  5: "EIO",
  12: "ENOMEM",
  13: "EACCES",
  19: "ENODEV",
  22: "EINVAL",
  55: "ENOANO", // wireguard-go's IpcErrorUnknown
  71: "EPROTO",
  95: "EOPNOTSUPP",
  98: "EADDRINUSE",
  110: "ETIMEDOUT",
};

/** Errno name for a positive errno value ("E<n>" when unknown). */
export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `E${errno}`;
}

/** wireguard-go answered errno != 0, or its reply was malformed ("EPROTO"). */
export class UapiError extends Error {
  override readonly name = "UapiError";
  /** Errno name, e.g. "EINVAL" for errno=-22, "EADDRINUSE" for -98. */
  readonly code: string;
  constructor(
    /** Positive errno. */
    readonly errno: number,
    readonly op: "get" | "set",
    message?: string,
    options?: { cause?: unknown },
  ) {
    super(message ?? `UAPI ${op} failed: errno=-${errno} (${errnoName(errno)})`, options);
    this.code = errnoName(errno);
  }
}

const ZERO_HEX = "0".repeat(64);
const HEX_KEY = /^[0-9a-f]{64}$/;
const B64_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;
// wireguard-go writes errno as 0 or a negative number; anything else is malformed.
const ERRNO_LINE = /^errno=(0|-\d{1,10})$/;
const ENDPOINT = /^(?:\[[0-9A-Fa-f:.%\w-]+\]|[0-9A-Za-z.-]+):\d{1,5}$/;

/** The request text of a get. */
export function buildGet(): string {
  return "get=1\n\n";
}

function checkUint(name: string, v: number, max: number): number {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new KernelError("INVALID_ARGUMENT", `${name} ${v} out of range`);
  return v;
}

/** base64 key → UAPI hex, validated (a bad key must not reach the wire). */
function hexOf(b64: string): string {
  // Same check as keys.ts base64ToHex, without its intermediate copies: this runs per peer.
  if (!B64_KEY.test(b64)) return base64ToHex(b64); // throws the usual KeyFormatError
  return Buffer.from(b64, "base64").toString("hex");
}

/**
 * The request text of a set; throws KernelError INVALID_ARGUMENT for unsafe values.
 * Built by string concatenation (JSC ropes): thousands of peers per request on a full apply.
 */
export function buildSet(set: WgSet): string {
  let out = "set=1\n";
  if (set.privateKey !== undefined) out += `private_key=${set.privateKey === null ? ZERO_HEX : hexOf(set.privateKey)}\n`;
  if (set.listenPort !== undefined) out += `listen_port=${checkUint("listen_port", set.listenPort, 65535)}\n`;
  if (set.fwmark !== undefined) out += `fwmark=${checkUint("fwmark", set.fwmark, 0xffffffff)}\n`;
  if (set.replacePeers) out += "replace_peers=true\n";
  for (const p of set.peers) {
    out += `public_key=${hexOf(p.publicKey)}\n`;
    if (p.remove) {
      out += "remove=true\n";
      continue; // anything after remove would be applied to nothing
    }
    if (p.updateOnly) out += "update_only=true\n";
    if (p.presharedKey !== undefined) out += `preshared_key=${p.presharedKey === null ? ZERO_HEX : hexOf(p.presharedKey)}\n`;
    if (p.endpoint !== undefined) {
      if (!ENDPOINT.test(p.endpoint)) throw new KernelError("INVALID_ARGUMENT", `bad endpoint ${JSON.stringify(p.endpoint)}`);
      out += `endpoint=${p.endpoint}\n`;
    }
    if (p.persistentKeepalive !== undefined) {
      out += `persistent_keepalive_interval=${checkUint("persistent_keepalive_interval", p.persistentKeepalive, 65535)}\n`;
    }
    if (p.replaceAllowedIps) out += "replace_allowed_ips=true\n";
    if (p.allowedIps !== undefined) for (const ip of p.allowedIps) out += `allowed_ip=${normaliseCidr(ip)}\n`;
  }
  return `${out}\n`;
}

function protoErr(op: "get" | "set", why: string): UapiError {
  return new UapiError(71, op, `malformed UAPI ${op} reply: ${why}`);
}

/**
 * Checks the reply terminator (`errno=N` line + empty line) and returns the errno and where
 * the key/value body ends. Throws EPROTO when the reply is not terminated that way.
 */
function replyTail(text: string, op: "get" | "set"): { errno: number; bodyEnd: number } {
  if (!text.endsWith("\n\n")) throw protoErr(op, "not terminated by an empty line");
  const lastStart = text.lastIndexOf("\n", text.length - 3) + 1;
  const m = ERRNO_LINE.exec(text.slice(lastStart, text.length - 2));
  if (!m) throw protoErr(op, "missing errno line");
  return { errno: -Number(m[1]), bodyEnd: lastStart };
}

/** Throws EPROTO for a body line without `key=` (the shape check of an error reply's body). */
function checkLines(text: string, bodyEnd: number, op: "get" | "set"): void {
  for (let pos = 0; pos < bodyEnd; ) {
    const nl = text.indexOf("\n", pos);
    const eq = text.indexOf("=", pos);
    if (eq <= pos || eq > nl) throw protoErr(op, `line without key: ${JSON.stringify(text.slice(pos, Math.min(nl, pos + 80)))}`);
    pos = nl + 1;
  }
}

/** Parses a set reply; throws UapiError when errno != 0. */
export function parseSetReply(text: string): void {
  const { errno, bodyEnd } = replyTail(text, "set");
  if (bodyEnd > 0) {
    checkLines(text, bodyEnd, "set");
    throw protoErr("set", "unexpected lines before errno");
  }
  if (errno !== 0) throw new UapiError(errno, "set");
}

/** Unsigned decimal in text[from, to) without slicing; EPROTO when it is not one. */
function num(text: string, from: number, to: number, key: string, max = Number.MAX_SAFE_INTEGER): number {
  const n = to - from;
  if (n < 1 || n > 20) throw protoErr("get", `${key} is not an unsigned integer`);
  let x = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i) - 48;
    if (c < 0 || c > 9) throw protoErr("get", `${key} is not an unsigned integer`);
    x = x * 10 + c;
  }
  // Beyond 2^53 the running product rounds differently from Number(); keep Number's answer.
  const v = n > 15 ? Number(text.slice(from, to)) : x;
  if (v > max) throw protoErr("get", `${key} ${v} is out of range (max ${max})`);
  return v;
}

function key(name: string, v: string): string {
  if (v.length !== 64 || !HEX_KEY.test(v)) throw protoErr("get", `${name} is not 64 lowercase hex digits`);
  return Buffer.from(v, "hex").toString("base64");
}

// The device's public key is derived (X25519) on every parse; the private key rarely changes.
let lastPrivate = "";
let lastPublic = "";
function publicOf(priv: string): string {
  if (priv !== lastPrivate) {
    lastPublic = publicKeyOf(priv);
    lastPrivate = priv;
  }
  return lastPublic;
}

/**
 * Parses a get reply into a device; throws UapiError when errno != 0 or the text is malformed.
 * One pass over the text with indexOf: the keys are matched in place (no per-line split or key
 * strings), numbers are read without slicing — a 10,000-peer reply is ~3.5 MB and ~110k lines.
 */
export function parseGet(text: string, ifname: string): WgDevice {
  const { errno, bodyEnd } = replyTail(text, "get");
  if (errno !== 0) {
    checkLines(text, bodyEnd, "get");
    throw new UapiError(errno, "get");
  }
  const dev: WgDevice = { ifname, privateKey: null, publicKey: null, listenPort: 0, fwmark: 0, peers: [] };
  let peer: WgPeer | null = null;
  let hsSec = 0;
  let hsNsec = 0;
  const finishPeer = () => {
    if (peer) peer.lastHandshakeMs = hsSec === 0 && hsNsec === 0 ? null : hsSec * 1000 + Math.floor(hsNsec / 1e6);
  };
  const is = (pos: number, eq: number, name: string) => eq - pos === name.length && text.startsWith(name, pos);
  for (let pos = 0; pos < bodyEnd; ) {
    const nl = text.indexOf("\n", pos);
    const eq = text.indexOf("=", pos);
    if (eq <= pos || eq > nl) throw protoErr("get", `line without key: ${JSON.stringify(text.slice(pos, Math.min(nl, pos + 80)))}`);
    const v0 = eq + 1;
    const linePos = pos;
    pos = nl + 1;
    // Dispatch on the key's first character, then confirm the whole key in place.
    switch (text.charCodeAt(linePos)) {
      case 112: // p
        if (is(linePos, eq, "public_key")) {
          finishPeer();
          peer = {
            publicKey: key("public_key", text.slice(v0, nl)),
            presharedKey: null,
            endpoint: null,
            allowedIps: [],
            persistentKeepalive: 0,
            lastHandshakeMs: null,
            rxBytes: 0,
            txBytes: 0,
          };
          hsSec = 0;
          hsNsec = 0;
          dev.peers.push(peer);
        } else if (peer !== null && is(linePos, eq, "preshared_key")) {
          const v = text.slice(v0, nl);
          peer.presharedKey = v === ZERO_HEX ? null : key("preshared_key", v);
        } else if (peer !== null && is(linePos, eq, "persistent_keepalive_interval")) {
          peer.persistentKeepalive = num(text, v0, nl, "persistent_keepalive_interval", 65535);
        } else if (peer === null && is(linePos, eq, "private_key")) {
          const v = text.slice(v0, nl);
          dev.privateKey = v === ZERO_HEX ? null : key("private_key", v);
          dev.publicKey = dev.privateKey === null ? null : publicOf(dev.privateKey);
        }
        break; // protocol_version and future keys
      case 97: // a
        if (peer !== null && is(linePos, eq, "allowed_ip")) {
          const v = text.slice(v0, nl);
          try {
            peer.allowedIps.push(normaliseCidr(v));
          } catch {
            throw protoErr("get", `bad allowed_ip ${JSON.stringify(v.slice(0, 80))}`);
          }
        }
        break;
      case 101: // e
        if (peer !== null && is(linePos, eq, "endpoint")) {
          const v = text.slice(v0, nl);
          if (!ENDPOINT.test(v) || Number(v.slice(v.lastIndexOf(":") + 1)) > 65535) throw protoErr("get", `bad endpoint ${JSON.stringify(v.slice(0, 80))}`);
          peer.endpoint = v;
        }
        break;
      case 108: // l
        if (peer === null) {
          if (is(linePos, eq, "listen_port")) dev.listenPort = num(text, v0, nl, "listen_port", 65535);
        } else if (is(linePos, eq, "last_handshake_time_sec")) hsSec = num(text, v0, nl, "last_handshake_time_sec");
        else if (is(linePos, eq, "last_handshake_time_nsec")) hsNsec = num(text, v0, nl, "last_handshake_time_nsec");
        break;
      case 116: // t
        if (peer !== null && is(linePos, eq, "tx_bytes")) peer.txBytes = num(text, v0, nl, "tx_bytes");
        break;
      case 114: // r
        if (peer !== null && is(linePos, eq, "rx_bytes")) peer.rxBytes = num(text, v0, nl, "rx_bytes");
        break;
      case 102: // f
        if (peer === null && is(linePos, eq, "fwmark")) dev.fwmark = num(text, v0, nl, "fwmark", 0xffffffff);
        break;
      default:
        break;
    }
  }
  finishPeer();
  return dev;
}
