/**
 * Runs NftTable calls inside a network namespace (started by kernel-nft.test.ts through
 * `ip netns exec`) and prints one JSON line per step:
 *   {ok: true, value} | {ok: false, error: {name, code, errno, op, object, detail, message}}
 *
 *   bun test/integration/kernel-nft-runner.ts '[{"apply": FwBatch}, {"dump": true}]'
 *
 * A step may carry `owned: {family, table}` to bind the wrapper to another table.
 */
import { loadAddon } from "../../src/kernel/addon.ts";
import type { FwBatch, NftAddon, NftFamily } from "../../src/kernel/firewall-api.ts";
import { NftTable } from "../../src/kernel/nft.ts";

interface Step {
  apply?: FwBatch;
  dump?: boolean;
  owned?: { family: NftFamily; table: string };
}

if (import.meta.main) {
  const steps = JSON.parse(process.argv[2] ?? "[]") as Step[];
  const addon = loadAddon() as unknown as NftAddon;
  for (const s of steps) {
    const t = new NftTable(addon, s.owned?.family ?? "inet", s.owned?.table ?? "plexd");
    try {
      const value = s.apply ? await t.apply(s.apply) : await t.dump();
      console.log(JSON.stringify({ ok: true, value: value ?? null }));
    } catch (e) {
      const err = e as Error & Record<string, unknown>;
      const { code, errno, op, object, detail } = err;
      console.log(JSON.stringify({ ok: false, error: { name: err.name, message: err.message, code, errno, op, object, detail } }));
    }
  }
}
