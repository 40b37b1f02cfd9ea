/**
 * NAT lab for the nat-*.test.ts suites (root, real kernel): routers doing SNAT with nftables,
 * stund, the compiled reference control plane and compiled `plexd up` agents. Everything lives
 * in namespaces the lab creates (per-run suffix) and removes in cleanup(); addresses are
 * TEST-NETs and RFC 1918 ranges that exist only inside those namespaces.
 *
 *   site A 192.168.1.2 ─ rA 198.51.100.11 (EIM, UDP ports 20000-39999)  ─┐ core: bridge br0
 *   site B 192.168.2.2 ─ rB 198.51.100.12 (EIM, port-preserving)        ─┤ 198.51.100.1/24, routes
 *   site C 192.168.3.2 ─ rC 198.51.100.13 (symmetric: fully-random)     ─┤ 203.0.113.0/24 ─ stun ns:
 *   public P 198.51.100.40 (no NAT)                                     ─┤   stund 203.0.113.10/.20
 *   control plane 198.51.100.5 (dist/plexd-cp, TLS)                     ─┘
 *
 * Routers: WAN on the core bridge, masquerade out of `wan`, and `ct state new drop` for
 * unsolicited inbound on the WAN (forward and input): address- and port-dependent filtering, as
 * home routers do. rA maps UDP into a port range that excludes 51820: Linux NAT still keeps one
 * mapping per source (find_appropriate_src = endpoint-independent mapping) but cannot preserve
 * the port, so a conntrack flush really rebinds the mapping to a new random port (with plain
 * `masquerade` the flush gives the same `wan:51820` back — rB shows that).
 *
 * Agents: each in its site's network namespace AND its own mount namespace with tmpfs on
 * /run/wireguard and /run/plexd (as test/helpers/lab.ts does); the spawn chain is exec-only
 * (ip → unshare → sh → plexd), so the spawned PID is the agent and `nsenter -t <pid> -m -n`
 * reaches its sockets. Admin calls go through `plexd-cp admin` inside the CP's namespace (the
 * host has no route to the public segment).
 */
import { randomBytes } from "node:crypto";
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import YAML from "yaml";
import { parsePingRtt, parseWgDump, waitFor, type WgDump } from "../helpers/lab-util.ts";
import { alive, must, Netns, REPO_ROOT, run, type RunResult } from "../helpers/netns.ts";
import { killPid } from "../helpers/proc.ts";

export { waitFor } from "../helpers/lab-util.ts";

export const STUN_IP1 = "203.0.113.10";
export const STUN_IP2 = "203.0.113.20";
export const STUN_SERVERS = [`${STUN_IP1}:3478`, `${STUN_IP2}:3478`];
export const CP_IP = "198.51.100.5";
export const PUB_IP = "198.51.100.40";
export const LISTEN_PORT = 51820;
/** rA's UDP mapping range (excludes LISTEN_PORT). */
export const RA_PORTS = [20000, 39999] as const;
export const PLEXD_BIN = resolve(REPO_ROOT, "dist/plexd");
export const CP_BIN = resolve(REPO_ROOT, "dist/plexd-cp");

export type SiteName = "A" | "B" | "C" | "P";
export type NatKind = "eim-range" | "eim" | "symmetric" | "none";

/** One host (behind a router, or P on the public segment). */
export interface Site {
  readonly name: SiteName;
  readonly nat: NatKind;
  readonly ns: Netns;
  /** null for P. */
  readonly router: Netns | null;
  /** Host address (LAN address behind a router). */
  readonly lanIp: string;
  /** Router WAN address (P: its own address). */
  readonly wanIp: string;
  readonly dir: string;
  readonly configPath: string;
  readonly logPath: string;
  agent: Proc | null;
  nodeId?: string;
  meshIp?: string;
}

/** A process the lab started (leader of its own process group). */
export interface Proc {
  readonly pid: number;
  readonly proc: ReturnType<typeof Bun.spawn>;
  exit: { code: number | null; signal: string | null } | null;
}

/** A CP node record (`plexd-cp admin nodes show`); only what the tests read. */
export interface CpNodeView {
  id: string;
  hostname: string;
  mesh_ip: string;
  public_key: string;
  status: string;
  endpoint: string;
  nat_type: string;
  last_heartbeat?: { nat?: { public_endpoint: string; type: string } } | null;
}

