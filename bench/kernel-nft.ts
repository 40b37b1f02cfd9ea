/**
 * Benchmark: the kernel layer's nftables path alone (no policy compiler). Root only; runs
 * itself inside a throwaway network namespace and removes it (and its temp file) afterwards.
 *
 *   node_modules/.bin/bun bench/kernel-nft.ts [--tuples 10000] [--runs 5]
 *
 * Measures, from an empty ruleset each time and in the same run:
 *   1. NftTable.apply of ONE transaction: table, base chain, one concatenated interval set
 *      `ipv4_addr . inet_proto . inet_service` with N elements and its lookup rule
 *      (`iifname "plexd0" ip saddr . meta l4proto . th dport @allow counter accept`) —
 *      lowering, packing, the addon and the kernel;
 *   2. `nft -f` of the equivalent N linear rules (`iifname … ip saddr … tcp dport … accept`);
 *   3. for reference, `nft -f` of the same set with its N elements.
 * Prints medians and the ratio 1/2 (target ≤ 0.5). No assertions on timings.
 */
import { randomBytes } from "node:crypto";
import { loadAddon } from "../src/kernel/addon.ts";
import type { FwBatch, NftAddon } from "../src/kernel/firewall-api.ts";
import { NftTable } from "../src/kernel/nft.ts";
import { flag, hasFlag, median, ms, sh } from "./lib.ts";

const N = Number(flag("tuples", "10000"));
const RUNS = Number(flag("runs", "5"));
const IF = "plexd0";

function tuples(n: number): Array<{ ip: string; port: number }> {
  return Array.from({ length: n }, (_, i) => ({ ip: `10.100.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`, port: 1024 + (i % 5000) }));
}

function setBatch(n: number): FwBatch {
  return {
    family: "inet",
    table: "plexd",
    ops: [
      { op: "addTable" },
      { op: "addChain", chain: { name: "input", hook: "input", priority: 0, policy: "accept" } },
      { op: "addSet", set: { name: "allow", type: ["ipv4_addr", "inet_proto", "inet_service"], flags: ["interval"] } },
      { op: "addElements", set: "allow", elements: tuples(n).map((t) => ({ key: [t.ip, 6, t.port] })) },
      {
        op: "addRule",
        rule: {
          chain: "input",
          match: [
            { match: "cmp", field: "meta iifname", value: IF },
            { match: "set", fields: ["ip saddr", "meta l4proto", "th dport"], set: "allow" },
          ],
          stmt: [{ stmt: "counter" }, { stmt: "verdict", verdict: "accept" }],
        },
      },
    ],
  };
}

function linearRuleset(n: number): string {
  const lines = tuples(n).map((t) => `    iifname "${IF}" ip saddr ${t.ip} tcp dport ${t.port} accept`);
  return `table inet linear {\n  chain input {\n    type filter hook input priority 0; policy accept;\n${lines.join("\n")}\n  }\n}\n`;
}

function setRuleset(n: number): string {
  const els = tuples(n).map((t) => `${t.ip} . tcp . ${t.port}`);
  return [
    "table inet nftset {",
    "  set allow {",
    "    type ipv4_addr . inet_proto . inet_service; flags interval;",
    `    elements = { ${els.join(",\n      ")} }`,
    "  }",
    "  chain input {",
    "    type filter hook input priority 0; policy accept;",
    `    iifname "${IF}" ip saddr . meta l4proto . th dport @allow counter accept`,
    "  }",
    "}",
    "",
  ].join("\n");
}

async function timed(fn: () => unknown | Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

async function inner(): Promise<void> {
  const addon = loadAddon(process.env.PLEXD_TEST_ADDON || undefined) as unknown as NftAddon;
  const table = new NftTable(addon, "inet", "plexd");
  const tag = randomBytes(4).toString("hex");
  const linear = `/tmp/plexd-bench-linear-${tag}.nft`;
  const set = `/tmp/plexd-bench-set-${tag}.nft`;
  await Bun.write(linear, linearRuleset(N));
  await Bun.write(set, setRuleset(N));
  const ours: number[] = [];
  const nftLinear: number[] = [];
  const nftSet: number[] = [];
  try {
    // Sanity first: what we load is what the kernel holds.
    sh(["nft", "flush", "ruleset"]);
    await table.apply(setBatch(N));
    const d = await table.dump();
    const count = d.sets.find((s) => s.name === "allow")?.elements.length;
    if (count !== N) throw new Error(`expected ${N} elements in the kernel, read back ${count}`);
    for (let r = 0; r < RUNS; r++) {
      // Fresh objects each run: nothing cached between runs.
      const batch = setBatch(N);
      sh(["nft", "flush", "ruleset"]);
      ours.push(await timed(() => table.apply(batch)));
      sh(["nft", "flush", "ruleset"]);
      nftLinear.push(await timed(() => sh(["nft", "-f", linear])));
      sh(["nft", "flush", "ruleset"]);
      nftSet.push(await timed(() => sh(["nft", "-f", set])));
    }
    sh(["nft", "flush", "ruleset"]);
  } finally {
    sh(["rm", "-f", linear, set]);
  }
  const a = median(ours);
  const b = median(nftLinear);
  const c = median(nftSet);
  console.log(`tuples: ${N}, runs: ${RUNS} (medians)`);
  console.log(`  NftTable.apply, one set of ${N} + lookup rule   ${ms(a)}`);
  console.log(`  nft -f ${N} linear rules                      ${ms(b)}`);
  console.log(`  nft -f the same set (reference)                  ${ms(c)}`);
  console.log(`  ratio NftTable / nft -f linear                   ${(a / b).toFixed(3)}x   (target <= 0.5x) ${a / b <= 0.5 ? "OK" : "MISSED"}`);
  console.log(`  ratio NftTable / nft -f set                      ${(a / c).toFixed(3)}x`);
}

if (import.meta.main) {
  if (hasFlag("inner")) await inner();
  else {
    if (process.getuid?.() !== 0) throw new Error("bench/kernel-nft.ts needs root (network namespaces)");
    const ns = `plexd-bench-${randomBytes(4).toString("hex")}`;
    sh(["ip", "netns", "add", ns]);
    try {
      const p = Bun.spawn(["ip", "netns", "exec", ns, process.execPath, import.meta.path, "--inner", ...process.argv.slice(2)], {
        stdout: "inherit",
        stderr: "inherit",
      });
      process.exitCode = await p.exited;
    } finally {
      sh(["ip", "netns", "del", ns]);
    }
  }
}
