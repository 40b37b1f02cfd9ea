/**
 * CIDR and endpoint normalisation, so desired state (from the control plane) and actual state
 * (read back from the kernel or wireguard-go) compare equal when they mean the same thing:
 * host bits masked (the kernel masks them too), a bare address becomes a host prefix, IPv6 in
 * RFC 5952 form (what wireguard-go prints).
 */

/** Thrown for a string that is not an IPv4/IPv6 CIDR or address; `code` is stable. */
export class CidrError extends Error {
  override readonly name = "CidrError";
  readonly code = "EINVAL_CIDR";
  constructor(readonly input: string) {
    super(`not a CIDR or IP address: ${JSON.stringify(input)}`);
  }
}

function parseV4(s: string): number[] | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out.push(n);
  }
  return out;
}

/** Returns 8 16-bit groups, or null. Accepts an embedded dotted IPv4 tail. */
function parseV6(s: string): number[] | null {
  if (s.length === 0 || s.length > 45) return null;
  let tail: number[] = [];
  let head = s;
  const lastColon = s.lastIndexOf(":");
  if (s.includes(".")) {
    const v4 = parseV4(s.slice(lastColon + 1));
    if (!v4) return null;
    tail = [(v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!];
    head = s.slice(0, lastColon + 1);
    if (head.endsWith(":") && !head.endsWith("::")) head = head.slice(0, -1);
  }
  const want = 8 - tail.length;
  const parseGroups = (g: string): number[] | null => {
    if (g === "") return [];
    const out: number[] = [];
    for (const x of g.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(x)) return null;
      out.push(parseInt(x, 16));
    }
    return out;
  };
  const dbl = head.indexOf("::");
  let groups: number[];
  if (dbl >= 0) {
    if (head.indexOf("::", dbl + 1) >= 0) return null;
    const a = parseGroups(head.slice(0, dbl));
    const b = parseGroups(head.slice(dbl + 2));
    if (!a || !b || a.length + b.length >= want) return null;
    groups = [...a, ...new Array<number>(want - a.length - b.length).fill(0), ...b];
  } else {
    const a = parseGroups(head);
    if (!a || a.length !== want) return null;
    groups = a;
  }
  return [...groups, ...tail];
}

/** RFC 5952: lowercase, no leading zeros, longest run (≥ 2) of zero groups as "::". */
function formatV6(g: number[]): string {
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(":");
  if (bestLen < 2) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

function maskBits(bytes: number[], bitsPerItem: number, prefix: number): number[] {
  return bytes.map((b, i) => {
    const start = i * bitsPerItem;
    if (prefix >= start + bitsPerItem) return b;
    if (prefix <= start) return 0;
    const keep = prefix - start;
    const mask = ((1 << keep) - 1) << (bitsPerItem - keep);
    return b & mask;
  });
}

/** Parsed, normalised prefix. */
export interface Cidr {
  family: 4 | 6;
  /** Network address (host bits cleared), canonical text. */
  address: string;
  prefixlen: number;
}

/** Parses "a.b.c.d[/n]" or "v6[/n]"; a missing prefix means a host prefix (/32, /128). */
export function parseCidr(input: string): Cidr {
  const slash = input.indexOf("/");
  const addr = slash >= 0 ? input.slice(0, slash) : input;
  const plen = slash >= 0 ? input.slice(slash + 1) : undefined;
  if (plen !== undefined && !/^\d{1,3}$/.test(plen)) throw new CidrError(input);
  const v4 = parseV4(addr);
  if (v4) {
    const p = plen === undefined ? 32 : Number(plen);
    if (p > 32) throw new CidrError(input);
    return { family: 4, address: maskBits(v4, 8, p).join("."), prefixlen: p };
  }
  const v6 = parseV6(addr);
  if (v6) {
    const p = plen === undefined ? 128 : Number(plen);
    if (p > 128) throw new CidrError(input);
    return { family: 6, address: formatV6(maskBits(v6, 16, p)), prefixlen: p };
  }
  throw new CidrError(input);
}

// Reconciling 5,000 peers normalises the same strings every cycle; parsing dominated the
// no-change diff, so results are memoised (bounded: cleared when full, never stale).
const MEMO_MAX = 65_536;
const cidrMemo = new Map<string, string>();
const endpointMemo = new Map<string, string>();

function memo(m: Map<string, string>, input: string, fn: (s: string) => string): string {
  const hit = m.get(input);
  if (hit !== undefined) return hit;
  const out = fn(input);
  if (m.size >= MEMO_MAX) m.clear();
  m.set(input, out);
  return out;
}

/** Canonical CIDR text ("10.1.2.3/24" → "10.1.2.0/24", "FD00:0::1" → "fd00::1/128"). */
export function normaliseCidr(input: string): string {
  return memo(cidrMemo, input, (s) => {
    const c = parseCidr(s);
    return `${c.address}/${c.prefixlen}`;
  });
}

/** Canonical IP address text (no prefix, host bits kept). */
export function normaliseIp(input: string): string {
  const v4 = parseV4(input);
  if (v4) return v4.join(".");
  const v6 = parseV6(input);
  if (v6) return formatV6(v6);
  throw new CidrError(input);
}

/**
 * Canonical "ip:port" / "[v6]:port" for an endpoint with a literal address. A hostname
 * endpoint is returned unchanged (the kernel only stores addresses, so it will never compare
 * equal; resolving is the caller's job).
 */
export function normaliseEndpoint(input: string): string {
  return memo(endpointMemo, input, normaliseEndpointUncached);
}

function normaliseEndpointUncached(input: string): string {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(input) ?? /^([^:]+):(\d{1,5})$/.exec(input);
  if (!m) return input;
  const host = m[1]!;
  const port = Number(m[2]);
  try {
    const ip = normaliseIp(host);
    return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
  } catch {
    return input;
  }
}

/**
 * Fast scan of a plain dotted quad at the start of `s` (four groups of 1-3 ASCII digits, each
 * ≤ 255 — exactly what this module accepts as IPv4): the address as a number and the index
 * where the scan stopped, else undefined. Hot path of nftables element lowering and policy
 * compilation (10,000s of values), where the general parser dominates otherwise.
 */
export function scanDottedQuad(s: string): { value: number; end: number } | undefined {
  const n = s.length;
  let i = 0;
  let v = 0;
  for (let k = 0; k < 4; k++) {
    if (k > 0) {
      if (s.charCodeAt(i) !== 46 /* . */) return undefined;
      i++;
    }
    const start = i;
    let o = 0;
    while (i < n && i - start < 4) {
      const c = s.charCodeAt(i) - 48;
      if (c < 0 || c > 9) break;
      o = o * 10 + c;
      i++;
    }
    if (i === start || i - start > 3 || o > 255) return undefined;
    v = v * 256 + o;
  }
  return { value: v, end: i };
}
