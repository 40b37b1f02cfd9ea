/**
 * Independent netlink encoder for golden-byte tests: written from the documented layouts
 * (linux/netlink.h, linux/genetlink.h, uapi/linux/wireguard.h), sharing no code with the C
 * builder, so a test comparing both checks the builder rather than echoing it.
 */

export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP = 0x300;
export const NLA_F_NESTED = 0x8000;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;

export const WG_CMD_GET_DEVICE = 0;
export const WG_CMD_SET_DEVICE = 1;
export const WGDEVICE_F_REPLACE_PEERS = 1;
export const WGPEER_F_REMOVE_ME = 1;
export const WGPEER_F_REPLACE_ALLOWEDIPS = 2;
export const WGPEER_F_UPDATE_ONLY = 4;

export const DEV = { IFINDEX: 1, IFNAME: 2, PRIVATE_KEY: 3, PUBLIC_KEY: 4, FLAGS: 5, LISTEN_PORT: 6, FWMARK: 7, PEERS: 8 } as const;
export const PEER = {
  PUBLIC_KEY: 1,
  PRESHARED_KEY: 2,
  FLAGS: 3,
  ENDPOINT: 4,
  KEEPALIVE: 5,
  LAST_HANDSHAKE: 6,
  RX: 7,
  TX: 8,
  ALLOWEDIPS: 9,
} as const;
export const AIP = { FAMILY: 1, IPADDR: 2, CIDR: 3 } as const;
export const AF_INET = 2;
export const AF_INET6 = 10;

const align4 = (n: number): number => (n + 3) & ~3;

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** One attribute: u16 len (header + payload, unpadded), u16 type, payload, pad to 4. */
export function nla(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(align4(4 + payload.length));
  const v = new DataView(out.buffer);
  v.setUint16(0, 4 + payload.length, true);
  v.setUint16(2, type, true);
  out.set(payload, 4);
  return out;
}

export function nest(type: number, children: Uint8Array[]): Uint8Array {
  return nla(type | NLA_F_NESTED, concat(children));
}

export const u8 = (n: number): Uint8Array => Uint8Array.of(n);
export function u16(n: number): Uint8Array {
  const b = new Uint8Array(2);
  new DataView(b.buffer).setUint16(0, n, true);
  return b;
}
export function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}
export function u64(n: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, n, true);
  return b;
}
export const strz = (s: string): Uint8Array => new TextEncoder().encode(`${s}\0`);

/** struct nlmsghdr (16 bytes) + struct genlmsghdr (cmd, version, reserved u16) + attrs. */
export function genlMsg(type: number, flags: number, seq: number, cmd: number, attrs: Uint8Array[]): Uint8Array {
  const body = concat(attrs);
  const out = new Uint8Array(16 + 4 + body.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, out.length, true);
  v.setUint16(4, type, true);
  v.setUint16(6, flags, true);
  v.setUint32(8, seq, true);
  v.setUint32(12, 0, true);
  out[16] = cmd;
  out[17] = 1; // WG_GENL_VERSION
  out.set(body, 20);
  return out;
}

/** A bare netlink message (DONE/ERROR) with a 4-byte int payload. */
export function ctlMsg(type: number, flags: number, seq: number, code: number): Uint8Array {
  const out = new Uint8Array(type === NLMSG_ERROR ? 16 + 4 + 16 : 20);
  const v = new DataView(out.buffer);
  v.setUint32(0, out.length, true);
  v.setUint16(4, type, true);
  v.setUint16(6, flags, true);
  v.setUint32(8, seq, true);
  v.setInt32(16, code, true);
  return out;
}

/** struct sockaddr_in: family (host order), port (BE), addr, 8 zero bytes. */
export function sockaddrIn(a: [number, number, number, number], port: number): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setUint16(0, AF_INET, true);
  v.setUint16(2, port, false);
  b.set(a, 4);
  return b;
}

/** struct sockaddr_in6: family, port (BE), flowinfo, 16-byte addr, scope id. */
export function sockaddrIn6(addr: Uint8Array, port: number, scope = 0): Uint8Array {
  const b = new Uint8Array(28);
  const v = new DataView(b.buffer);
  v.setUint16(0, AF_INET6, true);
  v.setUint16(2, port, false);
  b.set(addr, 8);
  v.setUint32(24, scope, true);
  return b;
}

export function allowedIp(family: number, addr: Uint8Array, cidr: number): Uint8Array {
  return nest(0, [nla(AIP.FAMILY, u16(family)), nla(AIP.IPADDR, addr), nla(AIP.CIDR, u8(cidr))]);
}

/** Deterministic 32-byte key: fill byte i, last byte tag (so keys differ). */
export function key(fill: number, tag = 0): Uint8Array {
  const k = new Uint8Array(32).fill(fill & 0xff);
  k[31] = tag & 0xff;
  k[30] = (tag >> 8) & 0xff;
  return k;
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}
