/**
 * Runs a NatDiscovery inside a lab namespace (Bun has no in-process setns, so the raw socket
 * must be opened by a process that lives in the site's namespace):
 *
 *   ip netns exec <ns> bun test/integration/nat-runner.ts '<json RunnerArgs>'
 *
 * Wiring as the agent will do it, with the lab's stand-ins: reportEndpoint = PUT /endpoint to
 * the test's fake CP over a Unix socket (reachable across network namespaces), peers and
 * setPeerEndpoint = wireguard-go UAPI (src/kernel/uapi.ts). Prints one JSON line per cycle:
 * {"event":"cycle","result":…,"state":…}. `once` exits after the first cycle.
 */
import { loadAddon } from "../../src/kernel/addon.ts";
import { UapiClient } from "../../src/kernel/uapi.ts";
import { keepaliveFor, NatDiscovery, type PeerView } from "../../src/nat/index.ts";

/** argv[2] of the runner. */
export interface RunnerArgs {
  nodeId: string;
  listenPort: number;
  servers: string[];
  timeoutMs: number;
  refreshMs: number;
  once?: boolean;
  /** Fake CP socket; absent = report to nobody (returns no peers). */
  cpSocket?: string;
  /** wireguard-go interface whose peers get the returned endpoints. */
  ifname?: string;
  /** peer_id → base64 public key of the configured peers. */
  peers?: Record<string, string>;
  /** mesh.persistent_keepalive, seconds. */
  keepalive?: number;
  /** Force the unprivileged fallback transport. */
  noAddon?: boolean;
}

if (import.meta.main) {
  const a = JSON.parse(process.argv[2] ?? "{}") as RunnerArgs;
  const uapi = new UapiClient({ timeoutMs: 5000 });
  const idByKey = new Map(Object.entries(a.peers ?? {}).map(([id, key]) => [key, id]));
  let nat: NatDiscovery;
  nat = new NatDiscovery({
    config: { enabled: true, stunServers: a.servers, refreshIntervalMs: a.refreshMs, timeoutMs: a.timeoutMs },
    listenPort: a.listenPort,
    cachePath: null,
    addon: a.noAddon ? null : loadAddon(),
    async reportEndpoint(public_endpoint, nat_type) {
      if (!a.cpSocket) return [];
      const r = await fetch(`http://cp/v1/nodes/${a.nodeId}/endpoint`, {
        unix: a.cpSocket,
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ public_endpoint, nat_type }),
      });
      if (!r.ok) throw new Error(`PUT /endpoint → ${r.status}`);
      return ((await r.json()) as { peer_endpoints: Array<{ peer_id: string; endpoint: string }> }).peer_endpoints;
    },
    async peers(): Promise<PeerView[]> {
      if (!a.ifname) return [];
      const dev = await uapi.get(a.ifname);
      return (dev?.peers ?? []).flatMap((p) => {
        const id = idByKey.get(p.publicKey);
        return id ? [{ peerId: id, publicKey: p.publicKey, endpoint: p.endpoint, lastHandshakeMs: p.lastHandshakeMs }] : [];
      });
    },
    async setPeerEndpoint(u) {
      // The agent applies keepalive with every peer write (keepaliveFor): a NAT is in the path.
      const ka = keepaliveFor(nat.state().natType, a.keepalive ?? 25);
      // Keepalive 0 → ka in one request makes WireGuard send a keepalive to the new endpoint at
      // once (it does so when keepalive turns on): that packet opens our own NAT for the peer's
      // packets (hole punch) instead of waiting up to `ka` seconds for the next timer.
      await uapi.set(a.ifname!, {
        peers: [
          { publicKey: u.publicKey, updateOnly: true, persistentKeepalive: 0 },
          { publicKey: u.publicKey, updateOnly: true, endpoint: u.endpoint, persistentKeepalive: ka },
        ],
      });
    },
    onCycle(result, state) {
      console.log(JSON.stringify({ event: "cycle", result, state }));
    },
  });
  await nat.discover({ reason: "start" });
  if (a.once) process.exit(0);
  nat.start();
  process.on("SIGTERM", () => void nat.stop().then(() => process.exit(0)));
}
