/**
 * rtnetlink through the addon, in a fresh network namespace: links (ifb: this kernel has no dummy driver), up/down, MTU,
 * addresses, routes in main and a >255 table. Every state the addon reports is compared with
 * what `ip -j` sees from outside. WireGuard links cannot exist on this kernel: linkAdd of kind
 * "wireguard" must reject with a typed EOPNOTSUPP, and the genl family lookup with ENOENT.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import type { NativeAddr, NativeLink, NativeRoute } from "../../src/kernel/addon-api.ts";
import type { AddonCallResult } from "../helpers/addon-runner.ts";
import { Netns, REPO_ROOT, addonInNetns, canUseNetns } from "../helpers/netns.ts";

const ADDON = `${REPO_ROOT}/native/build/Release/plexd.node`;
const canRun = existsSync(ADDON) && (await canUseNetns());
const TABLE = 1000;

function value<T>(r: AddonCallResult | undefined): T {
  if (!r) throw new Error("missing result");
  if (!r.ok) throw new Error(`addon call failed: ${JSON.stringify(r.error)}`);
  return r.value as T;
}

interface IpLink {
  ifindex: number;
  ifname: string;
  flags: string[];
  mtu: number;
  linkinfo?: { info_kind?: string };
}
interface IpAddr {
  ifindex: number;
  addr_info: Array<{ family: string; local: string; prefixlen: number }>;
}
interface IpRoute {
  dst: string;
  dev?: string;
  prefsrc?: string;
  gateway?: string;
}

describe.skipIf(!canRun)("rtnetlink via the addon (netns)", () => {
  let ns: Netns;
  beforeAll(async () => {
    ns = await Netns.create("plexd-t-rtnl");
  });
  afterAll(async () => {
    await ns?.remove();
  });

  async function linkFromIp(name: string): Promise<IpLink> {
    const [l] = await ns.ipJson<IpLink[]>("-d", "link", "show", "dev", name);
    if (!l) throw new Error(`ip sees no ${name}`);
    return l;
  }

  function sameLink(mine: NativeLink, theirs: IpLink): void {
    expect(mine.index).toBe(theirs.ifindex);
    expect(mine.name).toBe(theirs.ifname);
    expect(mine.mtu).toBe(theirs.mtu);
    expect(mine.up).toBe(theirs.flags.includes("UP"));
    expect(mine.kind).toBe(theirs.linkinfo?.info_kind ?? "");
  }

  async function addrsFromIp(ifindex: number): Promise<string[]> {
    const all = await ns.ipJson<IpAddr[]>("addr", "show");
    return all
      .filter((a) => a.ifindex === ifindex)
      .flatMap((a) => a.addr_info.map((i) => `${i.family === "inet" ? 4 : 6} ${i.local}/${i.prefixlen}`))
      .sort();
  }
  const addrKey = (a: NativeAddr): string => `${a.family} ${a.address}/${a.prefixlen}`;

  // ip prints "default" for /0 and leaves /32 (/128) off host routes.
  function routeKey(r: NativeRoute, ifname: (i: number) => string): string {
    const host = r.prefixlen === (r.family === 4 ? 32 : 128);
    const dst = r.prefixlen === 0 ? "default" : host ? r.dst : `${r.dst}/${r.prefixlen}`;
    return `${dst} dev ${ifname(r.ifindex)}${r.src ? ` src ${r.src}` : ""}${r.gateway ? ` via ${r.gateway}` : ""}`;
  }
  const ipRouteKey = (r: IpRoute): string =>
    `${r.dst} dev ${r.dev}${r.prefsrc ? ` src ${r.prefsrc}` : ""}${r.gateway ? ` via ${r.gateway}` : ""}`;

  async function routesFromIp(table: string): Promise<string[]> {
    const v4 = await ns.ipJson<IpRoute[]>("-4", "route", "show", "table", table);
    const v6 = await ns.ipJson<IpRoute[]>("-6", "route", "show", "table", table);
    return [...v4, ...v6].map(ipRouteKey).sort();
  }

  test("ifb link: add, up, MTU, addresses, routes (main + table 1000), all matching ip -j", async () => {
    const r = await addonInNetns(ns, [
      { call: "linkAdd", args: ["pxd0", "ifb"] },
      { call: "linkSet", args: ["pxd0", { up: true, mtu: 1380 }] },
      { call: "addrAdd", args: ["pxd0", "10.50.0.1", 24] },
      { call: "addrAdd", args: ["pxd0", "10.100.7.1", 32] },
      { call: "addrAdd", args: ["pxd0", "fd00:50::1", 64] },
      { call: "routeAdd", args: [{ dst: "10.60.0.0", prefixlen: 16, ifname: "pxd0", src: "10.50.0.1" }] },
      { call: "routeAdd", args: [{ dst: "10.70.1.0", prefixlen: 24, ifname: "pxd0", table: TABLE }] },
      { call: "routeAdd", args: [{ dst: "10.70.2.9", prefixlen: 32, ifname: "pxd0", src: "10.100.7.1", table: TABLE }] },
      { call: "routeAdd", args: [{ dst: "fd00:70::", prefixlen: 48, ifname: "pxd0", table: TABLE }] },
      { call: "linkList" },
      { call: "addrList" },
      { call: "routeList", args: [254] },
      { call: "routeList", args: [TABLE] },
      { call: "routeList" },
    ]);
    for (const x of r.slice(0, 9)) value(x);
    const links = value<NativeLink[]>(r[9]);
    const mine = links.find((l) => l.name === "pxd0");
    expect(mine).toMatchObject({ name: "pxd0", kind: "ifb", mtu: 1380, up: true });
    sameLink(mine!, await linkFromIp("pxd0"));
    sameLink(links.find((l) => l.name === "lo")!, await linkFromIp("lo"));
    expect(links.length).toBe((await ns.ipJson<IpLink[]>("link", "show")).length);

    const addrs = value<NativeAddr[]>(r[10]);
    const myAddrs = addrs.filter((a) => a.ifindex === mine!.index).map(addrKey).sort();
    expect(myAddrs).toEqual(await addrsFromIp(mine!.index));
    expect(myAddrs).toEqual(expect.arrayContaining(["4 10.50.0.1/24", "4 10.100.7.1/32", "6 fd00:50::1/64"]));

    const names = (i: number): string => links.find((l) => l.index === i)?.name ?? `if${i}`;
    const main = value<NativeRoute[]>(r[11]);
    expect(main.every((x) => x.table === 254)).toBe(true);
    expect(main.map((x) => routeKey(x, names)).sort()).toEqual(await routesFromIp("main"));
    expect(main.map((x) => routeKey(x, names))).toContain("10.60.0.0/16 dev pxd0 src 10.50.0.1");

    const t = value<NativeRoute[]>(r[12]);
    expect(t.every((x) => x.table === TABLE)).toBe(true);
    expect(t.map((x) => routeKey(x, names)).sort()).toEqual(await routesFromIp(String(TABLE)));
    expect(t.map((x) => routeKey(x, names)).sort()).toEqual(
      ["10.70.1.0/24 dev pxd0", "10.70.2.9 dev pxd0 src 10.100.7.1", "fd00:70::/48 dev pxd0"].sort(),
    );
    const all = value<NativeRoute[]>(r[13]);
    expect(all.length).toBe(main.length + t.length); // local table has no unicast routes
  });

  test("delete address and routes, set down and MTU back; ip -j agrees", async () => {
    const r = await addonInNetns(ns, [
      { call: "addrDel", args: ["pxd0", "10.100.7.1", 32] },
      { call: "routeDel", args: [{ dst: "10.70.2.9", prefixlen: 32, ifname: "pxd0", table: TABLE }] },
      { call: "routeDel", args: [{ dst: "fd00:70::", prefixlen: 48, ifname: "pxd0", table: TABLE }] },
      { call: "routeDel", args: [{ dst: "10.60.0.0", prefixlen: 16, ifname: "pxd0" }] },
      { call: "linkSet", args: ["pxd0", { up: false }] },
      { call: "linkSet", args: ["pxd0", { mtu: 1500 }] },
      { call: "linkList" },
      { call: "addrList" },
      { call: "routeList", args: [TABLE] },
      { call: "routeList", args: [254] },
    ]);
    for (const x of r.slice(0, 6)) value(x);
    const mine = value<NativeLink[]>(r[6]).find((l) => l.name === "pxd0")!;
    expect(mine).toMatchObject({ up: false, mtu: 1500 });
    sameLink(mine, await linkFromIp("pxd0"));
    const addrs = value<NativeAddr[]>(r[7]).filter((a) => a.ifindex === mine.index).map(addrKey).sort();
    expect(addrs).toEqual(await addrsFromIp(mine.index));
    expect(addrs).not.toContain("4 10.100.7.1/32");
    const names = (i: number): string => (i === mine.index ? "pxd0" : `if${i}`);
    // Link down removes its connected routes; the table-1000 /24 stays until deleted.
    expect(value<NativeRoute[]>(r[8]).map((x) => routeKey(x, names)).sort()).toEqual(await routesFromIp(String(TABLE)));
    expect(value<NativeRoute[]>(r[9]).map((x) => routeKey(x, names)).sort()).toEqual(await routesFromIp("main"));
  });

  test("addrList(ifindex) filters; errors are typed NativeErrors with errno names", async () => {
    const [links] = await addonInNetns(ns, [{ call: "linkList" }]);
    const idx = value<NativeLink[]>(links).find((l) => l.name === "pxd0")!.index;
    const r = await addonInNetns(ns, [
      { call: "addrList", args: [idx] },
      { call: "linkAdd", args: ["pxd0", "ifb"] },
      { call: "addrAdd", args: ["pxd0", "10.50.0.1", 24] },
      { call: "addrAdd", args: ["nosuch0", "10.1.1.1", 24] },
      { call: "routeDel", args: [{ dst: "10.99.0.0", prefixlen: 16, ifname: "pxd0", table: TABLE }] },
      { call: "linkAdd", args: ["pxwg0", "wireguard"] },
      { call: "wgGetDevice", args: ["pxwg0"] },
      { call: "wgSetDevice", args: [{ ifname: "pxwg0", peers: [] }] },
      { call: "linkDel", args: ["nosuch0"] },
      { call: "linkSet", args: ["pxd0", { mtu: 10 }] },
    ]);
    expect(value<NativeAddr[]>(r[0]).every((a) => a.ifindex === idx)).toBe(true);
    const err = (x: AddonCallResult | undefined) => {
      if (!x || x.ok) throw new Error(`expected an error, got ${JSON.stringify(x)}`);
      expect(x.error.isNativeError).toBe(true);
      expect(x.error.name).toBe("NativeError");
      return x.error;
    };
    expect(err(r[1])).toMatchObject({ code: "EEXIST", errno: 17, op: "rtnl.link_add", object: "pxd0" });
    expect(err(r[2])).toMatchObject({ code: "EEXIST", op: "rtnl.addr_add" });
    expect(err(r[3])).toMatchObject({ code: "ENODEV", op: "rtnl.addr_add" });
    expect(err(r[4])).toMatchObject({ code: "ESRCH", op: "rtnl.route_del" });
    // No WireGuard on this kernel: the link kind is unknown to rtnetlink …
    const wg = err(r[5]);
    expect(wg).toMatchObject({ code: "EOPNOTSUPP", op: "rtnl.link_add", object: "pxwg0" });
    expect(wg.message).toContain("Unknown device type"); // kernel extended ack, decoded
    // … and the genl family is absent.
    expect(err(r[6])).toMatchObject({ code: "ENOENT", errno: 2, op: "wg.resolve_family", object: "pxwg0" });
    expect(err(r[7])).toMatchObject({ code: "ENOENT", op: "wg.resolve_family" });
    expect(err(r[8])).toMatchObject({ code: "ENODEV", op: "rtnl.link_del" });
    expect(err(r[9])).toMatchObject({ code: "EINVAL", op: "rtnl.link_set" });
  });

  test("linkDel removes the link", async () => {
    const r = await addonInNetns(ns, [{ call: "linkDel", args: ["pxd0"] }, { call: "linkList" }]);
    value(r[0]);
    expect(value<NativeLink[]>(r[1]).map((l) => l.name)).toEqual(["lo"]);
    expect((await ns.ipJson<IpLink[]>("link", "show")).map((l) => l.ifname)).toEqual(["lo"]);
  });
});
