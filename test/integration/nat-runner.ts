/**
 * Runs one NatDiscovery cycle inside a lab namespace and prints it (Bun has no in-process setns,
 * so the socket must be opened by a process that lives in the site's namespace):
 *
 *   ip netns exec <ns> bun test/integration/nat-runner.ts '<json RunnerArgs>'
 *
 * Nothing is reported (no CP) and no peers are touched: this drives the STUN transport and
 * classification only. Prints one JSON line {"event":"cycle","result":…,"state":…}. The whole
 * agent with the real CP is covered by test/e2e/nat-traversal.test.ts.
 */
import { loadAddon } from "../../src/kernel/addon.ts";
import { NatDiscovery } from "../../src/nat/index.ts";

/** argv[2] of the runner. */
export interface RunnerArgs {
  listenPort: number;
  servers: string[];
  timeoutMs: number;
  /** Force the unprivileged fallback transport (no addon = no raw socket). */
  noAddon?: boolean;
}

if (import.meta.main) {
  const a = JSON.parse(process.argv[2] ?? "{}") as RunnerArgs;
  const nat = new NatDiscovery({
    config: { enabled: true, stunServers: a.servers, refreshIntervalMs: 60_000, timeoutMs: a.timeoutMs },
    listenPort: a.listenPort,
    cachePath: null,
    addon: a.noAddon ? null : loadAddon(),
    reportEndpoint: async () => [],
    peers: async () => [],
    setPeerEndpoint: async () => undefined,
    onCycle(result, state) {
      console.log(JSON.stringify({ event: "cycle", result, state }));
    },
  });
  await nat.discover({ reason: "start" });
  process.exit(0);
}
