/**
 * Lab for agent integration tests: one network namespace per agent, joined to the host by a
 * veth pair with a per-run /30 out of 192.0.2.0/24; the real reference CP (TLS, its CA handed
 * to the agent as `api.ca_file` because `http://` is only allowed for loopback) listens on the
 * host end. The agent runs from source inside the namespace with the userspace backend.
 *
 * Everything carries a per-run suffix; `cleanup()` kills every process by PID, deletes the
 * namespace (the veth pair goes with it), removes temp dirs and leftover UAPI sockets.
 */
import { randomBytes, generateKeyPairSync } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Proc, sh, waitFor } from "../helpers/proc.ts";

export { Proc, sh, waitFor };

export const ROOT = resolve(import.meta.dir, "../..");
export const BUN = join(ROOT, "node_modules/.bin/bun");

/** True when the lab can run here (root, iproute2, wireguard-go, wg, openssl). */
export function labAvailable(): boolean {
  return process.getuid?.() === 0 && ["ip", "wireguard-go", "wg", "openssl"].every((b) => Bun.which(b) !== null);
}

/** The control plane on the host end of the veth. */
export interface LabCp {
  url: string;
  adminToken: string;
  caFile: string;
  proc: Proc;
}

/** One lab: a namespace + veth + CP. */
export class Lab {
  readonly sfx = randomBytes(3).toString("hex");
  readonly ns = `pxag-${this.sfx}`;
  readonly vethHost = `pxh${this.sfx}`;
  readonly vethNs = `pxn${this.sfx}`;
  readonly dir = mkdtempSync(join(tmpdir(), `plexd-agent-${this.sfx}-`));
  readonly hostIp: string;
  readonly nsIp: string;
  cp: LabCp | undefined;
  readonly procs: Proc[] = [];
  readonly ifnames: string[] = [];

  constructor() {
    const base = 4 * (1 + (randomBytes(1)[0]! % 62));
    this.hostIp = `192.0.2.${base + 1}`;
    this.nsIp = `192.0.2.${base + 2}`;
  }

  /** Creates namespace and veth pair with addresses. */
  setup(): void {
    sh(["ip", "netns", "add", this.ns]);
    sh(["ip", "-n", this.ns, "link", "set", "lo", "up"]);
    sh(["ip", "link", "add", this.vethHost, "type", "veth", "peer", "name", this.vethNs]);
    sh(["ip", "link", "set", this.vethNs, "netns", this.ns]);
    sh(["ip", "addr", "add", `${this.hostIp}/30`, "dev", this.vethHost]);
    sh(["ip", "link", "set", this.vethHost, "up"]);
    sh(["ip", "-n", this.ns, "addr", "add", `${this.nsIp}/30`, "dev", this.vethNs]);
    sh(["ip", "-n", this.ns, "link", "set", this.vethNs, "up"]);
  }

  /** Starts the reference CP (TLS) on the host end. */
  async startCp(extra: string[] = []): Promise<LabCp> {
    const p = new Proc(
      Bun.spawn([BUN, join(ROOT, "src/cp/main.ts"), "serve", "--listen", `${this.hostIp}:0`, "--db", join(this.dir, "cp", "cp.db"), "--tls", ...extra], {
        stdout: "pipe",
        stderr: "pipe",
        cwd: ROOT,
      }),
    );
    this.procs.push(p);
    const line = await waitFor("CP ready line", () => (p.out.includes("\n") ? p.out.split("\n")[0] : undefined), 30_000, 50).catch((err) => {
      throw new Error(`${(err as Error).message}\nCP stderr: ${p.err}`);
    });
    const ready = JSON.parse(line) as { url: string; admin_token: string; ca_file: string };
    this.cp = { url: ready.url, adminToken: ready.admin_token, caFile: ready.ca_file, proc: p };
    return this.cp;
  }

