/**
 * Fuzz-style robustness of the rtnetlink dump decoders (native/rtnl.c: link, addr, route),
 * reached without a socket through the addon's `_rtnlParse` hook, which calls the same
 * per-message parse functions the linkList/addrList/routeList dumps use. Seeds are realistic
 * kernel replies written from the documented layouts (linux/rtnetlink.h, if_link.h,
 * if_addr.h); they are then truncated (with and without patching nlmsg_len, so both the
 * framing checks and the decoders see short data), mutated and replaced by random bytes.
 * Fixed seeds: a failure reproduces. The only acceptable outcomes are records or a
 * NativeError; a crash kills the test process, any other throw fails the test.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { seededRandom as rng } from "../util/seeded-random.test-util.ts";
import { type AddonInternals, loadAddon } from "./addon.ts";
import type { NativeAddon } from "./addon-api.ts";
import { NativeError } from "./errors.ts";
import { AF_INET, AF_INET6, NLMSG_DONE, NLM_F_MULTI, concat, ctlMsg, nest, nla, strz, u32 } from "./netlink-encode.test-util.ts";

// linux/rtnetlink.h and friends (only what the seeds need).
const RTM_NEWLINK = 16;
const RTM_NEWADDR = 20;
const RTM_NEWROUTE = 24;
const IFF_UP = 0x1;
const IFLA = { ADDRESS: 1, IFNAME: 3, MTU: 4, LINKINFO: 18 } as const;
const IFLA_INFO = { KIND: 1, DATA: 2 } as const;
const IFA = { ADDRESS: 1, LOCAL: 2, LABEL: 3 } as const;
const RTA = { DST: 1, OIF: 4, GATEWAY: 5, PRIORITY: 6, PREFSRC: 7, TABLE: 15 } as const;
const RTN_UNICAST = 1;
const RTN_LOCAL = 2;
const RTM_F_CLONED = 0x200;

type Kind = "link" | "addr" | "route";

/** struct nlmsghdr + family header + attributes, as one dump part (NLM_F_MULTI). */
function rtMsg(type: number, familyHdr: Uint8Array, attrs: Uint8Array[], seq = 7): Uint8Array {
  const body = concat([familyHdr, ...attrs]);
  const out = new Uint8Array(16 + body.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, out.length, true);
  v.setUint16(4, type, true);
  v.setUint16(6, NLM_F_MULTI, true);
  v.setUint32(8, seq, true);
  out.set(body, 16);
  return out;
}

/** struct ifinfomsg (16 bytes). */
function ifinfomsg(index: number, flags: number, ifType = 1): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  b[0] = 0; // AF_UNSPEC
  v.setUint16(2, ifType, true);
  v.setInt32(4, index, true);
  v.setUint32(8, flags, true);
  return b;
}

/** struct ifaddrmsg (8 bytes). */
function ifaddrmsg(family: number, prefixlen: number, index: number): Uint8Array {
  const b = Uint8Array.of(family, prefixlen, 0x80 /* IFA_F_PERMANENT */, 0, 0, 0, 0, 0);
  new DataView(b.buffer).setUint32(4, index, true);
  return b;
}

/** struct rtmsg (12 bytes). */
function rtmsg(family: number, dstLen: number, table: number, type = RTN_UNICAST, flags = 0): Uint8Array {
  const b = Uint8Array.of(family, dstLen, 0, 0, table, 4 /* RTPROT_STATIC */, 0, type, 0, 0, 0, 0);
  new DataView(b.buffer).setUint32(8, flags, true);
  return b;
}

const v6 = (last: number, first = 0xfd): Uint8Array => {
  const a = new Uint8Array(16);
  a[0] = first;
  a[15] = last;
  return a;
};

// A dump of three links: loopback, a veth, the WireGuard interface (with IFLA_INFO_DATA).
const links = [
  rtMsg(RTM_NEWLINK, ifinfomsg(1, IFF_UP | 0x8, 772), [
    nla(IFLA.IFNAME, strz("lo")),
    nla(IFLA.MTU, u32(65536)),
    nla(IFLA.ADDRESS, new Uint8Array(6)),
  ]),
  rtMsg(RTM_NEWLINK, ifinfomsg(7, 0), [
    nla(IFLA.IFNAME, strz("veth-px1")),
    nla(IFLA.MTU, u32(1500)),
    nest(IFLA.LINKINFO, [nla(IFLA_INFO.KIND, strz("veth"))]),
  ]),
  rtMsg(RTM_NEWLINK, ifinfomsg(9, IFF_UP, 65534), [
    nla(IFLA.IFNAME, strz("plexd0")),
    nla(IFLA.MTU, u32(1420)),
    nest(IFLA.LINKINFO, [nla(IFLA_INFO.KIND, strz("wireguard")), nest(IFLA_INFO.DATA, [])]),
  ]),
];

