import { describe, expect, test } from "bun:test";
import type { NativeAddon, NativeAddr, NativeLink, NativeRoute, WgDeviceNative } from "./addon-api.ts";
import { hexToBase64, keyFromBase64 } from "./keys.ts";
import { RtnlLinks } from "./links.ts";
import { createKernel } from "./index.ts";
import { fromNative, toNative } from "./wg-native.ts";

const K1 = hexToBase64("11".repeat(32));
const K2 = hexToBase64("22".repeat(32));
const PRIV = hexToBase64("a8dc0e9d0d5e4b1e8f36e5a0c1f1d0b1a2c3d4e5f60718293a4b5c6d7e8f9051");

/** Stub addon: in-memory rtnl + one wireguard device; records calls. */
function stubAddon(opts: { wgLinks: boolean }) {
  const calls: string[] = [];
  const links: NativeLink[] = [{ index: 1, name: "lo", kind: "", mtu: 65536, up: true }];
  const addrs: NativeAddr[] = [];
  const routes: NativeRoute[] = [];
  let dev: WgDeviceNative = { ifname: "plexd0", peers: [] };
  const addon = {
    linkList: async () => links.map((l) => ({ ...l })),
    linkAdd: async (name: string, kind: string) => {
      calls.push(`linkAdd ${name} ${kind}`);
      if (kind === "wireguard" && !opts.wgLinks) throw Object.assign(new Error("EOPNOTSUPP"), { code: "EOPNOTSUPP" });
      links.push({ index: links.length + 1, name, kind, mtu: 1420, up: false });
    },
    linkDel: async (name: string) => {
      calls.push(`linkDel ${name}`);
      links.splice(links.findIndex((l) => l.name === name), 1);
    },
    linkSet: async (name: string, o: { up?: boolean; mtu?: number }) => {
      calls.push(`linkSet ${name} ${JSON.stringify(o)}`);
      Object.assign(links.find((l) => l.name === name)!, o);
    },
    addrList: async () => addrs.map((a) => ({ ...a })),
    addrAdd: async (ifname: string, address: string, prefixlen: number) => {
      calls.push(`addrAdd ${ifname} ${address}/${prefixlen}`);
      addrs.push({ ifindex: links.find((l) => l.name === ifname)!.index, family: address.includes(":") ? 6 : 4, address, prefixlen });
    },
    addrDel: async (ifname: string, address: string, prefixlen: number) => {
      calls.push(`addrDel ${ifname} ${address}/${prefixlen}`);
      addrs.splice(addrs.findIndex((a) => a.address === address && a.prefixlen === prefixlen), 1);
    },
    routeList: async () => routes.map((r) => ({ ...r })),
    routeAdd: async (r: { dst: string; prefixlen: number; ifname: string; src?: string; table?: number }) => {
      calls.push(`routeAdd ${r.dst}/${r.prefixlen}${r.src ? ` src ${r.src}` : ""}`);
      routes.push({ family: 4, dst: r.dst, prefixlen: r.prefixlen, ifindex: links.find((l) => l.name === r.ifname)!.index, table: r.table ?? 254, ...(r.src ? { src: r.src } : {}) });
    },
    routeDel: async (r: { dst: string; prefixlen: number }) => {
      calls.push(`routeDel ${r.dst}/${r.prefixlen}`);
      routes.splice(routes.findIndex((x) => x.dst === r.dst && x.prefixlen === r.prefixlen), 1);
    },
    wgGetDevice: async (ifname: string) => {
      if (!links.some((l) => l.name === ifname)) throw Object.assign(new Error("ENODEV"), { code: "ENODEV" });
      return structuredClone(dev);
    },
    wgSetDevice: async (d: WgDeviceNative) => {
      calls.push(`wgSetDevice ${d.peers.length} peers`);
      // Minimal kernel semantics: enough for add + verify.
      dev = { ...dev, ...(d.privateKey ? { privateKey: d.privateKey } : {}), ...(d.listenPort !== undefined ? { listenPort: d.listenPort } : {}) };
      for (const p of d.peers) {
        if (p.remove) dev.peers = dev.peers.filter((x) => Buffer.compare(x.publicKey, p.publicKey) !== 0);
        else dev.peers.push({ publicKey: p.publicKey, allowedIps: p.allowedIps ?? [], persistentKeepalive: p.persistentKeepalive ?? 0 });
      }
    },
    nftApply: async (b: unknown) => void calls.push(`nftApply ${JSON.stringify(b)}`),
    nftDump: async (family: string, table: string) => ({ family, table }),
  };
  return { addon: addon as unknown as NativeAddon, calls, addrs, routes };
}

describe("native WireGuard conversions", () => {
  test("toNative: keys → bytes, PSK null → zero key, flags kept", () => {
    const n = toNative("plexd0", {
      privateKey: PRIV,
      listenPort: 51820,
      peers: [
        { publicKey: K1, remove: true },
        { publicKey: K2, updateOnly: true, presharedKey: null, endpoint: "192.0.2.1:1", persistentKeepalive: 25, replaceAllowedIps: true, allowedIps: ["10.0.0.0/8"] },
      ],
    });
    expect(n.privateKey).toEqual(keyFromBase64(PRIV));
    expect(n.peers[0]).toEqual({ publicKey: keyFromBase64(K1), remove: true });
    expect(n.peers[1]).toEqual({
      publicKey: keyFromBase64(K2),
      updateOnly: true,
      presharedKey: new Uint8Array(32),
      endpoint: "192.0.2.1:1",
      persistentKeepalive: 25,
      replaceAllowedIps: true,
      allowedIps: ["10.0.0.0/8"],
    });
  });

  test("fromNative: zero PSK → null, handshake seconds → ms", () => {
    const d = fromNative({
      ifname: "plexd0",
      privateKey: keyFromBase64(PRIV),
      listenPort: 1,
      peers: [{ publicKey: keyFromBase64(K1), presharedKey: new Uint8Array(32), allowedIps: ["10.1.2.3/24"], lastHandshakeSec: 5, rxBytes: 1 }],
    });
    expect(d.peers[0]).toEqual({
      publicKey: K1,
      presharedKey: null,
      endpoint: null,
      allowedIps: ["10.1.2.0/24"],
      persistentKeepalive: 0,
      lastHandshakeMs: 5000,
      rxBytes: 1,
      txBytes: 0,
    });
  });
});

