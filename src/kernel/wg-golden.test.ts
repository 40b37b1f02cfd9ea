/**
 * Golden bytes of every WireGuard generic-netlink message the addon builds or parses. The
 * expected bytes come from netlink-encode.test-util.ts (written from the uapi layout), never
 * from the builder itself.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import type { NativeAddon, WgDeviceNative, WgPeerNative } from "./addon-api.ts";
import { loadAddon } from "./addon.ts";
import { NativeError } from "./errors.ts";
import {
  AF_INET,
  AF_INET6,
  AIP,
  DEV,
  NLA_F_NESTED,
  NLM_F_ACK,
  NLM_F_MULTI,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  PEER,
  WG_CMD_GET_DEVICE,
  WG_CMD_SET_DEVICE,
  WGDEVICE_F_REPLACE_PEERS,
  WGPEER_F_REMOVE_ME,
  WGPEER_F_REPLACE_ALLOWEDIPS,
  WGPEER_F_UPDATE_ONLY,
  allowedIp,
  concat,
  ctlMsg,
  genlMsg,
  hex,
  key,
  nest,
  nla,
  sockaddrIn,
  sockaddrIn6,
  strz,
  u16,
  u32,
  u64,
} from "./netlink-encode.test-util.ts";

const FAMILY = 0x1b;
const SEQ = 1000;
const MSG_MAX = 4096;
const REQ = NLM_F_REQUEST | NLM_F_ACK;

let addon: NativeAddon;
beforeAll(() => {
  addon = loadAddon();
});

const hexAll = (msgs: Uint8Array[]): string[] => msgs.map(hex);

describe("wgBuildSet golden bytes", () => {
  test("device only: name alone", () => {
    const got = addon.wgBuildSet({ ifname: "wg0", peers: [] }, FAMILY, SEQ);
    const want = genlMsg(FAMILY, REQ, SEQ, WG_CMD_SET_DEVICE, [nla(DEV.IFNAME, strz("wg0"))]);
    expect(hexAll(got)).toEqual([hex(want)]);
    // Spelled out once byte by byte so the encoder itself is pinned too.
    expect(hex(want)).toBe("1c0000001b0005" + "00e8030000" + "00000000" + "0101" + "0000" + "08000200" + "77673000");
  });

  test("device attributes: private key, port, fwmark, replace-peers", () => {
    const priv = key(0x11);
    const got = addon.wgBuildSet(
      { ifname: "plexd0", privateKey: priv, listenPort: 51820, fwmark: 0x1234, replacePeers: true, peers: [] },
      FAMILY,
      SEQ,
    );
    const want = genlMsg(FAMILY, REQ, SEQ, WG_CMD_SET_DEVICE, [
      nla(DEV.IFNAME, strz("plexd0")),
      nla(DEV.PRIVATE_KEY, priv),
      nla(DEV.LISTEN_PORT, u16(51820)),
      nla(DEV.FWMARK, u32(0x1234)),
      nla(DEV.FLAGS, u32(WGDEVICE_F_REPLACE_PEERS)),
    ]);
    expect(hexAll(got)).toEqual([hex(want)]);
  });

  test("zero listen port and fwmark are sent (0 = choose / disable), absent ones are not", () => {
    const got = addon.wgBuildSet({ ifname: "wg0", listenPort: 0, fwmark: 0, peers: [] }, FAMILY, 7);
    const want = genlMsg(FAMILY, REQ, 7, WG_CMD_SET_DEVICE, [
      nla(DEV.IFNAME, strz("wg0")),
      nla(DEV.LISTEN_PORT, u16(0)),
      nla(DEV.FWMARK, u32(0)),
    ]);
    expect(hexAll(got)).toEqual([hex(want)]);
  });

  test("full peer: psk, v4 endpoint, keepalive, replace allowed IPs, v4+v6 allowed IPs", () => {
    const pub = key(0x22);
    const psk = key(0x33);
    const got = addon.wgBuildSet(
      {
        ifname: "wg0",
        peers: [
          {
            publicKey: pub,
            presharedKey: psk,
            endpoint: "192.0.2.7:51820",
            persistentKeepalive: 25,
            replaceAllowedIps: true,
            allowedIps: ["10.100.0.2/32", "fd00:1::/64"],
          },
        ],
      },
      FAMILY,
      SEQ,
    );
    const v6 = new Uint8Array(16);
    v6.set([0xfd, 0x00, 0x00, 0x01]);
    const want = genlMsg(FAMILY, REQ, SEQ, WG_CMD_SET_DEVICE, [
      nla(DEV.IFNAME, strz("wg0")),
      nest(DEV.PEERS, [
        nest(0, [
          nla(PEER.PUBLIC_KEY, pub),
          nla(PEER.PRESHARED_KEY, psk),
          nla(PEER.ENDPOINT, sockaddrIn([192, 0, 2, 7], 51820)),
          nla(PEER.KEEPALIVE, u16(25)),
          nla(PEER.FLAGS, u32(WGPEER_F_REPLACE_ALLOWEDIPS)),
          nest(PEER.ALLOWEDIPS, [
            allowedIp(AF_INET, Uint8Array.of(10, 100, 0, 2), 32),
            allowedIp(AF_INET6, v6, 64),
          ]),
        ]),
      ]),
    ]);
    expect(hexAll(got)).toEqual([hex(want)]);
  });

  test("v6 endpoint (sockaddr_in6 with scope id), zero PSK removes, keepalive 0 disables", () => {
    const pub = key(0x44);
    const got = addon.wgBuildSet(
      {
        ifname: "wg0",
        peers: [{ publicKey: pub, presharedKey: new Uint8Array(32), endpoint: "[fe80::1%7]:443", persistentKeepalive: 0 }],
      },
      FAMILY,
      SEQ,
    );
    const a = new Uint8Array(16);
    a[0] = 0xfe;
    a[1] = 0x80;
    a[15] = 1;
    const want = genlMsg(FAMILY, REQ, SEQ, WG_CMD_SET_DEVICE, [
      nla(DEV.IFNAME, strz("wg0")),
      nest(DEV.PEERS, [
        nest(0, [
          nla(PEER.PUBLIC_KEY, pub),
          nla(PEER.PRESHARED_KEY, new Uint8Array(32)),
          nla(PEER.ENDPOINT, sockaddrIn6(a, 443, 7)),
          nla(PEER.KEEPALIVE, u16(0)),
        ]),
      ]),
    ]);
    expect(hexAll(got)).toEqual([hex(want)]);
  });

  test("remove and update-only peers carry only key + flags", () => {
    const got = addon.wgBuildSet(
      {
        ifname: "wg0",
        peers: [
          { publicKey: key(1), remove: true },
          { publicKey: key(2), updateOnly: true, allowedIps: ["10.0.0.0/8"] },
        ],
      },
      FAMILY,
      SEQ,
    );
    const want = genlMsg(FAMILY, REQ, SEQ, WG_CMD_SET_DEVICE, [
      nla(DEV.IFNAME, strz("wg0")),
      nest(DEV.PEERS, [
        nest(0, [nla(PEER.PUBLIC_KEY, key(1)), nla(PEER.FLAGS, u32(WGPEER_F_REMOVE_ME))]),
        nest(0, [
          nla(PEER.PUBLIC_KEY, key(2)),
          nla(PEER.FLAGS, u32(WGPEER_F_UPDATE_ONLY)),
          nest(PEER.ALLOWEDIPS, [allowedIp(AF_INET, Uint8Array.of(10, 0, 0, 0), 8)]),
        ]),
      ]),
    ]);
    expect(hexAll(got)).toEqual([hex(want)]);
  });

  test("bad input rejects with a NativeError naming the field", () => {
    const bad: Array<[WgDeviceNative, RegExp]> = [
      [{ ifname: "", peers: [] }, /interface name/],
      [{ ifname: "a-very-long-interface-name", peers: [] }, /interface name/],
      [{ ifname: "wg0", privateKey: new Uint8Array(31), peers: [] }, /privateKey/],
      [{ ifname: "wg0", listenPort: 70000, peers: [] }, /listenPort/],
      [{ ifname: "wg0", peers: [{ publicKey: key(1), endpoint: "1.2.3.4" }] }, /endpoint/],
      [{ ifname: "wg0", peers: [{ publicKey: key(1), endpoint: "[::1:80" }] }, /endpoint/],
      [{ ifname: "wg0", peers: [{ publicKey: key(1), allowedIps: ["10.0.0.0/33"] }] }, /allowed IP/],
      [{ ifname: "wg0", peers: [{ publicKey: key(1), allowedIps: ["nope"] }] }, /allowed IP/],
    ];
    for (const [dev, msg] of bad) {
      let caught: unknown;
      try {
        addon.wgBuildSet(dev, FAMILY, SEQ);
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(NativeError);
      expect((caught as NativeError).code).toBe("EINVAL");
      expect((caught as NativeError).op).toBe("wg.build_set");
      expect((caught as NativeError).message).toMatch(msg);
    }
  });
});

// ---- chunking -------------------------------------------------------------------------

function ipBytes(cidr: string): { family: number; addr: Uint8Array; bits: number } {
  const [host = "", bits = ""] = cidr.split("/");
  if (host.includes(":")) {
    // Only the "fdXX:YYYY::ZZ" forms generated below.
    const [head = "", tail = ""] = host.split("::");
    const groups = [...head.split(":").filter(Boolean), ...Array(8).fill("0")].slice(0, 8);
    if (tail) groups[7] = tail;
    const addr = new Uint8Array(16);
    groups.forEach((g, i) => {
      const n = Number.parseInt(g, 16);
      addr[2 * i] = n >> 8;
      addr[2 * i + 1] = n & 0xff;
    });
    return { family: AF_INET6, addr, bits: Number(bits) };
  }
  return { family: AF_INET, addr: Uint8Array.from(host.split(".").map(Number)), bits: Number(bits) };
}

function peerHeaderAttrs(p: WgPeerNative, continuation: boolean): Uint8Array[] {
  const attrs = [nla(PEER.PUBLIC_KEY, p.publicKey)];
  let flags = (p.remove ? WGPEER_F_REMOVE_ME : 0) | (p.updateOnly ? WGPEER_F_UPDATE_ONLY : 0);
  if (!continuation) {
    if (p.replaceAllowedIps) flags |= WGPEER_F_REPLACE_ALLOWEDIPS;
    if (p.presharedKey) attrs.push(nla(PEER.PRESHARED_KEY, p.presharedKey));
    if (p.endpoint) {
      const [h = "", port = ""] = p.endpoint.split(":");
      attrs.push(nla(PEER.ENDPOINT, sockaddrIn(h.split(".").map(Number) as [number, number, number, number], Number(port))));
    }
    if (p.persistentKeepalive !== undefined) attrs.push(nla(PEER.KEEPALIVE, u16(p.persistentKeepalive)));
  }
  if (flags) attrs.push(nla(PEER.FLAGS, u32(flags)));
  return attrs;
}

const size = (parts: Uint8Array[]): number => parts.reduce((n, p) => n + p.length, 0);

/**
 * The wireguard-tools splitting rule, restated: fill a message up to MSG_MAX; a peer whose
 * header does not fit starts the next message; a peer whose allowed IPs do not fit is closed
 * with what fitted and continues in the next message under the same key, without
 * REPLACE_ALLOWEDIPS (and without PSK/endpoint/keepalive); device attributes only in the first.
 */
