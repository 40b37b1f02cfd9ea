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
import { base64ToHex, hexToBase64, publicKeyOf } from "./keys.ts";
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
const UINT = /^\d{1,20}$/;
const ENDPOINT = /^(?:\[[0-9A-Fa-f:.%\w-]+\]|[0-9A-Za-z.-]+):\d{1,5}$/;

/** The request text of a get. */
export function buildGet(): string {
  return "get=1\n\n";
}

function checkUint(name: string, v: number, max: number): number {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new KernelError("INVALID_ARGUMENT", `${name} ${v} out of range`);
  return v;
}

/** The request text of a set; throws KernelError INVALID_ARGUMENT for unsafe values. */
export function buildSet(set: WgSet): string {
  const out: string[] = ["set=1"];
  if (set.privateKey !== undefined) out.push(`private_key=${set.privateKey === null ? ZERO_HEX : base64ToHex(set.privateKey)}`);
  if (set.listenPort !== undefined) out.push(`listen_port=${checkUint("listen_port", set.listenPort, 65535)}`);
  if (set.fwmark !== undefined) out.push(`fwmark=${checkUint("fwmark", set.fwmark, 0xffffffff)}`);
  if (set.replacePeers) out.push("replace_peers=true");
  for (const p of set.peers) {
    out.push(`public_key=${base64ToHex(p.publicKey)}`);
    if (p.remove) {
      out.push("remove=true");
      continue; // anything after remove would be applied to nothing
    }
    if (p.updateOnly) out.push("update_only=true");
    if (p.presharedKey !== undefined) out.push(`preshared_key=${p.presharedKey === null ? ZERO_HEX : base64ToHex(p.presharedKey)}`);
    if (p.endpoint !== undefined) {
      if (!ENDPOINT.test(p.endpoint)) throw new KernelError("INVALID_ARGUMENT", `bad endpoint ${JSON.stringify(p.endpoint)}`);
      out.push(`endpoint=${p.endpoint}`);
    }
    if (p.persistentKeepalive !== undefined) {
      out.push(`persistent_keepalive_interval=${checkUint("persistent_keepalive_interval", p.persistentKeepalive, 65535)}`);
    }
    if (p.replaceAllowedIps) out.push("replace_allowed_ips=true");
    for (const ip of p.allowedIps ?? []) out.push(`allowed_ip=${normaliseCidr(ip)}`);
  }
  return `${out.join("\n")}\n\n`;
}

function protoErr(op: "get" | "set", why: string): UapiError {
  return new UapiError(71, op, `malformed UAPI ${op} reply: ${why}`);
}

/**
 * Splits a reply into key/value lines and the trailing errno. Throws EPROTO when the reply is
 * not terminated by `errno=N` and an empty line.
 */
function splitReply(text: string, op: "get" | "set"): { lines: Array<[string, string]>; errno: number } {
  if (!text.endsWith("\n\n")) throw protoErr(op, "not terminated by an empty line");
  const raw = text.slice(0, -2).split("\n");
  const last = raw.pop();
  const m = last === undefined ? null : /^errno=(-?\d{1,10})$/.exec(last);
  if (!m) throw protoErr(op, "missing errno line");
  const lines: Array<[string, string]> = [];
  for (const line of raw) {
    const eq = line.indexOf("=");
    if (eq <= 0) throw protoErr(op, `line without key: ${JSON.stringify(line.slice(0, 80))}`);
    lines.push([line.slice(0, eq), line.slice(eq + 1)]);
  }
  return { lines, errno: -Number(m[1]) };
}

/** Parses a set reply; throws UapiError when errno != 0. */
export function parseSetReply(text: string): void {
  const { lines, errno } = splitReply(text, "set");
  if (lines.length > 0) throw protoErr("set", "unexpected lines before errno");
  if (errno !== 0) throw new UapiError(errno, "set");
}

function num(op: "get", key: string, v: string): number {
  if (!UINT.test(v)) throw protoErr(op, `${key} is not an unsigned integer`);
  return Number(v);
}

function key(op: "get", name: string, v: string): string {
  if (!HEX_KEY.test(v)) throw protoErr(op, `${name} is not 64 lowercase hex digits`);
  return hexToBase64(v);
}

/** Parses a get reply into a device; throws UapiError when errno != 0 or the text is malformed. */
export function parseGet(text: string, ifname: string): WgDevice {
  const { lines, errno } = splitReply(text, "get");
  if (errno !== 0) throw new UapiError(errno, "get");
  const dev: WgDevice = { ifname, privateKey: null, publicKey: null, listenPort: 0, fwmark: 0, peers: [] };
  let peer: WgPeer | null = null;
  let hsSec = 0;
  let hsNsec = 0;
  const finishPeer = () => {
    if (peer) peer.lastHandshakeMs = hsSec === 0 && hsNsec === 0 ? null : hsSec * 1000 + Math.floor(hsNsec / 1e6);
  };
  for (const [k, v] of lines) {
    if (k === "public_key") {
      finishPeer();
      peer = {
        publicKey: key("get", k, v),
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
      continue;
    }
    if (peer === null) {
      if (k === "private_key") {
        dev.privateKey = v === ZERO_HEX ? null : key("get", k, v);
        dev.publicKey = dev.privateKey === null ? null : publicKeyOf(dev.privateKey);
      } else if (k === "listen_port") dev.listenPort = num("get", k, v);
      else if (k === "fwmark") dev.fwmark = num("get", k, v);
      continue;
    }
    switch (k) {
      case "preshared_key":
        peer.presharedKey = v === ZERO_HEX ? null : key("get", k, v);
        break;
      case "endpoint":
        if (!ENDPOINT.test(v)) throw protoErr("get", `bad endpoint ${JSON.stringify(v.slice(0, 80))}`);
        peer.endpoint = v;
        break;
      case "last_handshake_time_sec":
        hsSec = num("get", k, v);
        break;
      case "last_handshake_time_nsec":
        hsNsec = num("get", k, v);
        break;
      case "tx_bytes":
        peer.txBytes = num("get", k, v);
        break;
      case "rx_bytes":
        peer.rxBytes = num("get", k, v);
        break;
      case "persistent_keepalive_interval":
        peer.persistentKeepalive = num("get", k, v);
        break;
      case "allowed_ip":
        try {
          peer.allowedIps.push(normaliseCidr(v));
        } catch {
          throw protoErr("get", `bad allowed_ip ${JSON.stringify(v.slice(0, 80))}`);
        }
        break;
      default:
        break; // protocol_version and future keys
    }
  }
  finishPeer();
  return dev;
}
