/**
 * The mesh lab: a reference control plane and N plexd agents on one machine.
 *
 *   host ── bridge plxbr<sfx> (192.0.2.<base+1>, <base+2>/27: CP + STUN) ──┬─ veth ─ netns plx<sfx>n1 (eth0 .<base+11>)
 *                                                                          ├─ veth ─ netns plx<sfx>n2 (eth0 .<base+12>)
 *                                                                          └─ …
 *
 * - Addresses come from TEST-NET-1 (192.0.2.0/24, never routed). Each lab takes a free /27 slot
 *   of it, so a demo and a test run can share the machine.
 * - Every agent runs in its node's network namespace AND its own mount namespace with private
 *   tmpfs on /run/wireguard and /run/plexd, so all nodes can use `plexd0` and the default
 *   socket paths. `ip netns exec` already unshares the mount namespace with `/` as a recursive
 *   slave (host mounts propagate in, nothing propagates out); `unshare --propagation slave`
 *   makes that explicit. The spawn chain is exec-only (ip → unshare → sh → plexd), so the PID we
 *   spawn IS the agent; commands that must see the agent's sockets run with
 *   `nsenter -t <agent pid> -m -n`.
 * - The control plane learns a node's WireGuard endpoint only from the agent's STUN report
 *   (lifecycle.md §5.4), so the lab answers STUN on the bridge (test/helpers/stun.ts) and nodes
 *   run with `nat_traversal.enabled: true` against it (they classify as `none`).
 * - cleanup() kills every process it started (process groups, then every PID left in each
 *   namespace), deletes namespaces, veths and the bridge and removes the temp dir. It is
 *   registered for SIGINT/SIGTERM and (synchronously) for process exit.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import YAML from "yaml";
import { alive, must, REPO_ROOT, run, type RunResult } from "./netns.ts";
import { killPid } from "./proc.ts";
import { parsePingRtt, parseWgDump, waitFor, type WgDump } from "./lab-util.ts";
import { startStun, type StunServer } from "./stun.ts";

export { waitFor } from "./lab-util.ts";
export type { WgDump, WgPeer } from "./lab-util.ts";

/** Default locations of the compiled executables. */
export const PLEXD_BIN = resolve(REPO_ROOT, "dist/plexd");
export const CP_BIN = resolve(REPO_ROOT, "dist/plexd-cp");

/** Options of a lab. */
export interface LabOptions {
  /** Agent executable [dist/plexd]. */
  plexd?: string;
  /** Control-plane executable [dist/plexd-cp]. */
  cp?: string;
  /** Start the CP with `--faults` [true]. */
  faults?: boolean;
  /** Extra `plexd-cp serve` flags. */
  cpArgs?: string[];
  /** STUN on the bridge + `nat_traversal.enabled` in node configs [true] (see header). */
  stun?: boolean;
  /** Deep-merged into every node's config. */
  config?: Record<string, unknown>;
  /** Progress lines (e.g. console.error); silent by default. */
  log?: (line: string) => void;
  /** Install SIGINT/SIGTERM handlers that clean up and exit [true]. */
  signals?: boolean;
}

/** A running process started by the lab (its own process group). */
export interface LabProc {
  readonly pid: number;
  readonly proc: ReturnType<typeof Bun.spawn>;
  readonly startedAt: number;
  /** Set when the process has exited. */
  exit: { code: number | null; signal: string | null; at: number } | null;
}

/** One node: namespace, veth, files; `agent` while a process runs in it. */
export interface LabNode {
  readonly index: number;
  /** Namespace name = hostname = CP hostname (`plx<sfx>n<i>`). */
  readonly name: string;
  readonly netns: string;
  readonly hostVeth: string;
  /** The node's address on the bridge (its WireGuard endpoint IP). */
  readonly addr: string;
  readonly dir: string;
  readonly dataDir: string;
  readonly configPath: string;
  readonly tokenPath: string;
  readonly logPath: string;
  readonly iface: string;
  agent: LabProc | null;
  /** Filled by `registration()` from the CP. */
  nodeId?: string;
  meshIp?: string;
}

/** The control plane process plus what its ready line said. */
export interface LabCp extends LabProc {
  url: string;
  adminToken: string;
  caFile: string;
}