function expectedChunks(dev: WgDeviceNative): Uint8Array[] {
  const out: Uint8Array[] = [];
  let pi = 0;
  let ai = 0;
  let inIps = false;
  for (let first = true; ; first = false) {
    const head = [nla(DEV.IFNAME, strz(dev.ifname))];
    if (first) {
      if (dev.privateKey) head.push(nla(DEV.PRIVATE_KEY, dev.privateKey));
      if (dev.listenPort !== undefined) head.push(nla(DEV.LISTEN_PORT, u16(dev.listenPort)));
      if (dev.replacePeers) head.push(nla(DEV.FLAGS, u32(WGDEVICE_F_REPLACE_PEERS)));
    }
    let used = 20 + size(head) + 4; // + WGDEVICE_A_PEERS nest header
    const peers: Uint8Array[] = [];
    let done = true;
    for (; pi < dev.peers.length; pi++) {
      const p = dev.peers[pi]!;
      const hdr = peerHeaderAttrs(p, inIps);
      if (used + 4 + size(hdr) > MSG_MAX) {
        done = false;
        break;
      }
      used += 4 + size(hdr);
      const ips = p.allowedIps ?? [];
      const children = [...hdr];
      let full = false;
      if (ips.length) {
        if (!inIps) {
          inIps = true;
          ai = 0;
        }
        if (used + 4 > MSG_MAX) full = true;
        else {
          used += 4;
          const nests: Uint8Array[] = [];
          for (; ai < ips.length; ai++) {
            const { family, addr, bits } = ipBytes(ips[ai]!);
            const n = allowedIp(family, addr, bits);
            if (used + n.length > MSG_MAX) {
              full = true;
              break;
            }
            used += n.length;
            nests.push(n);
          }
          children.push(nest(PEER.ALLOWEDIPS, nests));
        }
      }
      peers.push(nest(0, children));
      if (full) {
        done = false;
        break;
      }
      inIps = false;
      ai = 0;
    }
    out.push(genlMsg(FAMILY, REQ, SEQ + out.length, WG_CMD_SET_DEVICE, [...head, nest(DEV.PEERS, peers)]));
    if (done) return out;
  }
}

