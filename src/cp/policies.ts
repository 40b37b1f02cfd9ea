/** Tenant policies (one ordered set) and the peer-visibility rule of lifecycle.md §4.3. */
import type { Db } from "./db.ts";
import type { PolicyT } from "./schema.ts";
import { ipToInt } from "./ipam.ts";

export class Policies {
  constructor(private readonly db: Db) {}

  list(): PolicyT[] {
    return (this.db.query("SELECT body FROM policies ORDER BY position").all() as { body: string }[]).map(
      (r) => JSON.parse(r.body) as PolicyT,
    );
  }

  /** Replaces the whole policy set. */
  replace(policies: PolicyT[]): void {
    this.db.transaction(() => {
      this.db.exec("DELETE FROM policies");
      const ins = this.db.query("INSERT INTO policies (id, body, position) VALUES (?, ?, ?)");
      policies.forEach((p, i) => ins.run(p.id, JSON.stringify(p), i));
    })();
  }
}

interface Who {
  id: string;
  mesh_ip: string;
}

function matches(target: string, n: Who): boolean {
  if (target === "*" || target === n.id) return true;
  const [addr, lenText] = target.split("/");
  const base = ipToInt(addr ?? "");
  const ip = ipToInt(n.mesh_ip);
  if (base === undefined || ip === undefined) return false;
  const len = lenText === undefined ? 32 : Number(lenText);
  if (!Number.isInteger(len) || len < 0 || len > 32) return false;
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return ((base & mask) >>> 0) === ((ip & mask) >>> 0);
}

/**
 * True when `peer` may be shown to `self` in the register response: an allow rule links both in
 * either direction. With no policies at all every peer is visible (CP decision: the agent's
 * `policy.default` is unknown to the CP, so the agent filters again anyway).
 */
export function visible(policies: PolicyT[], self: Who, peer: Who): boolean {
  if (policies.length === 0) return true;
  for (const p of policies) {
    for (const r of p.rules) {
      if (r.action !== "allow") continue;
      if ((matches(r.src, self) && matches(r.dst, peer)) || (matches(r.src, peer) && matches(r.dst, self))) return true;
    }
  }
  return false;
}