const addrs = [
  rtMsg(RTM_NEWADDR, ifaddrmsg(AF_INET, 8, 1), [
    nla(IFA.ADDRESS, Uint8Array.of(127, 0, 0, 1)),
    nla(IFA.LOCAL, Uint8Array.of(127, 0, 0, 1)),
    nla(IFA.LABEL, strz("lo")),
  ]),
  rtMsg(RTM_NEWADDR, ifaddrmsg(AF_INET, 32, 9), [
    // Point-to-point style: IFA_ADDRESS is the peer, IFA_LOCAL ours.
    nla(IFA.ADDRESS, Uint8Array.of(10, 100, 0, 254)),
    nla(IFA.LOCAL, Uint8Array.of(10, 100, 0, 1)),
  ]),
  rtMsg(RTM_NEWADDR, ifaddrmsg(AF_INET6, 128, 9), [nla(IFA.ADDRESS, v6(1))]),
];

const routes = [
  rtMsg(RTM_NEWROUTE, rtmsg(AF_INET, 24, 254), [
    nla(RTA.TABLE, u32(254)),
    nla(RTA.DST, Uint8Array.of(10, 100, 0, 0)),
    nla(RTA.PREFSRC, Uint8Array.of(10, 100, 0, 1)),
    nla(RTA.OIF, u32(9)),
  ]),
  rtMsg(RTM_NEWROUTE, rtmsg(AF_INET, 0, 254), [
    nla(RTA.TABLE, u32(254)),
    nla(RTA.GATEWAY, Uint8Array.of(192, 168, 1, 1)),
    nla(RTA.PRIORITY, u32(100)),
    nla(RTA.OIF, u32(7)),
  ]),
  // Table above 255: rtm_table = RT_TABLE_UNSPEC, the real id in RTA_TABLE.
  rtMsg(RTM_NEWROUTE, rtmsg(AF_INET6, 64, 0), [nla(RTA.TABLE, u32(51820)), nla(RTA.DST, v6(0)), nla(RTA.OIF, u32(9))]),
  // Skipped by the decoder: a local route and a cached clone.
  rtMsg(RTM_NEWROUTE, rtmsg(AF_INET, 32, 255, RTN_LOCAL), [nla(RTA.DST, Uint8Array.of(127, 0, 0, 1)), nla(RTA.OIF, u32(1))]),
  rtMsg(RTM_NEWROUTE, rtmsg(AF_INET6, 128, 254, RTN_UNICAST, RTM_F_CLONED), [nla(RTA.DST, v6(5)), nla(RTA.OIF, u32(9))]),
];

const seeds: Record<Kind, Uint8Array[]> = { link: links, addr: addrs, route: routes };
const KINDS: Kind[] = ["link", "addr", "route"];
const done = ctlMsg(NLMSG_DONE, NLM_F_MULTI, 7, 0);

let addon: NativeAddon & AddonInternals;
beforeAll(() => {
  addon = loadAddon();
});

/** Typed overloads collapse to one call shape for the loops. */
function parse(kind: Kind, msgs: Uint8Array[], filter?: number): unknown[] {
  return (addon._rtnlParse as (k: Kind, m: Uint8Array[], f?: number) => unknown[])(kind, msgs, filter);
}

/** Runs fn; "ok" or "error"; any throw other than a NativeError of the hook fails the test. */
function outcome(fn: () => unknown): "ok" | "error" {
  try {
    fn();
    return "ok";
  } catch (e) {
    if (!(e instanceof NativeError)) throw e;
    expect(e.op).toBe("rtnl.parse");
    expect(e.errno).toBeGreaterThan(0);
    return "error";
  }
}

