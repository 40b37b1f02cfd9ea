/**
 * Packed element lists for the addon: one Uint8Array per element op instead of one object
 * (with one or two Uint8Arrays) per element. Converting 20,000 element objects property by
 * property through N-API costs more than the kernel takes to insert them; a packed list is a
 * single memcpy-speed pass in native/binding_nft.cc (`Packed`). Pure.
 *
 * Record layout, back to back:
 *   u8 keyLen (1..64) | u8 keyEndLen (0..64, 0 = no KEY_END) | u16 flags (little endian) |
 *   key bytes | keyEnd bytes
 * A packed op and the same op with `elements` objects build byte-identical messages.
 */
import type { NftWireBatch, NftWireElem, NftWireOp } from "./firewall-api.ts";
import { NftValueError } from "./nft-values.ts";

/** An element op whose elements travel packed. */
export interface PackedElementsOp {
  op: "addElements" | "deleteElements";
  set: string;
  packed: Uint8Array;
}

/** A wire batch whose element ops may be packed; `genid` makes the commit conditional. */
export interface NftPackedBatch {
  family: NftWireBatch["family"];
  table: string;
  /** Kernel refuses the whole batch (ERESTART) unless the ruleset generation still equals it. */
  genid?: number;
  ops: Array<NftWireOp | PackedElementsOp>;
}

const MAX_DATA = 64;

/** Appends records to one growing buffer. */
export class ElemPacker {
  private buf: Uint8Array;
  private len = 0;

  constructor(capacity = 1024) {
    this.buf = new Uint8Array(Math.max(16, capacity));
  }

  /** Reserves one record; returns the offset of its key (the keyEnd follows it). */
  record(keyLen: number, keyEndLen: number, flags: number): number {
    if (keyLen < 1 || keyLen > MAX_DATA || keyEndLen < 0 || keyEndLen > MAX_DATA)
      throw new NftValueError(`packed element: key ${keyLen} / key end ${keyEndLen} bytes`);
    if (!Number.isInteger(flags) || flags < 0 || flags > 0xffff) throw new NftValueError(`packed element: flags ${flags}`);
    const need = this.len + 4 + keyLen + keyEndLen;
    if (need > this.buf.length) {
      const next = new Uint8Array(Math.max(need, this.buf.length * 2));
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
    }
    const b = this.buf;
    const o = this.len;
    b[o] = keyLen;
    b[o + 1] = keyEndLen;
    b[o + 2] = flags & 0xff;
    b[o + 3] = flags >>> 8;
    this.len = need;
    return o + 4;
  }

  /** The underlying buffer (valid until the next record()). */
  get bytes(): Uint8Array {
    return this.buf;
  }

  /** Appends one wire element. */
  push(e: NftWireElem): void {
    const kel = e.keyEnd?.length ?? 0;
    const o = this.record(e.key.length, kel, e.flags ?? 0);
    this.buf.set(e.key, o);
    if (e.keyEnd) this.buf.set(e.keyEnd, o + e.key.length);
  }

  /** The records so far (a view; copy before reusing the packer). */
  finish(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

/** Packs a list of wire elements. */
export function packElements(elems: readonly NftWireElem[]): Uint8Array {
  const p = new ElemPacker(elems.length * 24 + 16);
  for (const e of elems) p.push(e);
  return p.finish();
}

/** Element lists shorter than this stay objects (nothing to gain, easier to read in tests). */
const PACK_MIN = 64;

/** The batch with every long element list packed (other ops unchanged). */
export function packBatch(batch: NftWireBatch): NftPackedBatch {
  return {
    family: batch.family,
    table: batch.table,
    ops: batch.ops.map((o) =>
      (o.op === "addElements" || o.op === "deleteElements") && o.elements.length >= PACK_MIN
        ? { op: o.op, set: o.set, packed: packElements(o.elements) }
        : o,
    ),
  };
}