/** Minimal decoder for the invariant checks. */
interface Attr {
  type: number;
  nested: boolean;
  data: Uint8Array;
}
function attrs(b: Uint8Array): Attr[] {
  const out: Attr[] = [];
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let o = 0; o + 4 <= b.length; ) {
    const len = v.getUint16(o, true);
    const t = v.getUint16(o + 2, true);
    out.push({ type: t & 0x3fff, nested: (t & NLA_F_NESTED) !== 0, data: b.subarray(o + 4, o + len) });
    o += (len + 3) & ~3;
  }
  return out;
}
const find = (as: Attr[], t: number): Attr | undefined => as.find((a) => a.type === t);
const le32 = (d: Uint8Array): number => new DataView(d.buffer, d.byteOffset, 4).getUint32(0, true);

function makePeers(n: number, ipsEach: number, big?: { index: number; ips: number }): WgPeerNative[] {
  return Array.from({ length: n }, (_, i) => {
    const count = big && big.index === i ? big.ips : ipsEach;
    const allowedIps = Array.from({ length: count }, (_, j) =>
      j % 2 === 0 ? `10.${(i >> 8) & 255}.${i & 255}.${j & 255}/32` : `fd${(i & 0xff).toString(16)}:${j.toString(16)}::${(i + 1).toString(16)}/128`,
    );
    return {
      publicKey: key(0x80 + (i % 64), i),
      presharedKey: key(0x40, i),
      endpoint: `198.51.100.${i % 250}:${51000 + i}`,
      persistentKeepalive: 25,
      replaceAllowedIps: true,
      allowedIps,
    };
  });
}

