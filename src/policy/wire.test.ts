import { expect, test } from "bun:test";
import type { FwSet } from "../kernel/firewall-api.ts";
import { encodeElement } from "../kernel/nft-values.ts";
import { encodeFast } from "./wire.ts";

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
