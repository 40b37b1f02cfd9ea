/**
 * Links, addresses and routes through the addon's rtnetlink calls — used by both real
 * WireGuard backends (wireguard-go only replaces the WireGuard configuration path; its TUN
 * link is configured here like any other).
 */
import type { NativeAddon, NativeLink } from "./addon-api.ts";
import { normaliseCidr, normaliseIp, parseCidr } from "./cidr.ts";
import { checkIfname, KernelError } from "./kernel-error.ts";
import type { InterfaceState, KernelRoute, SetResult } from "./types.ts";

const MAIN_TABLE = 254;

/** "addr/plen" with the address canonical but host bits kept (an interface address, not a net). */
export function normaliseIfAddr(cidr: string): string {
  const slash = cidr.indexOf("/");
  const ip = normaliseIp(slash >= 0 ? cidr.slice(0, slash) : cidr);
  const max = ip.includes(":") ? 128 : 32;
  const plen = slash >= 0 ? Number(cidr.slice(slash + 1)) : max;
  if (!Number.isInteger(plen) || plen < 0 || plen > max) {
    throw new KernelError("INVALID_ARGUMENT", `bad interface address ${JSON.stringify(cidr)}`);
  }
  return `${ip}/${plen}`;
}

/** IPv6 link-local and multicast entries are the kernel's own; never touch them. */
function isKernelOwned(cidr: string): boolean {
  return cidr.startsWith("fe80:") || cidr.startsWith("ff");
}

function routeKey(dst: string, src: string | undefined): string {
  return src ? `${dst} src ${src}` : dst;
}

/** rtnetlink operations of the Kernel interface. */
export class RtnlLinks {
  constructor(private readonly addon: NativeAddon) {}

  /** The link named `name`, or null. */
  async find(name: string): Promise<NativeLink | null> {
    checkIfname(name);
    return (await this.addon.linkList()).find((l) => l.name === name) ?? null;
  }

  private async need(name: string): Promise<NativeLink> {
    const link = await this.find(name);
    if (!link) throw new KernelError("NO_DEVICE", `interface ${name} does not exist`);
    return link;
  }

  /** Creates a link of `kind` unless one exists; an existing link of another kind is an error. */
  async ensureKind(name: string, kind: string): Promise<"created" | "adopted"> {
    const link = await this.find(name);
    if (link) {
      if (link.kind !== kind) {
        throw new KernelError("WRONG_LINK_KIND", `interface ${name} exists with kind ${JSON.stringify(link.kind)}, want ${kind}`);
      }
      return "adopted";
    }
    await this.addon.linkAdd(name, kind);
    return "created";
  }

  /** Sets MTU and up flag when they differ. */
  async configure(name: string, mtu: number): Promise<void> {
    if (!Number.isInteger(mtu) || mtu < 576 || mtu > 65535) throw new KernelError("INVALID_ARGUMENT", `mtu ${mtu} out of range`);
    const link = await this.need(name);
    if (link.mtu !== mtu || !link.up) await this.addon.linkSet(name, { mtu, up: true });
  }

  /** Deletes the link; absent is fine. */
  async delete(name: string): Promise<void> {
    if (await this.find(name)) await this.addon.linkDel(name);
  }

  /** See Kernel.setAddresses. */
  async setAddresses(ifname: string, cidrs: string[]): Promise<SetResult> {
    const link = await this.need(ifname);
    const want = new Set(cidrs.map(normaliseIfAddr));
    const have = new Set(
      (await this.addon.addrList(link.index))
        .filter((a) => a.ifindex === link.index)
        .map((a) => normaliseIfAddr(`${a.address}/${a.prefixlen}`))
        .filter((a) => !isKernelOwned(a)),
    );
    const removed = [...have].filter((a) => !want.has(a));
    const added = [...want].filter((a) => !have.has(a));
    for (const a of removed) {
      const [ip, plen] = a.split("/");
      await this.addon.addrDel(ifname, ip!, Number(plen));
    }
    for (const a of added) {
      const [ip, plen] = a.split("/");
      await this.addon.addrAdd(ifname, ip!, Number(plen));
    }
    return { added, removed };
  }

  /**
   * See Kernel.setRoutes. Manages every main-table route out of `ifname` except IPv6 link-local
   * and multicast; mesh addresses are /32, so the kernel adds no prefix routes to fight over.
   */
  async setRoutes(ifname: string, routes: KernelRoute[]): Promise<SetResult> {
    const link = await this.need(ifname);
    const want = new Map<string, { dst: string; src?: string }>();
    for (const r of routes) {
      const dst = normaliseCidr(r.dst);
      const src = r.src === undefined ? undefined : normaliseIp(r.src);
      want.set(routeKey(dst, src), src === undefined ? { dst } : { dst, src });
    }
    const have = new Map<string, { dst: string; src?: string }>();
    for (const r of await this.addon.routeList(MAIN_TABLE)) {
      if (r.ifindex !== link.index || r.table !== MAIN_TABLE) continue;
      const dst = normaliseCidr(`${r.dst}/${r.prefixlen}`);
      if (isKernelOwned(dst)) continue;
      const src = r.src === undefined ? undefined : normaliseIp(r.src);
      have.set(routeKey(dst, src), src === undefined ? { dst } : { dst, src });
    }
    const removed = [...have.keys()].filter((k) => !want.has(k));
    const added = [...want.keys()].filter((k) => !have.has(k));
    for (const k of removed) {
      const c = parseCidr(have.get(k)!.dst);
      await this.addon.routeDel({ dst: c.address, prefixlen: c.prefixlen, ifname, table: MAIN_TABLE });
    }
    for (const k of added) {
      const r = want.get(k)!;
      const c = parseCidr(r.dst);
      await this.addon.routeAdd({ dst: c.address, prefixlen: c.prefixlen, ifname, table: MAIN_TABLE, ...(r.src ? { src: r.src } : {}) });
    }
    return { added, removed };
  }

  /** See Kernel.readInterface. */
  async readInterface(ifname: string): Promise<InterfaceState | null> {
    const link = await this.find(ifname);
    if (!link) return null;
    const addresses = (await this.addon.addrList(link.index))
      .filter((a) => a.ifindex === link.index)
      .map((a) => normaliseIfAddr(`${a.address}/${a.prefixlen}`))
      .filter((a) => !isKernelOwned(a));
    return { index: link.index, name: link.name, kind: link.kind, mtu: link.mtu, up: link.up, addresses };
  }
}