/** Copy of m cut to n bytes with nlmsg_len patched to n, so the decoder itself sees it short. */
function shortened(m: Uint8Array, n: number): Uint8Array {
  const c = m.slice(0, n);
  if (n >= 4) new DataView(c.buffer).setUint32(0, n, true);
  return c;
}

/** 1–4 random edits: byte overwrite, length-field low byte, bit flip. */
function mutate(r: () => number, src: Uint8Array): Uint8Array {
  const m = src.slice();
  const edits = 1 + Math.floor(r() * 4);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(r() * m.length);
    const kind = r();
    if (kind < 0.45) m[at] = Math.floor(r() * 256);
    else if (kind < 0.8) m[at & ~3] = Math.floor(r() * 64); // nlmsg_len / nla_len low bytes
    else m[at] = (m[at] ?? 0) ^ (1 << Math.floor(r() * 8));
  }
  return m;
}

describe("rtnl decoders: valid seeds", () => {
  test("links", () => {
    expect(parse("link", [concat([...links, done])])).toEqual([
      { index: 1, name: "lo", kind: "", mtu: 65536, up: true },
      { index: 7, name: "veth-px1", kind: "veth", mtu: 1500, up: false },
      { index: 9, name: "plexd0", kind: "wireguard", mtu: 1420, up: true },
    ]);
  });

  test("addresses (IFA_LOCAL preferred, ifindex filter)", () => {
    expect(parse("addr", addrs)).toEqual([
      { ifindex: 1, family: 4, address: "127.0.0.1", prefixlen: 8 },
      { ifindex: 9, family: 4, address: "10.100.0.1", prefixlen: 32 },
      { ifindex: 9, family: 6, address: "fd00::1", prefixlen: 128 },
    ]);
    expect(parse("addr", addrs, 1)).toHaveLength(1);
    expect(parse("addr", addrs, 42)).toEqual([]);
  });

  test("routes (unicast only, RTA_TABLE wins, table filter)", () => {
    expect(parse("route", routes)).toEqual([
      { family: 4, dst: "10.100.0.0", prefixlen: 24, ifindex: 9, src: "10.100.0.1", table: 254 },
      { family: 4, dst: "0.0.0.0", prefixlen: 0, ifindex: 7, gateway: "192.168.1.1", table: 254 },
      { family: 6, dst: "fd00::", prefixlen: 64, ifindex: 9, table: 51820 },
    ]);
    expect(parse("route", routes, 51820)).toHaveLength(1);
  });

  test("other kinds' messages are skipped, not misparsed", () => {
    expect(parse("link", [...addrs, ...routes])).toEqual([]);
    expect(parse("addr", [...links, ...routes])).toEqual([]);
    expect(parse("route", [...links, ...addrs])).toEqual([]);
  });

  test("framing and kernel errors are NativeErrors", () => {
    const first = links[0] as Uint8Array;
    expect(() => parse("link", [first.subarray(0, 10)])).toThrow(NativeError); // short header
    expect(() => parse("link", [concat([first, new Uint8Array(20)])])).toThrow(NativeError); // trailing junk
    expect(() => parse("link", [ctlMsg(2 /* NLMSG_ERROR */, 0, 7, -1)])).toThrow(NativeError);
    expect(() => parse("link", [shortened(first, 20)])).toThrow(NativeError); // < ifinfomsg
    expect(() => parse("nope" as Kind, [])).toThrow(NativeError);
    expect(() => parse("link", [new Uint16Array(4) as unknown as Uint8Array])).toThrow(NativeError);
  });
});

