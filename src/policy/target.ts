/**
 * Where the enforcer's transactions go. `FirewallTarget` is the narrow seam: the real one
 * (nftTarget) wraps the addon through NftTable, so the "only our table" check stays in one
 * place; tests use FakeFirewall (fake-target.ts).
 */
import type { NativeAddon, NftMonitorEvent, NftMonitorHandle } from "../kernel/addon-api.ts";
import type { FwBatch, FwDump, FwSet, NftAddon, NftFamily } from "../kernel/firewall-api.ts";
import { NftTable, raiseDump } from "../kernel/nft.ts";
import type { NftPackedBatch } from "../kernel/nft-packed.ts";
import { lowerFast } from "./wire.ts";

/** A foreign table's base chains and rules, read only. */
export interface ForeignTable {
  family: string;
  name: string;
  dump: FwDump;
}

/** The kernel side of policy enforcement. */
export interface FirewallTarget {
  readonly family: "inet";
  readonly table: string;
  /**
   * Applies one transaction. `sets` gives the types of sets the batch does not create (the
   * enforcer knows them from the desired ruleset), so no read-back is needed to lower it.
   */
  apply(batch: FwBatch, sets: ReadonlyMap<string, FwSet>): Promise<void>;
  /**
   * Like apply, but the generation check and read-back ride in the commit's own round trip:
   * with `generation` set, the kernel refuses the whole transaction (error code `ERESTART`)
   * unless the ruleset generation still equals it; resolves with the generation right after
   * the commit (0 when unknown). Optional: without it the enforcer calls generation() around
   * apply().
   */
  applyAt?(batch: FwBatch, sets: ReadonlyMap<string, FwSet>, generation: number | null): Promise<number>;
  /** Reads our table back (exists: false when absent). */
  dump(): Promise<FwDump>;
  /** The ruleset generation id, when the target can tell (cheap: one netlink round trip). */
  generation?(): Promise<number>;
  /** Starts nf_tables notifications, when supported. */
  monitor?(cb: (events: NftMonitorEvent[]) => void): NftMonitorHandle;
  /** Every other table in the families that can drop our traffic (inet, ip, ip6). */
  foreignTables?(): Promise<ForeignTable[]>;
}

const INSPECT: readonly NftFamily[] = ["inet", "ip", "ip6"];

/** The real target: the native addon, bound to `inet <table>`. */
export function nftTarget(addon: NativeAddon, table = "plexd"): FirewallTarget {
  const nft = addon as unknown as NftAddon;
  const owned = new NftTable(nft, "inet", table);
  // nftApply takes packed element lists and resolves with the generation after the commit.
  const applyWire = nft.nftApply as unknown as (b: NftPackedBatch) => Promise<unknown>;
  return {
    family: "inet",
    table,
    async apply(batch, sets) {
      owned.checkOwned(batch);
      await applyWire(lowerFast(batch, sets));
    },
    async applyAt(batch, sets, generation) {
      owned.checkOwned(batch);
      const wire = lowerFast(batch, sets);
      if (generation !== null && generation > 0) wire.genid = generation;
      const gen = await applyWire(wire);
      return typeof gen === "number" ? gen : 0;
    },
    dump: () => owned.dump(),
    generation: () => addon.nftGetGen(),
    monitor: (cb) => addon.nftMonitor(cb),
    async foreignTables() {
      const out: ForeignTable[] = [];
      for (const t of await addon.nftListTables()) {
        if (!INSPECT.includes(t.family as NftFamily)) continue;
        if (t.family === "inet" && t.name === table) continue;
        // Read-only: nftDump never changes anything, and NftTable (the only writer) stays ours.
        const wire = await nft.nftDump(t.family as NftFamily, t.name).catch(() => null);
        if (wire) out.push({ family: t.family, name: t.name, dump: raiseDump(t.family as NftFamily, t.name, wire) });
      }
      return out;
    },
  };
}
