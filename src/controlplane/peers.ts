/**
 * Address rules for what the CP hands us (protocol.md §5, lifecycle.md §15): mesh IPs inside
 * 10.100.0.0/16, and peer `allowed_ips` that may never cover the default route, loopback,
 * link-local or multicast space — a hostile or buggy CP must not be able to route those into
 * the tunnel.
 */
import { parseCidr } from "../kernel/cidr.ts";

const MESH_NET = 0x0a640000; // 10.100.0.0
const MESH_MASK = 0xffff0000;

function v4ToInt(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (m === null) return undefined;
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const part = m[i]!;
    if (part.length > 1 && part.startsWith("0")) return undefined; // no octal-looking octets
    const b = Number(part);
    if (b > 255) return undefined;
    n = n * 256 + b;
  }
  return n >>> 0;
}

/** Why a mesh IP is unacceptable, or undefined when it is fine. */
export function meshIpProblem(ip: string): string | undefined {
  const n = v4ToInt(ip);
  if (n === undefined) return `mesh_ip ${JSON.stringify(ip)} is not an IPv4 address`;
  if (((n & MESH_MASK) >>> 0) !== MESH_NET) return `mesh_ip ${ip} is outside 10.100.0.0/16`;
  const host = n & 0xffff;
  if (host === 0) return `mesh_ip ${ip} is the network address of 10.100.0.0/16`;
  if (host === 0xffff) return `mesh_ip ${ip} is the broadcast address of 10.100.0.0/16`;
  return undefined;
}

/** True for a usable node mesh IP. */
export function isValidMeshIp(ip: string): boolean {
  return meshIpProblem(ip) === undefined;
}

/** True when `ip` (IPv4 text) lies inside 10.100.0.0/16 (policy rule addresses). */
export function inMeshRange(ip: string): boolean {
  const n = v4ToInt(ip);
  return n !== undefined && ((n & MESH_MASK) >>> 0) === MESH_NET;
}

function v6ToBigInt(addr: string): bigint {
  const [head = "", tail] = addr.split("::");
  const h = head === "" ? [] : head.split(":");
  const t = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = tail === undefined ? h : [...h, ...new Array<string>(8 - h.length - t.length).fill("0"), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

type Range = { readonly bits: number; readonly net: bigint; readonly plen: number; readonly what: string };
const FORBIDDEN: readonly Range[] = [
  { bits: 32, net: 0x7f000000n, plen: 8, what: "loopback" },
  { bits: 32, net: 0xa9fe0000n, plen: 16, what: "link-local" },
  { bits: 32, net: 0xe0000000n, plen: 4, what: "multicast" },
  { bits: 128, net: 1n, plen: 128, what: "loopback" },
  { bits: 128, net: 0xfe80n << 112n, plen: 10, what: "link-local" },
  { bits: 128, net: 0xffn << 120n, plen: 8, what: "multicast" },
];

function overlaps(bits: number, a: bigint, alen: number, b: bigint, blen: number): boolean {
  const plen = Math.min(alen, blen);
  const shift = BigInt(bits - plen);
  return a >> shift === b >> shift;
}

/**
 * Checks one `allowed_ips` entry. Returns the canonical CIDR (host bits masked, like the
 * kernel does) or a reason. Any overlap with a forbidden range rejects the entry (a /1 that
 * contains loopback is as dangerous as loopback itself).
 */
export function checkAllowedIp(entry: string): { ok: true; cidr: string } | { ok: false; reason: string } {
  let c;
  try {
    c = parseCidr(entry.trim());
  } catch {
    return { ok: false, reason: `allowed_ips entry ${JSON.stringify(entry)} is not a CIDR` };
  }
  if (c.prefixlen === 0) return { ok: false, reason: `allowed_ips entry ${entry} is a default route` };
  const bits = c.family === 4 ? 32 : 128;
  const net = c.family === 4 ? BigInt(v4ToInt(c.address) ?? 0) : v6ToBigInt(c.address);
  for (const f of FORBIDDEN) {
    if (f.bits === bits && overlaps(bits, net, c.prefixlen, f.net, f.plen)) {
      return { ok: false, reason: `allowed_ips entry ${entry} covers ${f.what} addresses` };
    }
  }
  return { ok: true, cidr: `${c.address}/${c.prefixlen}` };
}