  /** Admin/API call to the CP. */
  async call(method: string, path: string, opts: { token?: string; body?: unknown } = {}): Promise<{ status: number; json: any; text: string }> {
    const cp = this.cp!;
    const headers: Record<string, string> = {};
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    if (opts.body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(cp.url + path, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      tls: { ca: await Bun.file(cp.caFile).text() },
    } as RequestInit);
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, json, text };
  }

  admin(method: string, path: string, body?: unknown) {
    return this.call(method, path, { token: this.cp!.adminToken, ...(body !== undefined ? { body } : {}) });
  }

  async newToken(): Promise<string> {
    const r = await this.admin("POST", "/admin/tokens", { ttl: "10m" });
    if (r.status !== 201) throw new Error(`token create: ${r.status} ${r.text}`);
    return r.json.token as string;
  }

  /** Registers a node straight through the API (a peer for the agent under test). */
  async registerFakeNode(hostname: string): Promise<{ node_id: string; mesh_ip: string; public_key: string; nsk: string }> {
    const token = await this.newToken();
    const { publicKey } = generateKeyPairSync("x25519");
    const public_key = Buffer.from((publicKey.export({ format: "jwk" }) as { x: string }).x, "base64url").toString("base64");
    const r = await this.call("POST", "/v1/register", { token, body: { token, public_key, hostname } });
    if (r.status !== 201) throw new Error(`register: ${r.status} ${r.text}`);
    return { node_id: r.json.node_id, mesh_ip: r.json.mesh_ip, public_key, nsk: r.json.node_secret_key };
  }

  /** Writes an agent config; returns its path. */
  agentConfig(name: string, extra = ""): { configPath: string; dataDir: string; socket: string; tokenFile: string; ifname: string } {
    const base = join(this.dir, name);
    const dataDir = join(base, "data");
    const ifname = `pxw${this.sfx}${name.slice(0, 2)}`.slice(0, 15);
    this.ifnames.push(ifname);
    const socket = join(base, "plexd.sock");
    const tokenFile = join(base, "bootstrap-token");
    const yaml = [
      "api:",
      `  url: ${this.cp!.url}`,
      `  ca_file: ${this.cp!.caFile}`,
      `data_dir: ${dataDir}`,
      "log_level: debug",
      "log_format: text",
      `hostname: agent-${this.sfx}-${name}`,
      "mesh:",
      `  interface: ${ifname}`,
      "  backend: userspace",
      `  listen_port: ${40000 + (parseInt(this.sfx, 16) % 20000)}`,
      "token:",
      `  file: ${tokenFile}`,
      "  metadata: false",
      "policy:",
      "  default: allow",
      "nat_traversal:",
      "  enabled: false",
      "heartbeat:",
      "  interval: 5s",
      "reconcile:",
      "  interval: 5s",
      "shutdown:",
      "  drain_timeout: 5s",
      "actions:",
      `  socket: ${socket}`,
      extra,
    ].join("\n");
    sh(["mkdir", "-p", base]);
    const configPath = join(base, "config.yaml");
    writeFileSync(configPath, yaml + "\n");
    return { configPath, dataDir, socket, tokenFile, ifname };
  }

  /**
   * Starts `plexd up` inside the namespace: from source, or the compiled binary named by
   * `PLEXD_AGENT_BIN` (e.g. dist/plexd).
   */
  startAgent(configPath: string, env: Record<string, string> = {}): Proc {
    const bin = process.env.PLEXD_AGENT_BIN ? [resolve(ROOT, process.env.PLEXD_AGENT_BIN)] : [BUN, join(ROOT, "src/main.ts")];
    const p = new Proc(
      Bun.spawn(["ip", "netns", "exec", this.ns, ...bin, "up", "--config", configPath], {
        stdout: "pipe",
        stderr: "pipe",
        cwd: ROOT,
        env: { ...process.env, ...env },
      }),
    );
    this.procs.push(p);
    return p;
  }

  /** Runs a CLI command from source (host namespace; the socket lives in the temp dir). */
  async cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
    const p = Bun.spawn([BUN, join(ROOT, "src/main.ts"), ...args], { stdout: "pipe", stderr: "pipe", cwd: ROOT, env: { ...process.env, ...env }, timeout: 60_000 });
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    return { code, out, err };
  }

  /** `wg show <if> dump` inside the namespace, parsed peers (public key → allowed ips). */
  wgPeers(ifname: string): Map<string, { endpoint: string; allowedIps: string; keepalive: string }> {
    const r = sh(["ip", "netns", "exec", this.ns, "wg", "show", ifname, "dump"], true);
    const out = new Map<string, { endpoint: string; allowedIps: string; keepalive: string }>();
    if (r.code !== 0) return out;
    const lines = r.out.trim().split("\n").slice(1);
    for (const l of lines) {
      const f = l.split("\t");
      if (f.length >= 8) out.set(f[0]!, { endpoint: f[2]!, allowedIps: f[3]!, keepalive: f[7]! });
    }
    return out;
  }

  /** Kills everything by PID, removes namespace, temp dir and leftover UAPI sockets. */
  async cleanup(): Promise<void> {
    for (const p of this.procs.reverse()) await p.kill(3_000).catch(() => undefined);
    // wireguard-go children of a killed agent: found by their unique per-run interface name.
    for (const ifname of this.ifnames) {
      const r = sh(["pgrep", "-f", `wireguard-go -f ${ifname}$`], true);
      for (const pid of r.out.split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {
          /* gone */
        }
      }
    }
    sh(["ip", "netns", "del", this.ns], true);
    sh(["ip", "link", "del", this.vethHost], true);
    for (const ifname of this.ifnames) {
      const sock = `/var/run/wireguard/${ifname}.sock`;
      if (existsSync(sock)) rmSync(sock, { force: true });
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
