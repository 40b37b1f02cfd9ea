/**
 * The enforcer's conditional commits against the real kernel (throwaway namespace): the
 * generation comes back with the commit, a batch planned against a stale generation is
 * refused whole (ERESTART), and the Enforcer then re-plans from what the kernel holds.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { Netns, REPO_ROOT, canUseNetns } from "../helpers/netns.ts";

const enabled = await canUseNetns();
let ns: Netns;

beforeAll(async () => {
  if (enabled) ns = await Netns.create("plexd-pt");
});
afterAll(async () => {
  await ns?.remove();
});

describe.skipIf(!enabled)("nftTarget conditional commits", () => {
  test("generation returned with the commit; stale batch refused; foreign change repaired by the next apply", async () => {
    const r = await ns.bun(resolve(REPO_ROOT, "test/integration/policy-target-runner.ts"));
    if (r.code !== 0) throw new Error(`runner exited ${r.code}: ${r.stderr}`);
    const o = JSON.parse(r.stdout.trim().split("\n").at(-1) as string);
    expect(o.g1).toBeGreaterThan(0);
    expect(o.g1Read).toBe(o.g1);
    expect(o.g2).toBe(o.g1 + 1);
    expect(o.g2Read).toBe(o.g2);
    expect(o.stale).toBe("ERESTART");
    expect(o.elements).toEqual([80, 81]);
    expect(o.corrections).toEqual(["firewall_restored"]);
    expect(o.allowIn4).toBe(0);
    expect([...o.svc].sort()).toEqual([443, 80]);
    expect(o.afterAppend).toBe(0);
    expect([...o.svcAfter].sort((a: number, b: number) => a - b)).toEqual([80, 443, 8443]);
  });
});