describe("rtnl decoders: fuzz (seeded)", () => {
  for (const kind of KINDS) {
    test(`${kind}: every truncation of every seed, raw and with nlmsg_len patched`, () => {
      const seen = { ok: 0, error: 0 };
      for (const m of seeds[kind]) {
        for (let n = 0; n <= m.length; n++) {
          seen[outcome(() => parse(kind, [m.subarray(0, n)]))]++;
          seen[outcome(() => parse(kind, [shortened(m, n)]))]++;
        }
      }
      expect(seen.ok).toBeGreaterThan(0);
      expect(seen.error).toBeGreaterThan(0);
    });

    test(`${kind}: 4000 mutated dumps (edits, splits, splices)`, () => {
      const r = rng(0x7a11 + kind.length);
      const seen = { ok: 0, error: 0 };
      const whole = concat([...seeds[kind], done]);
      for (let i = 0; i < 4000; i++) {
        const pick = r();
        let m: Uint8Array;
        if (pick < 0.4) m = mutate(r, whole);
        else if (pick < 0.8) m = mutate(r, seeds[kind][Math.floor(r() * seeds[kind].length)] as Uint8Array);
        else {
          // Splice: head of one message, tail of another, header length left as it was.
          const a = seeds[kind][Math.floor(r() * seeds[kind].length)] as Uint8Array;
          const b = seeds[kind][Math.floor(r() * seeds[kind].length)] as Uint8Array;
          m = concat([a.subarray(0, Math.floor(r() * a.length)), b.subarray(Math.floor(r() * b.length))]);
        }
        const cut = r() < 0.3 ? Math.floor(r() * m.length) : m.length;
        const filter = r() < 0.2 ? Math.floor(r() * 300) : undefined;
        seen[outcome(() => parse(kind, [m.subarray(0, cut), m.subarray(cut)], filter))]++;
      }
      expect(seen.ok + seen.error).toBe(4000);
      expect(seen.ok).toBeGreaterThan(100);
      expect(seen.error).toBeGreaterThan(100);
    });
  }

  test("3000 random buffers into each decoder", () => {
    const r = rng(1337);
    const types = [RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE];
    let reached = 0;
    for (let i = 0; i < 3000; i++) {
      const len = Math.floor(r() * 256);
      const b = new Uint8Array(len);
      for (let j = 0; j < len; j++) b[j] = Math.floor(r() * 256);
      // Most get a plausible header (length within the buffer, a NEW* type, a sane family)
      // so the bytes get past framing into the decoders; the rest stay fully random.
      if (len >= 16 && r() < 0.75) {
        const v = new DataView(b.buffer);
        v.setUint32(0, r() < 0.8 ? len : 16 + Math.floor(r() * (len - 15)), true);
        v.setUint16(4, types[Math.floor(r() * 3)] as number, true);
        if (len > 16) b[16] = [AF_INET, AF_INET6, 0][Math.floor(r() * 3)] as number;
        if (len > 23 && r() < 0.5) b[23] = RTN_UNICAST; // rtm_type
        reached++;
      }
      for (const kind of KINDS) outcome(() => parse(kind, [b]));
    }
    expect(reached).toBeGreaterThan(1000);
  });

  test("random attribute streams behind valid family headers", () => {
    // Headers are exact, attribute bytes are random but with mostly-plausible nla_len values:
    // this is where the attribute walks and per-attribute length checks get exercised.
    const r = rng(0xa77);
    const heads: Array<[Kind, number, Uint8Array]> = [
      ["link", RTM_NEWLINK, ifinfomsg(3, IFF_UP)],
      ["addr", RTM_NEWADDR, ifaddrmsg(AF_INET6, 64, 3)],
      ["addr", RTM_NEWADDR, ifaddrmsg(AF_INET, 24, 3)],
      ["route", RTM_NEWROUTE, rtmsg(AF_INET, 16, 254)],
      ["route", RTM_NEWROUTE, rtmsg(AF_INET6, 48, 0)],
    ];
    const seen = { ok: 0, error: 0 };
    for (let i = 0; i < 3000; i++) {
      const [kind, type, hdr] = heads[i % heads.length] as [Kind, number, Uint8Array];
      const attrs: Uint8Array[] = [];
      const count = Math.floor(r() * 6);
      for (let a = 0; a < count; a++) {
        const payload = new Uint8Array(Math.floor(r() * 20));
        for (let j = 0; j < payload.length; j++) payload[j] = Math.floor(r() * 256);
        const t = Math.floor(r() * 24) | (r() < 0.1 ? 0x8000 : 0);
        const at = r() < 0.2 ? nest(t, [nla(Math.floor(r() * 4), payload)]) : nla(t, payload);
        if (r() < 0.1) new DataView(at.buffer).setUint16(0, Math.floor(r() * 64), true); // lying nla_len
        attrs.push(at);
      }
      seen[outcome(() => parse(kind, [rtMsg(type, hdr, attrs)]))]++;
    }
    expect(seen.ok).toBeGreaterThan(1000);
    expect(seen.error).toBeGreaterThan(10);
  });
});
