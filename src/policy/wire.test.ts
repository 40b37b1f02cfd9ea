import { expect, test } from "bun:test";
import type { FwSet } from "../kernel/firewall-api.ts";
import { encodeElement } from "../kernel/nft-values.ts";
import { ElemPacker, packElements } from "../kernel/nft-packed.ts";
import { elementsOf } from "./compile.ts";
import type { Box } from "./ranges.ts";
import { encodeFast, lowerFast, packBoxes } from "./wire.ts";

test("encodeFast is byte-identical to encodeElement", () => {
  const sets: Array<[FwSet, Array<Array<string | number>>]> = [
    [{ name: "a", type: ["ipv4_addr"], flags: ["interval"] }, [["10.100.0.1"], ["10.100.0.0/16"], ["10.100.1.0-10.100.2.255"], ["255.255.255.255"], ["0.0.0.0/0"]]],
    [{ name: "b", type: ["ipv4_addr", "inet_proto", "inet_service"], flags: ["interval"] }, [["10.100.0.1", 6, 8080], ["10.100.0.0/16", 17, "0-65535"], ["10.100.3.7", 1, "0-65535"]]],
    [{ name: "c", type: ["ipv4_addr", "ipv4_addr", "inet_proto", "inet_service"], flags: ["interval"] }, [["10.100.0.1", "10.100.0.2", 6, 22]]],
    [{ name: "d", type: ["inet_service"] }, [[22], [65535]]],
    [{ name: "e", type: ["ipv6_addr"], flags: ["interval"] }, [["fd00::/64"]]],
  ];
  for (const [s, keys] of sets) for (const key of keys) expect(encodeFast(s, { key })).toEqual(encodeElement(s, { key }));
});

test("packBoxes gives the bytes of encodeElement on the formatted elements; lowerFast packs every list", () => {
  const R = (lo: bigint, hi = lo): readonly [bigint, bigint] => [lo, hi];
  const v6 = (s: string) => BigInt(`0x${s}`);
  const cases: Array<[FwSet, Box[]]> = [
    [{ name: "a", type: ["ipv4_addr"], flags: ["interval"] }, [[R(1n)], [R(0x0a640000n, 0x0a64ffffn)], [R(0xffffff00n, 0xffffffffn)], [R(0n, 0xffffffffn)]]],
    [{ name: "b", type: ["ipv4_addr", "inet_proto", "inet_service"], flags: ["interval"] }, [[R(0x0a640001n), R(6n), R(8080n)], [R(0x0a640000n, 0x0a640fffn), R(17n), R(0n, 65535n)]]],
    [{ name: "c", type: ["ipv4_addr", "ipv4_addr", "inet_proto", "inet_service"], flags: ["interval"] }, [[R(0x0a640001n), R(0x0a640002n), R(6n), R(22n)]]],
    [{ name: "d", type: ["ipv6_addr"], flags: ["interval"] }, [[R(v6("fd000000000000000000000000000001"))], [R(v6("fd00000000000000" + "0".repeat(16)), v6("fd00000000000000" + "f".repeat(16)))], [R(0n, (1n << 128n) - 1n)]]],
    [{ name: "e", type: ["ipv6_addr", "inet_proto", "inet_service"], flags: ["interval"] }, [[R(v6("fd000000000000000000000000abcdef")), R(58n), R(0n, 65535n)]]],
    [{ name: "f", type: ["inet_service"] }, [[R(22n)], [R(65535n)]]],
  ];
  for (const [set, boxes] of cases) {
    const els = elementsOf(set.type, boxes);
    const want = packElements(els.flatMap((e) => encodeElement(set, e)));
    const p = new ElemPacker();
    expect(packBoxes(set, boxes, p)).toBe(true);
    expect([...p.finish()]).toEqual([...want]);
    const lowered = lowerFast({ family: "inet", table: "t", ops: [{ op: "addElements", set: set.name, elements: els }] }, new Map([[set.name, set]]));
    expect([...(lowered.ops[0] as { packed: Uint8Array }).packed]).toEqual([...want]);
    // A list that did not come from compile takes the string path, same bytes.
    const copy = els.map((e) => ({ key: [...e.key] }));
    const lowered2 = lowerFast({ family: "inet", table: "t", ops: [{ op: "deleteElements", set: set.name, elements: copy }] }, new Map([[set.name, set]]));
    expect([...(lowered2.ops[0] as { packed: Uint8Array }).packed]).toEqual([...want]);
  }
  // Boxes that do not fit the type are left to the general encoder (and its error).
  expect(packBoxes({ name: "g", type: ["inet_service"] }, [[R(1n, 2n)]], new ElemPacker())).toBe(false);
  expect(packBoxes({ name: "h", type: ["inet_proto"], flags: ["interval"] }, [[R(0n, 256n)]], new ElemPacker())).toBe(false);
  expect(packBoxes({ name: "i", type: ["inet_proto", "inet_service"], flags: ["interval"] }, [[R(6n)]], new ElemPacker())).toBe(false);
});