/** `plexd status --json` → data (the fields the NAT tests read). */
export interface AgentNatStatus {
  phase: string;
  node_id: string | null;
  mesh_ip: string | null;
  nat: { enabled: boolean; type: string; public_endpoint: string | null; mode: string | null; last_success_age_s: number | null; last_error: string | null };
  peers: { up: number; total: number; list: { id: string; public_key: string; endpoint: string | null; last_handshake: string | null }[] };
}

const NODE_PRELUDE =
  'set -e; for d in /run/wireguard /run/plexd; do mkdir -p "$d"; mount -t tmpfs -o mode=0755,size=16m plexd-natlab "$d"; done; exec "$@"';

function natRules(kind: NatKind): string {
  const snat =
    kind === "symmetric"
      ? `oifname "wan" masquerade fully-random`
      : kind === "eim-range"
        ? `oifname "wan" meta l4proto udp masquerade to :${RA_PORTS[0]}-${RA_PORTS[1]}; oifname "wan" masquerade`
        : `oifname "wan" masquerade`;
  return `table ip natlab {
  chain nat_post { type nat hook postrouting priority srcnat; policy accept; ${snat}; }
  chain filter_fwd { type filter hook forward priority filter; policy accept; iifname "wan" ct state new drop; }
  chain filter_in { type filter hook input priority filter; policy accept; iifname "wan" ct state new drop; }
}
`;
}