/** A CP node as listed by `GET /admin/nodes`. */
export interface CpNode {
  id: string;
  hostname: string;
  mesh_ip: string;
  public_key: string;
  status: string;
  endpoint: string;
  nat_type: string;
  last_seen: string;
  registered_at: string;
}

/** Result of one ping. */
export interface PingResult {
  ok: boolean;
  rttMs: number | null;
  out: string;
}

/** Result of stopping an agent. */
export interface StopResult {
  code: number | null;
  signal: string | null;
  /** From sending the signal to the process having exited. */
  ms: number;
  /** True when it had to be SIGKILLed after the timeout. */
  killed: boolean;
}

const live = new Set<Lab>();
let hooksInstalled = false;

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  const onSignal = (sig: NodeJS.Signals, code: number) => {
    const labs = [...live].filter((l) => l.handlesSignals);
    if (labs.length === 0) return;
    void (async () => {
      for (const l of labs) await l.options.log?.(`lab ${l.suffix}: ${sig}, cleaning up`);
      await Promise.allSettled(labs.map((l) => l.cleanup()));
      process.exit(code);
    })();
  };
  process.on("SIGINT", () => onSignal("SIGINT", 130));
  process.on("SIGTERM", () => onSignal("SIGTERM", 143));
  // Last resort (uncaught error, process.exit from elsewhere): synchronous teardown.
  process.on("exit", () => {
    for (const l of live) l.cleanupSync();
  });
}

/** Signals a whole process group (every lab process leads its own; see spawn()). */
function killGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    /* group empty */
  }
}