describe("createKernel with a stub addon", () => {
  test("auto: wireguard link creatable → kernel backend; probe link removed", async () => {
    const s = stubAddon({ wgLinks: true });
    const k = await createKernel({ backend: "auto", addon: s.addon });
    expect(k.backend).toBe("kernel");
    expect(s.calls.filter((c) => c.startsWith("linkDel pxprobe"))).toHaveLength(1);
    expect(await k.ensureInterface("plexd0", { mtu: 1420 })).toBe("created");
    expect(await k.ensureInterface("plexd0", { mtu: 1420 })).toBe("adopted");
    const c = await k.applyDevice({ ifname: "plexd0", privateKey: PRIV, listenPort: 51820, peers: [{ publicKey: K1, allowedIps: ["10.100.0.2/32"] }] });
    expect(c.added).toEqual([K1]);
    expect((await k.applyDevice({ ifname: "plexd0", privateKey: PRIV, listenPort: 51820, peers: [{ publicKey: K1, allowedIps: ["10.100.0.2/32"] }] })).empty).toBe(true);
    expect(s.calls.filter((x) => x.startsWith("wgSetDevice"))).toHaveLength(1);
    expect(await k.readDevice("nope0")).toBeNull();
    // A targeted write is one update-only SET_DEVICE.
    await k.updatePeers("plexd0", [{ publicKey: K1, persistentKeepalive: 0 }, { publicKey: K1, persistentKeepalive: 25 }]);
    expect(s.calls.filter((x) => x.startsWith("wgSetDevice"))).toEqual(["wgSetDevice 1 peers", "wgSetDevice 2 peers"]);
  });

  test("auto: EOPNOTSUPP → userspace; explicit kernel without addon → NO_ADDON", async () => {
    const s = stubAddon({ wgLinks: false });
    expect((await createKernel({ backend: "auto", addon: s.addon })).backend).toBe("userspace");
    expect((await createKernel({ backend: "auto", addon: null })).backend).toBe("userspace");
    await expect(createKernel({ backend: "kernel", addon: null })).rejects.toMatchObject({ code: "NO_ADDON" });
    const u = await createKernel({ backend: "userspace", addon: null });
    await expect(u.setAddresses("plexd0", [])).rejects.toMatchObject({ code: "NO_ADDON" });
  });

  test("ensureInterface refuses a non-WireGuard link of that name", async () => {
    const s = stubAddon({ wgLinks: true });
    await s.addon.linkAdd("plexd0", "veth");
    const k = await createKernel({ backend: "kernel", addon: s.addon });
    await expect(k.ensureInterface("plexd0", { mtu: 1420 })).rejects.toMatchObject({ code: "WRONG_LINK_KIND" });
  });
});

describe("RtnlLinks", () => {
  test("addresses: declarative, host bits kept, link-local untouched", async () => {
    const s = stubAddon({ wgLinks: true });
    await s.addon.linkAdd("plexd0", "wireguard");
    s.addrs.push({ ifindex: 2, family: 6, address: "fe80::1", prefixlen: 64 }, { ifindex: 2, family: 4, address: "10.100.0.7", prefixlen: 32 });
    const l = new RtnlLinks(s.addon);
    expect(await l.setAddresses("plexd0", ["10.100.0.1/32"])).toEqual({ added: ["10.100.0.1/32"], removed: ["10.100.0.7/32"] });
    expect(await l.setAddresses("plexd0", ["10.100.0.1"])).toEqual({ added: [], removed: [] });
    expect((await l.readInterface("plexd0"))?.addresses).toEqual(["10.100.0.1/32"]);
    expect(s.addrs.some((a) => a.address === "fe80::1")).toBe(true);
  });

  test("routes: by dst and src; other interfaces and tables untouched", async () => {
    const s = stubAddon({ wgLinks: true });
    await s.addon.linkAdd("plexd0", "wireguard");
    s.routes.push({ family: 4, dst: "0.0.0.0", prefixlen: 0, ifindex: 1, table: 254 }, { family: 4, dst: "10.5.0.0", prefixlen: 16, ifindex: 2, table: 254 });
    const l = new RtnlLinks(s.addon);
    const r = await l.setRoutes("plexd0", [{ dst: "10.100.0.0/16", src: "10.100.0.1" }, { dst: "10.6.1.9/24" }]);
    expect(r).toEqual({ added: ["10.100.0.0/16 src 10.100.0.1", "10.6.1.0/24"], removed: ["10.5.0.0/16"] });
    expect(s.calls).toContain("routeAdd 10.100.0.0/16 src 10.100.0.1");
    expect(await l.setRoutes("plexd0", [{ dst: "10.100.0.0/16", src: "10.100.0.1" }, { dst: "10.6.1.0/24" }])).toEqual({ added: [], removed: [] });
    expect(s.routes.some((x) => x.ifindex === 1)).toBe(true);
  });
});
