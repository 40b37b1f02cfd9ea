/**
 * NAT classification (lifecycle.md §5.3): query the configured servers in order until two with
 * different resolved IPs have answered, then compare the mappings. The decision itself is the
 * pure {@link classifyMappings}; {@link discoverMappings} does the I/O.
 */
import type { NatType } from "../controlplane/types.ts";
import { bindingTransaction, parseStunServer, type ResolveV4 } from "./stun-client.ts";
import type { StunTransport } from "./transport.ts";

export type { NatType };

/** One server's answer. */
export interface Mapping {
  /** Server as configured. */
  server: string;
  /** Resolved server address used this cycle. */
  serverIp: string;
  serverPort: number;
  /** Reflexive address the server saw. */
  ip: string;
  port: number;
}

/** A server that did not produce a mapping, and why. */
export interface ServerFailure {
  server: string;
  reason: string;
}

/** Outcome of classification. */
export type Classification =
  | { ok: true; natType: NatType; publicEndpoint: string; mappings: Mapping[]; failures: ServerFailure[] }
  | { ok: false; reason: string; mappings: Mapping[]; failures: ServerFailure[] };

/** Inputs of the pure rule besides the mappings. */
export interface LocalFacts {
  /** IPv4 addresses configured on this host's interfaces. */
  localAddresses: ReadonlySet<string>;
  listenPort: number;
  /** "fallback": requests did not leave from the listen port (§5.1): type is always unknown. */
  mode: "raw" | "fallback";
}

/**
 * The §5.3 table. `none` needs the first mapping to be (a LOCAL address, listen_port): a
 * port-preserving NAT also keeps the port, so an equal port alone proves nothing.
 */
export function classifyMappings(mappings: readonly Mapping[], local: LocalFacts): { natType: NatType; publicEndpoint: string } | null {
  const first = mappings[0];
  if (!first) return null;
  if (local.mode === "fallback") {
    // The mapped port belongs to an ephemeral socket; WireGuard's port is the best guess.
    return { natType: "unknown", publicEndpoint: `${first.ip}:${local.listenPort}` };
  }
  const publicEndpoint = `${first.ip}:${first.port}`;
  if (first.port === local.listenPort && local.localAddresses.has(first.ip)) return { natType: "none", publicEndpoint };
  const second = mappings[1];
  if (!second) return { natType: "unknown", publicEndpoint };
  const same = first.ip === second.ip && first.port === second.port;
  return { natType: same ? "full_cone" : "symmetric", publicEndpoint };
}

/** I/O of {@link discoverMappings}. */
export interface DiscoverDeps {
  transport: StunTransport;
  resolve: ResolveV4;
  /** Per-server limit (`nat_traversal.timeout`). */
  timeoutMs: number;
  localAddresses: ReadonlySet<string>;
  listenPort: number;
  now?: () => number;
  signal?: AbortSignal;
  /** Overall deadline (epoch ms), e.g. the 15 s of the nat_discovery phase. */
  deadline?: number;
}

/** Runs the §5.3 query loop over `servers` and classifies. Never throws for network trouble. */
export async function discoverMappings(servers: readonly string[], deps: DiscoverDeps): Promise<Classification> {
  const now = deps.now ?? Date.now;
  const mappings: Mapping[] = [];
  const failures: ServerFailure[] = [];
  // The fallback socket cannot tell the NAT type, so one answer is all it needs.
  const wanted = deps.transport.mode === "fallback" ? 1 : 2;

  for (const text of servers) {
    if (mappings.length >= wanted || deps.signal?.aborted) break;
    const left = deps.deadline === undefined ? deps.timeoutMs : Math.min(deps.timeoutMs, deps.deadline - now());
    if (left <= 0) {
      failures.push({ server: text, reason: "discovery deadline reached" });
      break;
    }
    const s = parseStunServer(text);
    if ("error" in s) {
      failures.push({ server: text, reason: s.error });
      continue;
    }
    let ip: string;
    try {
      ip = await deps.resolve(s.host);
    } catch (err) {
      failures.push({ server: text, reason: `resolve: ${(err as Error).message}` });
      continue;
    }
    // Two answers from one IP say nothing about endpoint dependence: skip duplicates.
    if (mappings.some((m) => m.serverIp === ip)) {
      failures.push({ server: text, reason: `same IP as an earlier server (${ip}); skipped` });
      continue;
    }
    const r = await bindingTransaction(deps.transport, ip, s.port, { timeoutMs: left, now, signal: deps.signal });
    if (!r.ok) {
      failures.push({ server: text, reason: `${r.reason}: ${r.detail}` });
      continue;
    }
    if (r.mapped.family !== 4) {
      failures.push({ server: text, reason: `IPv6 mapping ${r.mapped.ip} not used (IPv4 only in v1)` });
      continue;
    }
    mappings.push({ server: text, serverIp: ip, serverPort: s.port, ip: r.mapped.ip, port: r.mapped.port });
  }

  const c = classifyMappings(mappings, { localAddresses: deps.localAddresses, listenPort: deps.listenPort, mode: deps.transport.mode });
  if (!c) return { ok: false, reason: failures.length ? "no STUN server answered" : "no STUN servers configured", mappings, failures };
  return { ok: true, ...c, mappings, failures };
}