function sigName(s: number | string | null | undefined): string | null {
  return s === null || s === undefined ? null : String(s);
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    out[k] =
      v && typeof v === "object" && !Array.isArray(v) && cur && typeof cur === "object" && !Array.isArray(cur)
        ? deepMerge(cur as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/** Picks a /27 of 192.0.2.0/24 that no host interface uses yet (0, 32, …, 224). */
async function freeSlot(): Promise<number> {
  const addrs = JSON.parse(await must(["ip", "-j", "-4", "addr", "show"])) as { addr_info?: { local?: string }[] }[];
  const used = new Set<number>();
  for (const l of addrs) {
    for (const a of l.addr_info ?? []) {
      const m = /^192\.0\.2\.(\d+)$/.exec(a.local ?? "");
      if (m) used.add(Math.floor(Number(m[1]) / 32) * 32);
    }
  }
  const free = [0, 32, 64, 96, 128, 160, 192, 224].filter((s) => !used.has(s));
  if (free.length === 0) throw new Error("lab: every /27 of 192.0.2.0/24 is in use on this host");
  return free[randomBytes(1)[0]! % free.length]!;
}

/** Shell run inside the node's mount namespace before the agent: private runtime dirs. */
const NODE_PRELUDE =
  'set -e; for d in /run/wireguard /run/plexd; do mkdir -p "$d"; mount -t tmpfs -o mode=0755,size=16m plexd-lab "$d"; done; exec "$@"';

export class Lab {
  readonly suffix: string;
  readonly bridge: string;
  readonly dir: string;
  readonly nodes: LabNode[] = [];
  readonly plexdBin: string;
  readonly cpBin: string;
  /** First address of this lab's /27 (e.g. 192.0.2.64 → base 64). */
  readonly base: number;
  cp: LabCp | null = null;
  private cpPort = 0;
  private stun: StunServer[] = [];
  private readonly procs = new Set<LabProc>();
  private readonly wgBefore: Set<string>;
  private cleaned = false;
  private cleaning: Promise<void> | null = null;

  private constructor(readonly options: LabOptions, suffix: string, base: number) {
    this.suffix = suffix;
    this.base = base;
    this.bridge = `plxbr${suffix}`;
    this.dir = mkdtempSync(join(tmpdir(), `plexd-lab-${suffix}-`));
    chmodSync(this.dir, 0o700);
    this.plexdBin = resolve(options.plexd ?? PLEXD_BIN);
    this.cpBin = resolve(options.cp ?? CP_BIN);
    this.wgBefore = new Set(existsSync("/run/wireguard") ? readdirSync("/run/wireguard") : []);
  }

  /** True when the SIGINT/SIGTERM hooks should clean this lab up. */
  get handlesSignals(): boolean {
    return this.options.signals !== false;
  }

  /** Address of the CP (and first STUN server) on the bridge. */
  get hostAddr(): string {
    return `192.0.2.${this.base + 1}`;
  }

  /** Second bridge address (second STUN server, so classification sees two server IPs). */
  get hostAddr2(): string {
    return `192.0.2.${this.base + 2}`;
  }

  /** Why the lab cannot run here (not root, tools or binaries missing), or null. */
  static async unavailable(opts: { plexd?: string; cp?: string; needAgent?: boolean } = {}): Promise<string | null> {
    if (process.getuid?.() !== 0) return "needs root";
    for (const tool of ["ip", "wg", "nft", "nsenter", "unshare", "ping", "wireguard-go"]) {
      if (!Bun.which(tool)) return `${tool} not found (run npm run setup)`;
    }
    const cp = resolve(opts.cp ?? CP_BIN);
    if (!existsSync(cp)) return `${cp} missing (bash build/compile)`;
    if (opts.needAgent !== false) {
      const bin = resolve(opts.plexd ?? PLEXD_BIN);
      if (!existsSync(bin)) return `${bin} missing (bash build/compile)`;
    }
    const r = await run(["ip", "netns", "list"]).catch(() => undefined);
    return r?.code === 0 ? null : "ip netns not usable";
  }

  /** Creates the bridge (and STUN responders); registers cleanup hooks. */
  static async create(options: LabOptions = {}): Promise<Lab> {
    installHooks();
    const lab = new Lab(options, randomBytes(2).toString("hex"), await freeSlot());
    live.add(lab);
    try {
      const br = lab.bridge;
      // nf_call_iptables 0: host iptables (e.g. a Docker FORWARD drop) must not see bridged frames.
      const add = await run(["ip", "link", "add", br, "type", "bridge", "nf_call_iptables", "0", "nf_call_ip6tables", "0", "nf_call_arptables", "0"]);
      if (add.code !== 0) await must(["ip", "link", "add", br, "type", "bridge"]);
      await must(["ip", "addr", "add", `${lab.hostAddr}/27`, "dev", br]);
      await must(["ip", "addr", "add", `${lab.hostAddr2}/27`, "dev", br]);
      await must(["ip", "link", "set", br, "up"]);
      if (options.stun !== false) {
        lab.stun.push(await startStun(lab.hostAddr), await startStun(lab.hostAddr2));
      }
      lab.log(`lab ${lab.suffix}: bridge ${br} ${lab.hostAddr}/27, dir ${lab.dir}`);
    } catch (e) {
      await lab.cleanup();
      throw e;
    }
    return lab;
  }

  private log(line: string): void {
    this.options.log?.(line);
  }

  // ───────────────────────────── processes ─────────────────────────────

  private spawn(argv: string[], logPath: string, opts: { stdout?: "pipe"; env?: Record<string, string> } = {}): LabProc {
    const fd = openSync(logPath, "a", 0o600);
    let proc: ReturnType<typeof Bun.spawn>;
    try {
      proc = Bun.spawn(argv, {
        stdin: "ignore",
        stdout: opts.stdout ?? fd,
        stderr: fd,
        detached: true, // own process group: killGroup() reaches every child
        env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8", NO_COLOR: "1", ...opts.env },
      });
    } finally {
      closeSync(fd);
    }
    const p: LabProc = { pid: proc.pid, proc, startedAt: Date.now(), exit: null };
    this.procs.add(p);
    void proc.exited.then((code) => {
      p.exit = { code: proc.signalCode ? null : code, signal: sigName(proc.signalCode), at: Date.now() };
    });
    return p;
  }

  /** Signals a process, waits up to `timeoutMs`, then SIGKILLs its whole group. */
  private async stopProc(p: LabProc, sig: NodeJS.Signals, timeoutMs: number): Promise<StopResult> {
    const t0 = Date.now();
    let killed = false;
    if (!p.exit) {
      try {
        process.kill(p.pid, sig);
      } catch {
        /* already gone */
      }
      const done = await Promise.race([p.proc.exited.then(() => true), Bun.sleep(timeoutMs).then(() => false)]);
      if (!done) {
        killed = true;
        killGroup(p.pid, "SIGKILL");
        await p.proc.exited;
      }
    }
    // Children that outlived the leader (same group) go too.
    killGroup(p.pid, "SIGKILL");
    await p.proc.exited;
    const code = p.proc.signalCode ? null : p.proc.exitCode;
    this.procs.delete(p);
    return { code, signal: sigName(p.proc.signalCode), ms: Date.now() - t0, killed };
  }

  // ───────────────────────────── control plane ─────────────────────────────

  /** Starts `plexd-cp serve` on the bridge address (same port again after a restart). */
  async startCp(): Promise<LabCp> {
    if (this.cp && !this.cp.exit) return this.cp;
    const cpDir = join(this.dir, "cp");
    mkdirSync(cpDir, { recursive: true, mode: 0o700 });
    const argv = [this.cpBin, "serve", "--listen", `${this.hostAddr}:${this.cpPort}`, "--db", join(cpDir, "cp.db")];
    if (this.options.faults !== false) argv.push("--faults");
    argv.push(...(this.options.cpArgs ?? []));
    const p = this.spawn(argv, join(this.dir, "cp.log"), { stdout: "pipe" });
    const ready = await this.readReady(p);
    this.cpPort = Number(new URL(ready.url).port);
    if (!ready.ca_file) throw new Error("lab: CP started without TLS (no ca_file)");
    this.cp = Object.assign(p, { url: ready.url, adminToken: ready.admin_token, caFile: ready.ca_file });
    this.caText = undefined;
    this.log(`lab ${this.suffix}: control plane ${ready.url} (pid ${p.pid})`);
    return this.cp;
  }

  private async readReady(p: LabProc): Promise<{ url: string; admin_token: string; ca_file: string | null }> {
    const reader = (p.proc.stdout as ReadableStream<Uint8Array>).getReader();
    const dec = new TextDecoder();
    let buf = "";
    const timeout = Bun.sleep(20_000).then(() => null);
    for (;;) {
      const r = await Promise.race([reader.read(), timeout]);
      if (r === null || r.done) break;
      buf += dec.decode(r.value, { stream: true });
      const nl = buf.indexOf("\n");
      if (nl >= 0) {
        // Keep draining stdout so the CP can never block on a full pipe.
        void (async () => {
          try {
            for (;;) if ((await reader.read()).done) break;
          } catch {
            /* closed */
          }
        })();
        return JSON.parse(buf.slice(0, nl));
      }
    }
    await this.stopProc(p, "SIGKILL", 1000);
    const log = await Bun.file(join(this.dir, "cp.log")).text().catch(() => "");
    throw new Error(`lab: control plane did not become ready: ${log.slice(-2000)}`);
  }

  /** Stops the CP (`SIGKILL` = crash, `SIGTERM` = clean). */
  async stopCp(sig: NodeJS.Signals = "SIGTERM"): Promise<StopResult | null> {
    if (!this.cp) return null;
    const r = await this.stopProc(this.cp, sig, 5000);
    this.log(`lab ${this.suffix}: control plane stopped (${sig})`);
    return r;
  }

  /** Stops and starts the CP on the same address, port and DB. */
  async restartCp(sig: NodeJS.Signals = "SIGTERM"): Promise<LabCp> {
    await this.stopCp(sig);
    return this.startCp();
  }

  private caText: string | undefined;

  /** Calls the CP admin API; returns status and parsed JSON. */
  async admin(method: string, path: string, body?: unknown): Promise<{ status: number; json: any; text: string }> {
    const cp = this.cp;
    if (!cp) throw new Error("lab: control plane not started");
    this.caText ??= await Bun.file(cp.caFile).text();
    const res = await fetch(cp.url + path, {
      method,
      headers: { authorization: `Bearer ${cp.adminToken}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
      tls: { ca: this.caText },
      signal: AbortSignal.timeout(10_000),
    } as RequestInit);
    const text = await res.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, json, text };
  }

  /** Like admin() but throws unless 2xx. */
  async adminOk(method: string, path: string, body?: unknown): Promise<any> {
    const r = await this.admin(method, path, body);
    if (r.status < 200 || r.status > 299) throw new Error(`lab: ${method} ${path} → ${r.status} ${r.text}`);
    return r.json;
  }

  /** Active CP nodes. */
  async cpNodes(): Promise<CpNode[]> {
    return (await this.adminOk("GET", "/admin/nodes")).nodes as CpNode[];
  }

  /** A fresh bootstrap token. */
  async createToken(ttl = "30m"): Promise<string> {
    return (await this.adminOk("POST", "/admin/tokens", { ttl })).token as string;
  }

  // ───────────────────────────── nodes ─────────────────────────────

  /** Creates the namespace, veth, data dir, config and (unless `token: false`) a token file. */
  async addNode(opts: { config?: Record<string, unknown>; token?: boolean } = {}): Promise<LabNode> {
    if (!this.cp) await this.startCp();
    const cp = this.cp!;
    const index = this.nodes.length + 1;
    if (index > 19) throw new Error("lab: at most 19 nodes per lab");
    const name = `plx${this.suffix}n${index}`;
    const dir = join(this.dir, `n${index}`);
    mkdirSync(join(dir, "data"), { recursive: true, mode: 0o700 });
    mkdirSync(join(dir, "hooks.d"), { recursive: true, mode: 0o755 });
    chmodSync(join(dir, "hooks.d"), 0o755);
    const node: LabNode = {
      index,
      name,
      netns: name,
      hostVeth: `plx${this.suffix}v${index}`,
      addr: `192.0.2.${this.base + 10 + index}`,
      dir,
      dataDir: join(dir, "data"),
      configPath: join(dir, "config.yaml"),
      tokenPath: join(dir, "bootstrap-token"),
      logPath: join(dir, "agent.log"),
      iface: "plexd0",
      agent: null,
    };
    this.nodes.push(node);
    await must(["ip", "netns", "add", node.netns]);
    await must(["ip", "-n", node.netns, "link", "set", "lo", "up"]);
    await must(["ip", "link", "add", node.hostVeth, "type", "veth", "peer", "name", "eth0", "netns", node.netns]);
    await must(["ip", "link", "set", node.hostVeth, "master", this.bridge, "up"]);
    await must(["ip", "-n", node.netns, "addr", "add", `${node.addr}/27`, "dev", "eth0"]);
    await must(["ip", "-n", node.netns, "link", "set", "eth0", "up"]);

    const stun = this.stun.length > 0;
    const base: Record<string, unknown> = {
      api: { url: cp.url, ca_file: cp.caFile },
      data_dir: node.dataDir,
      hostname: name,
      log_level: "debug",
      log_format: "json",
      mesh: { backend: "userspace", interface: node.iface, listen_port: 51820 },
      token: { file: node.tokenPath, metadata: false },
      registration: { token_wait: "30s" },
      heartbeat: { interval: "5s" },
      reconcile: { interval: "5s" },
      // Overridable per lab (`config`) or per node (`addNode({config})`), e.g. `{ policy: { default: "deny" } }`.
      policy: { default: "allow" },
      nat_traversal: stun
        ? { enabled: true, stun_servers: this.stun.map((s) => `${s.address}:${s.port}`), timeout: "2s", refresh_interval: "10s" }
        : { enabled: false },
      logs: { enabled: false },
      audit: { enabled: false },
      observe: { enabled: false },
      inventory: { enabled: false },
      hooks: { dir: join(dir, "hooks.d"), watch: false },
      access: { ssh: { enabled: false, host_key_file: join(node.dataDir, "ssh_host_key") } },
    };
    const config = deepMerge(deepMerge(base, this.options.config ?? {}), opts.config ?? {});
    writeFileSync(node.configPath, YAML.stringify(config), { mode: 0o600 });
    if (opts.token !== false) writeFileSync(node.tokenPath, `${await this.createToken()}\n`, { mode: 0o600 });
    this.log(`lab ${this.suffix}: node ${name} ${node.addr}`);
    return node;
  }

  /** Starts `plexd up` (or `argv`) in the node's namespaces; the returned PID is the agent. */
  startAgent(node: LabNode, opts: { argv?: string[]; env?: Record<string, string> } = {}): LabProc {
    if (node.agent && !node.agent.exit) throw new Error(`lab: agent of ${node.name} already running`);
    const cmd = opts.argv ?? [this.plexdBin, "up", "--config", node.configPath];
    const argv = ["ip", "netns", "exec", node.netns, "unshare", "--mount", "--propagation", "slave", "sh", "-c", NODE_PRELUDE, "plexd-lab", ...cmd];
    writeFileSync(node.logPath, `--- ${new Date().toISOString()} start ${cmd.join(" ")}\n`, { flag: "a" });
    node.agent = this.spawn(argv, node.logPath, { env: { TMPDIR: node.dir, ...opts.env } });
    this.log(`lab ${this.suffix}: ${node.name} agent pid ${node.agent.pid}`);
    return node.agent;
  }

  /**
   * Stops the node's agent with `sig` (to the agent only, as systemd's main-PID signal) and waits
   * up to `timeoutMs`; then SIGKILLs its group and every PID left in the namespace.
   */
  async stopAgent(node: LabNode, sig: NodeJS.Signals = "SIGTERM", timeoutMs = 40_000): Promise<StopResult | null> {
    const p = node.agent;
    if (!p) return null;
    const r = await this.stopProc(p, sig, timeoutMs);
    await this.sweepNetns(node.netns);
    this.log(`lab ${this.suffix}: ${node.name} agent stopped (${sig}) code=${r.code} signal=${r.signal} ${r.ms} ms`);
    return r;
  }

  /**
   * Starts argv in the node's network namespace (not the agent's mount namespace) as a lab
   * process: own process group, stopped by cleanup(). stdout is piped for the caller; stderr goes
   * to `<node dir>/<name>.log`. For test tools such as TCP listeners and probes.
   */
  spawnInNode(node: LabNode, name: string, argv: string[], opts: { env?: Record<string, string> } = {}): LabProc {
    return this.spawn(["ip", "netns", "exec", node.netns, ...argv], join(node.dir, `${name}.log`), {
      stdout: "pipe",
      env: { TMPDIR: node.dir, ...opts.env },
    });
  }

  /** Stops a process of spawnInNode(): SIGTERM, its group SIGKILLed after `timeoutMs`. */
  stopInNode(p: LabProc, timeoutMs = 2000): Promise<StopResult> {
    return this.stopProc(p, "SIGTERM", timeoutMs);
  }

  /** PIDs currently inside a namespace. */
  async netnsPids(netns: string): Promise<number[]> {
    const r = await run(["ip", "netns", "pids", netns]);
    return r.code === 0 ? r.stdout.split(/\s+/).filter(Boolean).map(Number) : [];
  }

  /** SIGKILLs every process left in the namespace and waits until they are gone. */
  private async sweepNetns(netns: string): Promise<void> {
    for (let i = 0; i < 50; i++) {
      const pids = await this.netnsPids(netns);
      if (pids.length === 0) return;
      for (const pid of pids) killPid(pid, "SIGKILL");
      await Bun.sleep(50);
    }
  }

  /** The running agent's PID or null. */
  agentPid(node: LabNode): number | null {
    return node.agent && !node.agent.exit && alive(node.agent.pid) ? node.agent.pid : null;
  }

  /**
   * Runs argv in the node: inside the agent's network + mount namespaces when it runs (so
   * `/run/plexd/*.sock` and `/run/wireguard` are the agent's), else in a fresh private mount
   * namespace of the node's network namespace.
   */
  exec(node: LabNode, argv: string[], opts: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<RunResult> {
    const pid = this.agentPid(node);
    const full =
      pid !== null
        ? ["nsenter", "-t", String(pid), "-m", "-n", "--", ...argv]
        : ["ip", "netns", "exec", node.netns, "unshare", "--mount", "--propagation", "slave", "sh", "-c", NODE_PRELUDE, "plexd-lab", ...argv];
    return run(full, { timeoutMs: opts.timeoutMs ?? 30_000, env: { NO_COLOR: "1", ...opts.env } });
  }

  /** `plexd <args> --config <node config>` inside the node. */
  plexd(node: LabNode, args: string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
    return this.exec(node, [this.plexdBin, ...args, "--config", node.configPath], opts);
  }

  /** `plexd <args> --json`; returns exit code and the parsed `{schemaVersion, data|error}` document. */
  async plexdJson(node: LabNode, args: string[], opts: { timeoutMs?: number } = {}): Promise<{ code: number; doc: any; raw: RunResult }> {
    const r = await this.plexd(node, [...args, "--json"], opts);
    let doc: any;
    try {
      doc = JSON.parse(r.stdout);
    } catch {
      doc = undefined;
    }
    return { code: r.code, doc, raw: r };
  }

  /** One ICMP echo from the node to `dst` (mesh IP); `waitS` may be fractional. */
  async ping(from: LabNode, dst: string, waitS = 1): Promise<PingResult> {
    const r = await run(["ip", "netns", "exec", from.netns, "ping", "-n", "-c", "1", "-W", String(waitS), dst], {
      timeoutMs: Math.ceil(waitS * 1000) + 5000,
    });
    const out = r.stdout + r.stderr;
    const rtt = parsePingRtt(out);
    return { ok: r.code === 0 && rtt !== null, rttMs: rtt, out };
  }

  /** `wg show <iface> dump` in the agent's namespaces; null when no interface/socket exists. */
  async wgDump(node: LabNode): Promise<WgDump | null> {
    if (this.agentPid(node) === null) return null;
    const r = await this.exec(node, ["wg", "show", node.iface, "dump"], { timeoutMs: 10_000 });
    if (r.code !== 0) return null;
    return parseWgDump(r.stdout);
  }

  /** `ip -j link show <iface>` inside the node's netns (no mount namespace needed); null if absent. */
  async link(node: LabNode, ifname = node.iface): Promise<any | null> {
    const r = await run(["ip", "-n", node.netns, "-j", "link", "show", ifname]);
    if (r.code !== 0) return null;
    return (JSON.parse(r.stdout) as any[])[0] ?? null;
  }

  /** The node's CP record (by hostname); fills nodeId/meshIp. Undefined until registered. */
  async registration(node: LabNode): Promise<CpNode | undefined> {
    const n = (await this.cpNodes()).find((c) => c.hostname === node.name);
    if (n) {
      node.nodeId = n.id;
      node.meshIp = n.mesh_ip;
    }
    return n;
  }

  /** Waits until the CP lists the node; returns its record. */
  waitRegistered(node: LabNode, timeoutMs = 30_000): Promise<CpNode> {
    return waitFor(`${node.name} registered`, () => this.registration(node), {
      timeoutMs,
      intervalMs: 100,
      abortIf: () => this.deadAgents([node]),
    });
  }

  /** "agent of X exited (code N)" for started agents that are no longer running, else null. */
  deadAgents(nodes: LabNode[] = this.nodes): string | null {
    const dead = nodes.filter((n) => n.agent?.exit);
    if (dead.length === 0) return null;
    return dead.map((n) => `agent of ${n.name} exited (code ${n.agent!.exit!.code}, signal ${n.agent!.exit!.signal})`).join("; ");
  }

  /**
   * Waits until every given node has every other given node as a WireGuard peer and every pair
   * pings over mesh IPs. Returns how long it took.
   */
  async waitMesh(nodes: LabNode[] = this.nodes, timeoutMs = 60_000): Promise<number> {
    const t0 = Date.now();
    for (const n of nodes) await this.waitRegistered(n, timeoutMs);
    const keys = new Map<string, string>(); // hostname → key and key → hostname
    for (const c of await this.cpNodes()) keys.set(c.hostname, c.public_key).set(c.public_key, c.hostname);
    await waitFor(
      "every node has every other node as a peer",
      async () => {
        for (const n of nodes) {
          const d = await this.wgDump(n);
          const have = new Set(d?.peers.map((p) => p.publicKey) ?? []);
          for (const o of nodes) if (o !== n && !have.has(keys.get(o.name)!)) return false;
        }
        return true;
      },
      { timeoutMs: Math.max(1000, timeoutMs - (Date.now() - t0)), intervalMs: 200, abortIf: () => this.deadAgents(nodes) },
    );
    await waitFor(
      "every pair pings over mesh IPs",
      async () => {
        const m = await this.pingMatrix(nodes, 0.5);
        const bad = m.filter((r) => !r.result.ok);
        if (bad.length === 0) return true;
        // Say why on timeout: which pairs fail and which peers have no endpoint (nothing can start a handshake then).
        const noEndpoint: string[] = [];
        for (const n of nodes) {
          for (const p of (await this.wgDump(n))?.peers ?? []) {
            if (!p.endpoint) noEndpoint.push(`${n.name}→${keys.get(p.publicKey) ?? p.publicKey.slice(0, 8)}`);
          }
        }
        throw new Error(
          `failing: ${bad.map((r) => `${r.from.name}→${r.to.name}`).join(", ")}` +
            (noEndpoint.length ? `; peers without endpoint: ${noEndpoint.join(", ")} (the CP learns endpoints only from the agents' STUN report)` : ""),
        );
      },
      { timeoutMs: Math.max(1000, timeoutMs - (Date.now() - t0)), intervalMs: 200, abortIf: () => this.deadAgents(nodes) },
    );
    return Date.now() - t0;
  }

  /** Pings every ordered pair (from ≠ to) once, concurrently. */
  async pingMatrix(nodes: LabNode[] = this.nodes, waitS = 1): Promise<{ from: LabNode; to: LabNode; result: PingResult }[]> {
    const pairs: { from: LabNode; to: LabNode }[] = [];
    for (const from of nodes) for (const to of nodes) if (from !== to) pairs.push({ from, to });
    return Promise.all(
      pairs.map(async ({ from, to }) => ({
        from,
        to,
        result: to.meshIp ? await this.ping(from, to.meshIp, waitS) : { ok: false, rttMs: null, out: "no mesh IP" },
      })),
    );
  }

  /** Tail of a node's agent log (for failure messages). */
  async agentLog(node: LabNode, chars = 4000): Promise<string> {
    const t = await Bun.file(node.logPath).text().catch(() => "");
    return t.slice(-chars);
  }

  // ───────────────────────────── teardown ─────────────────────────────

  /** Everything of this lab still present on the host (empty after cleanup()). */
  async leftovers(): Promise<string[]> {
    const out: string[] = [];
    const ns = await run(["ip", "netns", "list"]);
    for (const l of ns.stdout.split("\n")) if (l.startsWith(`plx${this.suffix}`)) out.push(`netns ${l.split(" ")[0]}`);
    const links = await run(["ip", "-o", "link", "show"]);
    for (const l of links.stdout.split("\n")) {
      const name = /^\d+: ([^:@]+)/.exec(l)?.[1];
      if (name && (name.startsWith(`plx${this.suffix}`) || name === this.bridge)) out.push(`link ${name}`);
    }
    const ifaces = new Set(this.nodes.map((n) => `${n.iface}.sock`));
    if (existsSync("/run/wireguard")) {
      for (const f of readdirSync("/run/wireguard")) if (!this.wgBefore.has(f) && ifaces.has(f)) out.push(`/run/wireguard/${f}`);
    }
    for (const p of this.procs) if (alive(p.pid)) out.push(`pid ${p.pid}`);
    if (existsSync(this.dir)) out.push(`dir ${this.dir}`);
    return out;
  }

  /** Kills everything, deletes namespaces, veths, bridge and the temp dir. Idempotent. */
  cleanup(): Promise<void> {
    this.cleaning ??= this.doCleanup();
    return this.cleaning;
  }

  private async doCleanup(): Promise<void> {
    if (this.cleaned) return;
    const nodeStops = this.nodes.map((n) => (n.agent ? this.stopProc(n.agent, "SIGTERM", 3000) : Promise.resolve(null)));
    await Promise.allSettled(nodeStops);
    for (const p of [...this.procs]) if (p !== this.cp) await this.stopProc(p, "SIGKILL", 1000);
    for (const n of this.nodes) await this.sweepNetns(n.netns);
    if (this.cp) await this.stopProc(this.cp, "SIGTERM", 3000).catch(() => undefined);
    for (const s of this.stun) s.close();
    this.stun = [];
    for (const n of this.nodes) {
      await run(["ip", "netns", "del", n.netns]);
      await run(["ip", "link", "del", n.hostVeth]);
    }
    await run(["ip", "link", "del", this.bridge]);
    rmSync(this.dir, { recursive: true, force: true });
    this.cleaned = true;
    live.delete(this);
    this.log(`lab ${this.suffix}: cleaned up`);
  }

  /** Synchronous last-resort teardown for process exit (no awaiting possible there). */
  cleanupSync(): void {
    if (this.cleaned) return;
    for (const p of this.procs) killGroup(p.pid, "SIGKILL");
    for (const s of this.stun) s.close();
    for (const n of this.nodes) {
      const pids = Bun.spawnSync(["ip", "netns", "pids", n.netns]).stdout.toString().split(/\s+/).filter(Boolean);
      for (const pid of pids) killPid(Number(pid), "SIGKILL");
    }
    // Give the kernel a moment to reap, so the namespaces are really released.
    Bun.spawnSync(["sleep", "0.2"]);
    for (const n of this.nodes) {
      Bun.spawnSync(["ip", "netns", "del", n.netns]);
      Bun.spawnSync(["ip", "link", "del", n.hostVeth]);
    }
    Bun.spawnSync(["ip", "link", "del", this.bridge]);
    rmSync(this.dir, { recursive: true, force: true });
    this.cleaned = true;
    live.delete(this);
  }
}