describe("wgBuildSet chunking", () => {
  const dev: WgDeviceNative = {
    ifname: "plexd0",
    privateKey: key(0x11),
    listenPort: 51820,
    replacePeers: true,
    peers: makePeers(200, 3, { index: 57, ips: 400 }),
  };

  test("200 peers + one peer with 400 allowed IPs: exact bytes of every message", () => {
    const got = addon.wgBuildSet(dev, FAMILY, SEQ);
    const want = expectedChunks(dev);
    expect(want.length).toBeGreaterThan(5);
    expect(got.length).toBe(want.length);
    expect(hexAll(got)).toEqual(hexAll(want));
  });

  test("invariants: size cap, seq, device attrs once, every peer once, continuation semantics", () => {
    const got = addon.wgBuildSet(dev, FAMILY, SEQ);
    const seen = new Map<string, string[]>(); // key -> allowed IPs in order (bytes hex)
    const headers = new Map<string, number>(); // key -> full headers seen
    let prevLastKey: string | undefined;
    let continuations = 0;
    got.forEach((m, i) => {
      const v = new DataView(m.buffer, m.byteOffset, m.byteLength);
      expect(m.length).toBeLessThanOrEqual(MSG_MAX);
      expect(v.getUint32(0, true)).toBe(m.length);
      expect(v.getUint16(6, true)).toBe(REQ);
      expect(v.getUint32(8, true)).toBe(SEQ + i);
      const top = attrs(m.subarray(20));
      expect(new TextDecoder().decode(find(top, DEV.IFNAME)!.data)).toBe("plexd0\0");
      expect(find(top, DEV.FLAGS) !== undefined).toBe(i === 0);
      expect(find(top, DEV.PRIVATE_KEY) !== undefined).toBe(i === 0);
      expect(find(top, DEV.LISTEN_PORT) !== undefined).toBe(i === 0);
      const peers = attrs(find(top, DEV.PEERS)!.data);
      expect(peers.length).toBeGreaterThan(0);
      peers.forEach((pa, j) => {
        const p = attrs(pa.data);
        const k = hex(find(p, PEER.PUBLIC_KEY)!.data);
        const flags = find(p, PEER.FLAGS);
        const isCont = j === 0 && k === prevLastKey;
        if (isCont) {
          continuations++;
          // Continuation: same key, no REPLACE_ALLOWEDIPS, nothing but key (+ allowed IPs).
          expect(flags).toBeUndefined();
          expect(find(p, PEER.PRESHARED_KEY)).toBeUndefined();
          expect(find(p, PEER.ENDPOINT)).toBeUndefined();
          expect(find(p, PEER.KEEPALIVE)).toBeUndefined();
        } else {
          expect(le32(flags!.data)).toBe(WGPEER_F_REPLACE_ALLOWEDIPS);
          expect(find(p, PEER.PRESHARED_KEY)).toBeDefined();
          headers.set(k, (headers.get(k) ?? 0) + 1);
        }
        const ips = find(p, PEER.ALLOWEDIPS);
        const list = seen.get(k) ?? [];
        for (const ip of ips ? attrs(ips.data) : []) {
          const f = attrs(ip.data);
          list.push(`${hex(find(f, AIP.IPADDR)!.data)}/${find(f, AIP.CIDR)!.data[0]}`);
        }
        seen.set(k, list);
      });
      prevLastKey = hex(find(attrs(peers[peers.length - 1]!.data), PEER.PUBLIC_KEY)!.data);
    });
    expect(continuations).toBeGreaterThanOrEqual(1);
    expect(headers.size).toBe(200);
    for (const n of headers.values()) expect(n).toBe(1);
    for (const p of dev.peers) {
      const want = (p.allowedIps ?? []).map((c) => {
        const { addr, bits } = ipBytes(c);
        return `${hex(addr)}/${bits}`;
      });
      expect(seen.get(hex(p.publicKey))).toEqual(want);
    }
  });

  test("a single peer with 1000 allowed IPs splits mid-list and continues under its key", () => {
    const one: WgDeviceNative = { ifname: "wg0", peers: makePeers(1, 1000) };
    const got = addon.wgBuildSet(one, FAMILY, SEQ);
    expect(hexAll(got)).toEqual(hexAll(expectedChunks(one)));
    expect(got.length).toBeGreaterThan(2);
  });

  test("no replace-peers: continuation messages never carry the device flags attribute", () => {
    const d: WgDeviceNative = { ifname: "wg0", peers: makePeers(300, 2) };
    const got = addon.wgBuildSet(d, FAMILY, SEQ);
    expect(hexAll(got)).toEqual(hexAll(expectedChunks(d)));
    for (const m of got) expect(find(attrs(m.subarray(20)), DEV.FLAGS)).toBeUndefined();
  });
});

