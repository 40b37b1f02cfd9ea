/**
 * Policy enforcement benchmark (root; runs itself inside a throwaway network namespace).
 *
 *   node_modules/.bin/bun bench/policy.ts [--rules 10000] [--runs 3]
 *
 * Measures, in the same run and namespace:
 *   1. compile + apply of N rule tuples (allow tcp <port> from <ip>) through the Enforcer
 *      (one transaction, concatenated interval sets) — from an empty ruleset;
 *   2. `nft -f` of the equivalent N linear rules (`iifname … ip saddr … tcp dport … accept`);
 *   3. one rule added to N: Enforcer.apply of N+1 rules (compile + diff + one-element commit),
 *      20 successive additions per run (median over all of them).
 * Prints medians and the ratio 1/2 (target ≤ 0.5) and 3 (target ≤ 5 ms).
 */
import { randomBytes } from "node:crypto";
import { loadAddon } from "../src/kernel/addon.ts";
import { Enforcer, compile, nftTarget, type PolicyInput, type PolicySet } from "../src/policy/index.ts";

const args = process.argv.slice(2);
const flag = (n: string, d: number) => {
  const i = args.indexOf(n);
  return i >= 0 ? Number(args[i + 1]) : d;
};
const N = flag("--rules", 10_000);
const RUNS = flag("--runs", 3);
const IF = "plexd0";
const ADDS = 20;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

function tuples(n: number): Array<{ ip: string; port: number }> {
  return Array.from({ length: n }, (_, i) => ({ ip: `10.100.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`, port: 1024 + (i % 5000) }));
}

function policySet(n: number): PolicySet {
  const rules = tuples(n).map((t) => ({ src: t.ip, dst: "n_local", port: t.port, protocol: "tcp", action: "allow" }));
  const policies: PolicyInput[] = [{ id: "pol_bench", rules }];
  return { policies, local: { nodeId: "n_local", meshIp: "10.100.0.1" }, peers: [] };
}

function linearRuleset(n: number): string {
  const lines = tuples(n).map((t) => `    iifname "${IF}" ip saddr ${t.ip} tcp dport ${t.port} accept`);
  return `table inet linear {\n  chain input {\n    type filter hook input priority 0; policy accept;\n${lines.join("\n")}\n  }\n}\n`;
}

async function sh(argv: string[]): Promise<void> {
  const p = Bun.spawn(argv, { stdout: "ignore", stderr: "pipe" });
  const [err, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`${argv.join(" ")}: ${err}`);
}

const quiet = { debug(m: string, f?: unknown) { if (process.env.PLEXD_BENCH_DEBUG) console.error(m, JSON.stringify(f)); }, info() {}, warn(m: string, f?: unknown) { console.error(m, JSON.stringify(f)); }, error() {} };

async function inner(): Promise<void> {
  const addon = process.env.PLEXD_TEST_ADDON ? loadAddon(process.env.PLEXD_TEST_ADDON) : loadAddon();
  const options = { interface: IF, default: "deny" as const, logDenied: false };
  const base = policySet(N);

  const compileMs: number[] = [];
  const oursMs: number[] = [];
  const nftMs: number[] = [];
  const addOneMs: number[] = [];
  const file = `/tmp/plexd-bench-${randomBytes(4).toString("hex")}.nft`;
  await Bun.write(file, linearRuleset(N));
  try {
    for (let r = 0; r < RUNS; r++) {
      await sh(["nft", "flush", "ruleset"]);
      let t = performance.now();
      compile(base, options);
      compileMs.push(performance.now() - t);

      const enforcer = new Enforcer({ target: nftTarget(addon), log: quiet, options, firewalld: null });
      t = performance.now();
      await enforcer.apply(base);
      oursMs.push(performance.now() - t);

      // One rule added, 20 times in a row (10,001 … 10,020 rules): steady state, not JIT warm-up.
      let cur = base;
      for (let k = 0; k < ADDS; k++) {
        const next = policySet(N);
        const rules = next.policies[0]!.rules as PolicyInput["rules"][number][];
        for (let j = 0; j <= k; j++) rules.push({ src: `10.100.250.${2 * j + 1}`, dst: "n_local", port: 443, protocol: "tcp", action: "allow" });
        cur = next;
        t = performance.now();
        await enforcer.apply(cur);
        addOneMs.push(performance.now() - t);
      }
      await enforcer.stop();

      await sh(["nft", "flush", "ruleset"]);
      t = performance.now();
      await sh(["nft", "-f", file]);
      nftMs.push(performance.now() - t);
    }
  } finally {
    await sh(["rm", "-f", file]);
  }
  const ours = median(oursMs);
  const nft = median(nftMs);
  const add = median(addOneMs);
  console.log(`rules: ${N}, runs: ${RUNS} (medians)`);
  console.log(`  compile only                   ${median(compileMs).toFixed(1)} ms`);
  console.log(`  plexd compile + apply (sets)   ${ours.toFixed(1)} ms`);
  console.log(`  nft -f ${N} linear rules       ${nft.toFixed(1)} ms`);
  console.log(`  ratio plexd / nft -f           ${(ours / nft).toFixed(3)}x   (target <= 0.5x) ${ours / nft <= 0.5 ? "OK" : "MISSED"}`);
  console.log(`  add 1 rule to ${N} (p50 of ${addOneMs.length}) ${add.toFixed(2)} ms   (target <= 5 ms) ${add <= 5 ? "OK" : "MISSED"}`);
}

if (import.meta.main) {
  if (args.includes("--inner")) await inner();
  else {
    if (process.getuid?.() !== 0) throw new Error("bench/policy.ts needs root (network namespaces)");
    const ns = `plexd-bench-${randomBytes(4).toString("hex")}`;
    await sh(["ip", "netns", "add", ns]);
    try {
      const p = Bun.spawn(["ip", "netns", "exec", ns, process.execPath, import.meta.path, "--inner", ...args], {
        stdout: "inherit",
        stderr: "inherit",
      });
      process.exitCode = await p.exited;
    } finally {
      await sh(["ip", "netns", "del", ns]);
    }
  }
}
