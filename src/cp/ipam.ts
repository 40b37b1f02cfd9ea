/**
 * Mesh IP allocation from 10.100.0.0/16. Node addresses come from 10.100.0.1–10.100.254.254,
 * skipping every .0 and .255 host octet; 10.100.255.0/24 is kept for bridge nodes (lifecycle.md
 * §15 convention). Released addresses are not reused before the cooldown ends.
 */
import type { Db } from "./db.ts";


const toIp = (n: number) => `10.100.${(n >> 8) & 0xff}.${n & 0xff}`;

export class Ipam {
  constructor(
    private readonly db: Db,
    private readonly cooldownMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The lowest free address; throws when the pool is exhausted. Call inside a transaction. */
  allocate(): string {
    const used = new Set<string>();
    for (const r of this.db.query("SELECT mesh_ip FROM nodes WHERE removed_at IS NULL").all() as {
      mesh_ip: string;
    }[])
      used.add(r.mesh_ip);
    const cutoff = this.now() - this.cooldownMs;
    for (const r of this.db.query("SELECT ip FROM ip_released WHERE released_at > ?").all(cutoff) as {
      ip: string;
    }[])
      used.add(r.ip);
    for (let hi = 0; hi <= 254; hi++) {
      for (let lo = 1; lo <= 254; lo++) {
        const ip = toIp((hi << 8) | lo);
        if (!used.has(ip)) {
          this.db.query("DELETE FROM ip_released WHERE ip = ?").run(ip);
          return ip;
        }
      }
    }
    throw new Error("mesh IP pool exhausted");
  }

  /** Returns an address to the pool; it becomes allocatable after the cooldown. */
  release(ip: string): void {
    this.db
      .query("INSERT INTO ip_released (ip, released_at) VALUES (?, ?) ON CONFLICT(ip) DO UPDATE SET released_at = excluded.released_at")
      .run(ip, this.now());
  }
}

/** True for an IPv4 text inside 10.100.0.0/16. */
export function inMesh(ip: string): boolean {
  const p = ip.split(".").map(Number);
  return p.length === 4 && p[0] === 10 && p[1] === 100 && p.every((x) => Number.isInteger(x) && x >= 0 && x <= 255);
}

/** Numeric IPv4 (for CIDR checks in policy visibility). */
export function ipToInt(ip: string): number | undefined {
  const p = ip.split(".");
  if (p.length !== 4) return undefined;
  let n = 0;
  for (const s of p) {
    if (!/^\d{1,3}$/.test(s) || Number(s) > 255) return undefined;
    n = n * 256 + Number(s);
  }
  return n;
}