// ---- GET parsing ----------------------------------------------------------------------

describe("wgParseGet", () => {
  const priv = key(0x01);
  const pub = key(0x02);
  const pA = key(0xa0);
  const pB = key(0xb0);
  const pC = key(0xc0);
  const v6 = new Uint8Array(16);
  v6.set([0xfd, 0x00], 0);
  v6[15] = 0x0b;
  const ts = concat([u64(1_700_000_000n), u64(123n)]);

  // Message 1: device attributes + peer A (complete) + peer B (first allowed IP);
  // message 2: only IFNAME + PEERS: peer B continued (key + the rest of its IPs), peer C.
  const m1 = genlMsg(FAMILY, NLM_F_MULTI, 5, WG_CMD_GET_DEVICE, [
    nla(DEV.LISTEN_PORT, u16(51820)),
    nla(DEV.FWMARK, u32(0)),
    nla(DEV.IFINDEX, u32(9)),
    nla(DEV.IFNAME, strz("plexd0")),
    nla(DEV.PRIVATE_KEY, priv),
    nla(DEV.PUBLIC_KEY, pub),
    nest(DEV.PEERS, [
      nest(0, [
        nla(PEER.PUBLIC_KEY, pA),
        nla(PEER.PRESHARED_KEY, key(0x55)),
        nla(PEER.ENDPOINT, sockaddrIn([203, 0, 113, 9], 51821)),
        nla(PEER.KEEPALIVE, u16(25)),
        nla(PEER.LAST_HANDSHAKE, ts),
        nla(PEER.RX, u64(1000n)),
        nla(PEER.TX, u64(2000n)),
        nla(10, u32(1)), // WGPEER_A_PROTOCOL_VERSION
        nest(PEER.ALLOWEDIPS, [allowedIp(AF_INET, Uint8Array.of(10, 100, 0, 2), 32)]),
      ]),
      nest(0, [
        nla(PEER.PUBLIC_KEY, pB),
        nla(PEER.PRESHARED_KEY, new Uint8Array(32)),
        nla(PEER.ENDPOINT, sockaddrIn6(v6, 443)),
        nla(PEER.KEEPALIVE, u16(0)),
        nla(PEER.LAST_HANDSHAKE, concat([u64(0n), u64(0n)])),
        nla(PEER.RX, u64(0n)),
        nla(PEER.TX, u64(0n)),
        nest(PEER.ALLOWEDIPS, [allowedIp(AF_INET, Uint8Array.of(10, 100, 0, 3), 32)]),
      ]),
    ]),
  ]);
  const m2 = genlMsg(FAMILY, NLM_F_MULTI, 5, WG_CMD_GET_DEVICE, [
    nla(DEV.IFNAME, strz("plexd0")),
    nest(DEV.PEERS, [
      nest(0, [
        nla(PEER.PUBLIC_KEY, pB),
        nest(PEER.ALLOWEDIPS, [
          allowedIp(AF_INET, Uint8Array.of(192, 168, 7, 0), 24),
          allowedIp(AF_INET6, v6, 128),
        ]),
      ]),
      nest(0, [nla(PEER.PUBLIC_KEY, pC), nest(PEER.ALLOWEDIPS, [])]),
    ]),
  ]);
  const done = ctlMsg(NLMSG_DONE, NLM_F_MULTI, 5, 0);

  const expected = {
    ifname: "plexd0",
    privateKey: priv,
    publicKey: pub,
    listenPort: 51820,
    fwmark: 0,
    peers: [
      {
        publicKey: pA,
        presharedKey: key(0x55),
        endpoint: "203.0.113.9:51821",
        persistentKeepalive: 25,
        allowedIps: ["10.100.0.2/32"],
        lastHandshakeSec: 1_700_000_000,
        rxBytes: 1000,
        txBytes: 2000,
      },
      {
        publicKey: pB,
        endpoint: "[fd00::b]:443",
        persistentKeepalive: 0,
        allowedIps: ["10.100.0.3/32", "192.168.7.0/24", "fd00::b/128"],
        lastHandshakeSec: 0,
        rxBytes: 0,
        txBytes: 0,
      },
      { publicKey: pC, allowedIps: [] },
    ],
  };

  test("multipart dump: peer continued across messages is merged, allowed IPs in order", () => {
    expect(addon.wgParseGet([m1, m2, done])).toEqual(expected);
  });

  test("same replies concatenated into one buffer (one recv) parse the same", () => {
    expect(addon.wgParseGet([concat([m1, m2, done])])).toEqual(expected);
  });

  test("unaligned views are accepted", () => {
    const buf = new Uint8Array(m1.length + 1);
    buf.set(m1, 1);
    expect(addon.wgParseGet([buf.subarray(1), m2]).peers).toHaveLength(3);
  });

  test("an NLMSG_ERROR in the stream rejects with its errno", () => {
    let caught: unknown;
    try {
      addon.wgParseGet([m1, ctlMsg(NLMSG_ERROR, 0, 5, -19)]);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(NativeError);
    expect((caught as NativeError).code).toBe("ENODEV");
    expect((caught as NativeError).op).toBe("wg.parse_get");
  });

  test("bad attribute sizes are EBADMSG, not garbage", () => {
    const badKey = genlMsg(FAMILY, NLM_F_MULTI, 5, WG_CMD_GET_DEVICE, [nla(DEV.PRIVATE_KEY, new Uint8Array(31))]);
    const badCidr = genlMsg(FAMILY, NLM_F_MULTI, 5, WG_CMD_GET_DEVICE, [
      nest(DEV.PEERS, [nest(0, [nla(PEER.PUBLIC_KEY, pA), nest(PEER.ALLOWEDIPS, [allowedIp(AF_INET, Uint8Array.of(1, 2, 3, 4), 33)])])]),
    ]);
    for (const m of [badKey, badCidr, m1.subarray(0, m1.length - 4)]) {
      expect(() => addon.wgParseGet([m])).toThrow(NativeError);
    }
  });
});
