/**
 * The nftables seam for plexd's one table: a thin typed wrapper over the addon's nft calls.
 *
 * `NftTable` is bound to one (family, table) at construction and refuses any batch naming
 * another one, so no caller can flush or edit a table plexd does not own. Batches are lowered
 * to wire form in TypeScript (nft-lower.ts) and applied as ONE nfnetlink transaction; dumps
 * are raised back into the same shapes (nft-raise.ts).
 */
import type { FwBatch, FwDump, FwSet, NftAddon, NftFamily, NftWireBatch } from "./firewall-api.ts";
import { lowerBatch } from "./nft-lower.ts";
import { packBatch } from "./nft-packed.ts";
import { raiseDump } from "./nft-raise.ts";

export { lowerBatch, lowerRule, lowerSet } from "./nft-lower.ts";
export { comparableRule, normaliseRule, raiseDump, raiseRule, type RaisedRule } from "./nft-raise.ts";
export { NftValueError, elementKey, normaliseElement } from "./nft-values.ts";

/** A batch for a table this wrapper does not own. */
export class NftForeignTableError extends Error {
  override name = "NftForeignTableError";
  readonly code = "NFT_FOREIGN_TABLE";
  constructor(
    readonly owned: string,
    readonly requested: string,
  ) {
    super(`refusing nftables batch for ${requested}: this agent owns only ${owned}`);
  }
}

const TABLE_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,254}$/;

/** One owned table. */
export class NftTable {
  constructor(
    private readonly addon: NftAddon,
    readonly family: NftFamily,
    readonly table: string,
  ) {
    if (!TABLE_NAME.test(table)) throw new TypeError(`bad nftables table name: ${JSON.stringify(table)}`);
  }

  /** Throws NftForeignTableError unless the batch is for the owned table. */
  checkOwned(batch: { family: string; table: string }): void {
    if (batch.family !== this.family || batch.table !== this.table)
      throw new NftForeignTableError(`${this.family} ${this.table}`, `${batch.family} ${batch.table}`);
  }

  /**
   * Lowers a batch; element ops for sets not created in the batch read the set types from
   * the kernel first (one dump).
   */
  async lower(batch: FwBatch): Promise<NftWireBatch> {
    this.checkOwned(batch);
    const created = new Set(batch.ops.flatMap((o) => (o.op === "addSet" ? [o.set.name] : [])));
    const needs = batch.ops.some(
      (o) => (o.op === "addElements" || o.op === "deleteElements") && !created.has(o.set),
    );
    let known = new Map<string, FwSet>();
    if (needs) known = new Map((await this.dump()).sets.map((s) => [s.name, s]));
    return lowerBatch(batch, known);
  }

  /** Applies the batch as one transaction: everything or nothing. */
  async apply(batch: FwBatch): Promise<void> {
    const wire = await this.lower(batch);
    // Long element lists travel packed (same messages, far fewer N-API property reads).
    await this.addon.nftApply(packBatch(wire) as NftWireBatch);
  }

  /** Reads the owned table back (exists: false when absent). */
  async dump(): Promise<FwDump> {
    const wire = await this.addon.nftDump(this.family, this.table);
    return raiseDump(this.family, this.table, wire);
  }

  /** The batch's netlink messages, exactly as apply would send them (pure; sets must be in the batch). */
  build(batch: FwBatch, seq: number): Uint8Array[] {
    this.checkOwned(batch);
    return this.addon.nftBuildBatch(lowerBatch(batch), seq);
  }
}