/** `nft -f -` inside `ns`. */
export async function nft(ns: Netns, script: string): Promise<void> {
  const p = Bun.spawn(["ip", "netns", "exec", ns.name, "nft", "-f", "-"], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  p.stdin.write(script);
  await p.stdin.end();
  const [code, err] = await Promise.all([p.exited, new Response(p.stderr).text()]);
  if (code !== 0) throw new Error(`nft in ${ns.name}: ${err.trim()}\n${script}`);
}

/** Options of {@link NatLab.create}. */
export interface NatLabOptions {
  /** `nat_traversal.refresh_interval` of the agents (≥ 10s). */
  refreshInterval: string;
  /** Start the reference CP [true]; false = topology and stund only. */
  cp?: boolean;
  log?: (l: string) => void;
}

const live = new Set<NatLab>();
let hooked = false;
function installHooks(): void {
  if (hooked) return;
  hooked = true;
  // Last resort (a crash, process.exit elsewhere): synchronous teardown by PID and name.
  process.on("exit", () => {
    for (const l of live) l.cleanupSync();
  });
  // Ctrl-C / kill of the test run: tear down, then exit (which runs the other labs' exit hooks).
  for (const [sig, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    // Always exits: a listener replaces the default action, which must stay "terminate".
    process.on(sig, () => {
      for (const l of live) l.cleanupSync();
      process.exit(code);
    });
  }
}

/** Why the lab cannot run here, or null. */
export async function natLabUnavailable(): Promise<string | null> {
  if (process.getuid?.() !== 0) return "needs root";
  for (const tool of ["ip", "nft", "wg", "nsenter", "unshare", "ping", "wireguard-go", "stund", "conntrack", "openssl"]) {
    if (!Bun.which(tool)) return `${tool} not found (run npm run setup)`;
  }
  for (const bin of [PLEXD_BIN, CP_BIN]) if (!existsSync(bin)) return `${bin} missing (bash build/compile)`;
  const r = await run(["ip", "netns", "list"]).catch(() => undefined);
  return r?.code === 0 ? null : "ip netns not usable";
}

export class NatLab {
  readonly suffix = randomBytes(2).toString("hex");
  readonly dir: string;
  readonly nets: Netns[] = [];
  readonly sites = {} as Record<SiteName, Site>;
  core!: Netns;
  stunNs!: Netns;
  cpNs!: Netns;
  stund: Proc | null = null;
  cp: (Proc & { url: string; caFile: string; tokenFile: string }) | null = null;
  private readonly procs = new Set<Proc>();
  private readonly wgBefore: Set<string>;
  private cleaning: Promise<void> | null = null;
  private cleaned = false;

  private constructor(readonly opts: NatLabOptions) {
    this.dir = mkdtempSync(join(tmpdir(), `plexd-natlab-${this.suffix}-`));
    chmodSync(this.dir, 0o700);
    this.wgBefore = new Set(existsSync("/run/wireguard") ? readdirSync("/run/wireguard") : []);
  }

  /** Builds namespaces, routers, stund and (unless `cp: false`) the CP; on failure cleans up and rethrows. */
  static async create(opts: NatLabOptions): Promise<NatLab> {
    installHooks();
    const lab = new NatLab(opts);
    live.add(lab);
    try {
      await lab.build();
      if (opts.cp !== false) await lab.startCp();
    } catch (e) {
      await lab.cleanup();
      throw e;
    }
    return lab;
  }

  private log(l: string): void {
    this.opts.log?.(`natlab ${this.suffix}: ${l}`);
  }

  private async mk(role: string): Promise<Netns> {
    const n = await Netns.create(`pxn${this.suffix}-${role}`);
    this.nets.push(n);
    return n;
  }

  private async sysctl(ns: Netns, kv: string): Promise<void> {
    await must(["ip", "netns", "exec", ns.name, "sysctl", "-qw", kv]);
  }

  private async wanPort(ns: Netns, port: string, ip: string): Promise<void> {
    await must(["ip", "link", "add", port, "netns", this.core.name, "type", "veth", "peer", "name", "wan", "netns", ns.name]);
    await this.core.ip("link", "set", port, "master", "br0", "up");
    await ns.ip("addr", "add", `${ip}/24`, "dev", "wan");
    await ns.ip("link", "set", "wan", "up");
    await ns.ip("route", "add", "default", "via", "198.51.100.1");
  }

  private async build(): Promise<void> {
    this.core = await this.mk("core");
    this.stunNs = await this.mk("stun");
    this.cpNs = await this.mk("cp");
    const core = this.core;
    await core.ip("link", "add", "br0", "type", "bridge");
    await core.ip("addr", "add", "198.51.100.1/24", "dev", "br0");
    await core.ip("link", "set", "br0", "up");
    await this.sysctl(core, "net.ipv4.ip_forward=1");

    // STUN segment, routed by core: reachable from the sites only through their routers.
    await must(["ip", "link", "add", "stun", "netns", core.name, "type", "veth", "peer", "name", "eth0", "netns", this.stunNs.name]);
    await core.ip("addr", "add", "203.0.113.1/24", "dev", "stun");
    await core.ip("link", "set", "stun", "up");
    await this.stunNs.ip("addr", "add", `${STUN_IP1}/24`, "dev", "eth0");
    await this.stunNs.ip("addr", "add", `${STUN_IP2}/24`, "dev", "eth0");
    await this.stunNs.ip("link", "set", "eth0", "up");
    await this.stunNs.ip("route", "add", "default", "via", "203.0.113.1");

    await this.wanPort(this.cpNs, "pcp", CP_IP);

    const mkSite = (name: SiteName, nat: NatKind, ns: Netns, router: Netns | null, lanIp: string, wanIp: string): Site => {
      const dir = join(this.dir, name);
      mkdirSync(join(dir, "data"), { recursive: true, mode: 0o700 });
      mkdirSync(join(dir, "hooks.d"), { recursive: true, mode: 0o755 });
      const s: Site = { name, nat, ns, router, lanIp, wanIp, dir, configPath: join(dir, "config.yaml"), logPath: join(dir, "agent.log"), agent: null };
      this.sites[name] = s;
      return s;
    };

    for (const [name, i, nat] of [["A", 1, "eim-range"], ["B", 2, "eim"], ["C", 3, "symmetric"]] as const) {
      const router = await this.mk(`r${name.toLowerCase()}`);
      const ns = await this.mk(`s${name.toLowerCase()}`);
      const wanIp = `198.51.100.1${i}`;
      await this.wanPort(router, `p${name}`, wanIp);
      await this.sysctl(router, "net.ipv4.ip_forward=1");
      await must(["ip", "link", "add", "lan", "netns", router.name, "type", "veth", "peer", "name", "eth0", "netns", ns.name]);
      await router.ip("addr", "add", `192.168.${i}.1/24`, "dev", "lan");
      await router.ip("link", "set", "lan", "up");
      const lanIp = `192.168.${i}.2`;
      await ns.ip("addr", "add", `${lanIp}/24`, "dev", "eth0");
      await ns.ip("link", "set", "eth0", "up");
      await ns.ip("route", "add", "default", "via", `192.168.${i}.1`);
      await nft(router, natRules(nat));
      mkSite(name, nat, ns, router, lanIp, wanIp);
    }
    const pub = await this.mk("pub");
    await this.wanPort(pub, "pP", PUB_IP);
    mkSite("P", "none", pub, null, PUB_IP, PUB_IP);

    this.stund = this.spawn(["ip", "netns", "exec", this.stunNs.name, "stund", "-h", STUN_IP1, "-a", STUN_IP2], join(this.dir, "stund.log"));
    await waitFor(
      "stund bound both addresses",
      async () => {
        const ss = await run(["ip", "netns", "exec", this.stunNs.name, "ss", "-Hlun"]);
        return ss.stdout.includes(`${STUN_IP1}:3478`) && ss.stdout.includes(`${STUN_IP2}:3478`);
      },
      { timeoutMs: 5000, intervalMs: 50, abortIf: () => (this.stund?.exit ? "stund exited" : null) },
    );
    this.log(`topology up in ${this.dir}`);
  }

  private spawn(argv: string[], logPath: string, opts: { stdout?: "pipe"; env?: Record<string, string> } = {}): Proc {
    const fd = openSync(logPath, "a", 0o600);
    let proc: ReturnType<typeof Bun.spawn>;
    try {
      proc = Bun.spawn(argv, {
        stdin: "ignore",
        stdout: opts.stdout ?? fd,
        stderr: fd,
        detached: true, // own process group: the group kill reaches wireguard-go too
        env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8", NO_COLOR: "1", ...opts.env },
      });
    } finally {
      closeSync(fd);
    }
    const p: Proc = { pid: proc.pid, proc, exit: null };
    this.procs.add(p);
    void proc.exited.then((code) => {
      p.exit = { code: proc.signalCode ? null : code, signal: proc.signalCode ? String(proc.signalCode) : null };
    });
    return p;
  }

  /** Signals the process, waits up to `ms`, then SIGKILLs its group (by PID). */
  private async stop(p: Proc, sig: NodeJS.Signals, ms: number): Promise<void> {
    if (!p.exit) {
      killPid(p.pid, sig);
      const done = await Promise.race([p.proc.exited.then(() => true), Bun.sleep(ms).then(() => false)]);
      if (!done) killPid(-p.pid, "SIGKILL");
    }
    killPid(-p.pid, "SIGKILL");
    await p.proc.exited;
    this.procs.delete(p);
  }

  // ─────────────────────────── control plane ───────────────────────────

  private async startCp(): Promise<void> {
    const cpDir = join(this.dir, "cp");
    mkdirSync(cpDir, { recursive: true, mode: 0o700 });
    const tokenFile = join(cpDir, "admin-token");
    // Listening on the public-segment address: the generated certificate then has IP:198.51.100.5
    // in its SANs (src/cp/tls.ts adds the listen host), which the agents verify against ca_file.
    const argv = ["ip", "netns", "exec", this.cpNs.name, CP_BIN, "serve", "--listen", `${CP_IP}:0`, "--db", join(cpDir, "cp.db"), "--admin-token-file", tokenFile];
    const p = this.spawn(argv, join(this.dir, "cp.log"), { stdout: "pipe" });
    const reader = (p.proc.stdout as ReadableStream<Uint8Array>).getReader();
    let buf = "";
    const timeout = Bun.sleep(20_000).then(() => null);
    let ready: { url: string; ca_file: string | null } | null = null;
    for (;;) {
      const r = await Promise.race([reader.read(), timeout]);
      if (r === null || r.done) break;
      buf += new TextDecoder().decode(r.value);
      const nl = buf.indexOf("\n");
      if (nl >= 0) {
        ready = JSON.parse(buf.slice(0, nl));
        // Keep draining so the CP never blocks on a full pipe.
        void (async () => {
          try {
            for (;;) if ((await reader.read()).done) break;
          } catch {
            /* closed */
          }
        })();
        break;
      }
    }
    if (!ready?.ca_file) {
      const log = await Bun.file(join(this.dir, "cp.log")).text().catch(() => "");
      throw new Error(`control plane not ready (or without TLS): ${buf}${log.slice(-2000)}`);
    }
    this.cp = Object.assign(p, { url: ready.url, caFile: ready.ca_file, tokenFile });
    this.log(`control plane ${ready.url} (pid ${p.pid})`);
  }

  /** `plexd-cp admin <args>` inside the CP namespace; parsed JSON answer (throws unless exit 0). */
  async admin(args: string[]): Promise<any> {
    const cp = this.cp;
    if (!cp) throw new Error("control plane not started");
    const r = await run(["ip", "netns", "exec", this.cpNs.name, CP_BIN, "admin", "--url", cp.url, "--token-file", cp.tokenFile, "--ca-file", cp.caFile, ...args]);
    if (r.code !== 0) throw new Error(`plexd-cp admin ${args.join(" ")} → ${r.code}: ${r.stdout}${r.stderr}`);
    return JSON.parse(r.stdout);
  }

  /** The site's CP record via `admin nodes show`; undefined until it registered. */
  async cpNode(site: Site): Promise<CpNodeView | undefined> {
    if (!site.nodeId) {
      const list = (await this.admin(["nodes", "list"])).nodes as CpNodeView[];
      const n = list.find((x) => x.hostname === this.hostname(site));
      if (!n) return undefined;
      site.nodeId = n.id;
      site.meshIp = n.mesh_ip;
    }
    return (await this.admin(["nodes", "show", site.nodeId])) as CpNodeView;
  }

  // ─────────────────────────── agents ───────────────────────────

  hostname(site: Site): string {
    return `pxn${this.suffix}-${site.name.toLowerCase()}`;
  }

  /** Writes the config and a fresh bootstrap token, then starts `plexd up` in the site. */
  async startAgent(site: Site, extra: Record<string, unknown> = {}): Promise<Proc> {
    const cp = this.cp!;
    const tokenPath = join(site.dir, "bootstrap-token");
    writeFileSync(tokenPath, `${(await this.admin(["token", "create", "--ttl", "30m"])).token}\n`, { mode: 0o600 });
    const config = {
      api: { url: cp.url, ca_file: cp.caFile },
      data_dir: join(site.dir, "data"),
      hostname: this.hostname(site),
      log_level: "debug",
      log_format: "json",
      mesh: { backend: "userspace", interface: "plexd0", listen_port: LISTEN_PORT },
      token: { file: tokenPath, metadata: false },
      registration: { token_wait: "30s" },
      heartbeat: { interval: "5s" },
      reconcile: { interval: "5s" },
      policy: { default: "allow" },
      nat_traversal: { enabled: true, stun_servers: STUN_SERVERS, timeout: "2s", refresh_interval: this.opts.refreshInterval },
      logs: { enabled: false },
      audit: { enabled: false },
      observe: { enabled: false },
      inventory: { enabled: false },
      hooks: { dir: join(site.dir, "hooks.d"), watch: false },
      access: { ssh: { enabled: false, host_key_file: join(site.dir, "data", "ssh_host_key") } },
      ...extra,
    };
    writeFileSync(site.configPath, YAML.stringify(config), { mode: 0o600 });
    const argv = ["ip", "netns", "exec", site.ns.name, "unshare", "--mount", "--propagation", "slave", "sh", "-c", NODE_PRELUDE, "plexd-natlab", PLEXD_BIN, "up", "--config", site.configPath];
    site.agent = this.spawn(argv, site.logPath, { env: { TMPDIR: site.dir } });
    this.log(`agent ${site.name} pid ${site.agent.pid}`);
    return site.agent;
  }

  /** "agent of X exited …" for started agents that are gone, else null. */
  deadAgents(sites: Site[] = Object.values(this.sites)): string | null {
    const dead = sites.filter((s) => s.agent?.exit);
    return dead.length ? dead.map((s) => `agent ${s.name} exited ${JSON.stringify(s.agent!.exit)}`).join("; ") : null;
  }

  /** argv inside the agent's network + mount namespaces. */
  exec(site: Site, argv: string[], timeoutMs = 15_000): Promise<RunResult> {
    const a = site.agent;
    if (!a || a.exit || !alive(a.pid)) throw new Error(`agent of ${site.name} not running`);
    return run(["nsenter", "-t", String(a.pid), "-m", "-n", "--", ...argv], { timeoutMs, env: { NO_COLOR: "1" } });
  }

  /** `plexd status --json` inside the node (through the agent's control socket). */
  async status(site: Site): Promise<AgentNatStatus> {
    const r = await this.exec(site, [PLEXD_BIN, "status", "--json", "--config", site.configPath]);
    let doc: any;
    try {
      doc = JSON.parse(r.stdout);
    } catch {
      /* below */
    }
    if (!doc?.data?.phase) throw new Error(`plexd status --json on ${site.name}: exit ${r.code}: ${r.stdout}${r.stderr}`);
    return doc.data as AgentNatStatus;
  }

  /** `wg show plexd0 dump` in the agent's namespaces. */
  async wg(site: Site): Promise<WgDump> {
    const r = await this.exec(site, ["wg", "show", "plexd0", "dump"]);
    if (r.code !== 0) throw new Error(`wg show on ${site.name}: ${r.stderr}`);
    return parseWgDump(r.stdout);
  }

  /** One ICMP echo from the site's namespace. */
  async ping(from: Site, dst: string, waitS = 1): Promise<{ ok: boolean; out: string }> {
    const r = await run(["ip", "netns", "exec", from.ns.name, "ping", "-n", "-c", "1", "-W", String(waitS), dst], { timeoutMs: waitS * 1000 + 5000 });
    const out = r.stdout + r.stderr;
    if (r.code > 1) throw new Error(`ping did not run in ${from.name} (${r.code}): ${out}`);
    return { ok: r.code === 0 && parsePingRtt(out) !== null, out };
  }

  /** `conntrack <args>` inside a router. */
  async conntrack(site: Site, args: string[]): Promise<RunResult> {
    if (!site.router) throw new Error(`${site.name} has no router`);
    return run(["ip", "netns", "exec", site.router.name, "conntrack", ...args]);
  }

  /** Agent log tail (failure messages). */
  async agentLog(site: Site, chars = 3000): Promise<string> {
    return (await Bun.file(site.logPath).text().catch(() => "")).slice(-chars);
  }

  // ─────────────────────────── teardown ───────────────────────────

  /** What of this lab is still present (empty after cleanup()). */
  async leftovers(): Promise<string[]> {
    const out: string[] = [];
    const ns = await run(["ip", "netns", "list"]);
    for (const l of ns.stdout.split("\n")) if (l.startsWith(`pxn${this.suffix}-`)) out.push(`netns ${l.split(" ")[0]}`);
    for (const p of this.procs) if (alive(p.pid)) out.push(`pid ${p.pid}`);
    for (const s of Object.values(this.sites)) if (s.agent && alive(s.agent.pid)) out.push(`agent pid ${s.agent.pid}`);
    if (this.stund && alive(this.stund.pid)) out.push(`stund pid ${this.stund.pid}`);
    if (this.cp && alive(this.cp.pid)) out.push(`cp pid ${this.cp.pid}`);
    for (const dir of ["/run/wireguard", "/var/run/wireguard"]) {
      if (!existsSync(dir)) continue;
      for (const f of readdirSync(dir)) if (!this.wgBefore.has(f)) out.push(`${dir}/${f}`);
    }
    if (existsSync(this.dir)) out.push(`dir ${this.dir}`);
    return out;
  }

  /** Stops every process (by PID), deletes every namespace and the temp dir. Idempotent. */
  cleanup(): Promise<void> {
    this.cleaning ??= this.doCleanup();
    return this.cleaning;
  }

  private async doCleanup(): Promise<void> {
    const agents = Object.values(this.sites).flatMap((s) => (s.agent ? [s.agent] : []));
    await Promise.allSettled(agents.map((a) => this.stop(a, "SIGTERM", 5000)));
    for (const p of [...this.procs]) if (p !== this.cp) await this.stop(p, "SIGKILL", 1000);
    if (this.cp) await this.stop(this.cp, "SIGTERM", 3000);
    // Anything else still inside a lab namespace was started by this lab (wireguard-go etc.).
    for (const n of this.nets) {
      for (let i = 0; i < 50; i++) {
        const pids = (await run(["ip", "netns", "pids", n.name])).stdout.split(/\s+/).filter(Boolean).map(Number);
        if (pids.length === 0) break;
        for (const pid of pids) killPid(pid, "SIGKILL");
        await Bun.sleep(50);
      }
    }
    await Promise.all(this.nets.map((n) => n.remove()));
    rmSync(this.dir, { recursive: true, force: true });
    this.cleaned = true;
    live.delete(this);
    this.log("cleaned up");
  }

  /** Synchronous last-resort teardown at process exit. */
  cleanupSync(): void {
    if (this.cleaned) return;
    for (const p of this.procs) killPid(-p.pid, "SIGKILL");
    for (const n of this.nets) {
      const pids = Bun.spawnSync(["ip", "netns", "pids", n.name]).stdout.toString().split(/\s+/).filter(Boolean);
      for (const pid of pids) killPid(Number(pid), "SIGKILL");
    }
    Bun.spawnSync(["sleep", "0.2"]);
    for (const n of this.nets) Bun.spawnSync(["ip", "netns", "del", n.name]);
    rmSync(this.dir, { recursive: true, force: true });
    this.cleaned = true;
    live.delete(this);
  }
}
