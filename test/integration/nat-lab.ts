/**
 * NAT lab for the nat-*.test.ts suites (root, real kernel). Everything lives in namespaces the
 * lab creates (per-run suffix) and removes in teardown(); addresses are TEST-NETs and RFC 1918
 * ranges that exist only inside those namespaces.
 *
 *   site A 192.168.1.2 ─ rA (masquerade)             ─┐
 *   site B 192.168.2.2 ─ rB (masquerade)             ─┤ core: bridge 198.51.100.1/24,
 *   site C 192.168.3.2 ─ rS (masquerade fully-random)─┤ routes to 203.0.113.0/24 ─ stun ns:
 *   public P 198.51.100.40 (no NAT)                  ─┘   stund -h 203.0.113.10 -a 203.0.113.20
 *
 * Routers: WAN 198.51.100.11/.12/.13, SNAT with nftables (`masquerade` = endpoint-independent
 * mapping, `masquerade fully-random` = symmetric) and `ct state new drop` for unsolicited
 * inbound on the WAN (forward and input). The STUN servers are reachable from the sites only
 * through their routers.
 */
import { Netns, run } from "../helpers/netns.ts";

export const STUN_IP1 = "203.0.113.10";
export const STUN_IP2 = "203.0.113.20";
export const STUN_SERVERS = [`${STUN_IP1}:3478`, `${STUN_IP2}:3478`];

/** One NATed site. */
export interface Site {
  name: "A" | "B" | "C";
  ns: Netns;
  router: Netns;
  /** Site host address. */
  lanIp: string;
  /** Router WAN address (current). */
  wanIp: string;
}

export interface Lab {
  core: Netns;
  stun: Netns;
  sites: Record<"A" | "B" | "C", Site>;
  pub: Netns;
  pubIp: string;
  stundPid: number;
  /** Every namespace, for teardown. */
  all: Netns[];
}

async function must(argv: string[]): Promise<string> {
  const r = await run(argv);
  if (r.code !== 0) throw new Error(`${argv.join(" ")} → ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** `nft -f -` inside `ns`. */
export async function nft(ns: Netns, script: string): Promise<void> {
  const p = Bun.spawn(["ip", "netns", "exec", ns.name, "nft", "-f", "-"], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  p.stdin.write(script);
  await p.stdin.end();
  const [code, err] = await Promise.all([p.exited, new Response(p.stderr).text()]);
  if (code !== 0) throw new Error(`nft in ${ns.name}: ${err.trim()}\n${script}`);
}

function natRules(symmetric: boolean): string {
  return `table ip natlab {
  chain nat_post { type nat hook postrouting priority srcnat; policy accept; oifname "wan" masquerade${symmetric ? " fully-random" : ""}; }
  chain filter_fwd { type filter hook forward priority filter; policy accept; iifname "wan" ct state new drop; }
  chain filter_in { type filter hook input priority filter; policy accept; iifname "wan" ct state new drop; }
}
`;
}

async function sysctl(ns: Netns, kv: string): Promise<void> {
  await must(["ip", "netns", "exec", ns.name, "sysctl", "-qw", kv]);
}

/** Builds the lab; on any failure tears down what exists and rethrows. */
export async function buildLab(): Promise<Lab> {
  const all: Netns[] = [];
  const mk = async (p: string) => {
    const n = await Netns.create(p);
    all.push(n);
    return n;
  };
  let stundPid = 0;
  try {
    const core = await mk("pxn-core");
    const stun = await mk("pxn-stun");
    const pub = await mk("pxn-pub");
    await core.ip("link", "add", "br0", "type", "bridge");
    await core.ip("addr", "add", "198.51.100.1/24", "dev", "br0");
    await core.ip("link", "set", "br0", "up");
    await sysctl(core, "net.ipv4.ip_forward=1");

    // STUN server segment, routed by core.
    await must(["ip", "link", "add", "stun", "netns", core.name, "type", "veth", "peer", "name", "eth0", "netns", stun.name]);
    await core.ip("addr", "add", "203.0.113.1/24", "dev", "stun");
    await core.ip("link", "set", "stun", "up");
    await stun.ip("addr", "add", `${STUN_IP1}/24`, "dev", "eth0");
    await stun.ip("addr", "add", `${STUN_IP2}/24`, "dev", "eth0");
    await stun.ip("link", "set", "eth0", "up");
    await stun.ip("route", "add", "default", "via", "203.0.113.1");

    const wanPort = async (ns: Netns, port: string, ip: string) => {
      await must(["ip", "link", "add", port, "netns", core.name, "type", "veth", "peer", "name", "wan", "netns", ns.name]);
      await core.ip("link", "set", port, "master", "br0", "up");
      await ns.ip("addr", "add", `${ip}/24`, "dev", "wan");
      await ns.ip("link", "set", "wan", "up");
      await ns.ip("route", "add", "default", "via", "198.51.100.1");
    };
    const pubIp = "198.51.100.40";
    await wanPort(pub, "pP", pubIp);

    const sites = {} as Record<"A" | "B" | "C", Site>;
    for (const [name, i, symmetric] of [["A", 1, false], ["B", 2, false], ["C", 3, true]] as const) {
      const router = await mk(`pxn-r${name.toLowerCase()}`);
      const ns = await mk(`pxn-s${name.toLowerCase()}`);
      const wanIp = `198.51.100.1${i}`;
      await wanPort(router, `p${name}`, wanIp);
      // Keep the remaining address when the primary one is deleted (rebinding test).
      await sysctl(router, "net.ipv4.conf.wan.promote_secondaries=1");
      await sysctl(router, "net.ipv4.ip_forward=1");
      await must(["ip", "link", "add", "lan", "netns", router.name, "type", "veth", "peer", "name", "eth0", "netns", ns.name]);
      await router.ip("addr", "add", `192.168.${i}.1/24`, "dev", "lan");
      await router.ip("link", "set", "lan", "up");
      const lanIp = `192.168.${i}.2`;
      await ns.ip("addr", "add", `${lanIp}/24`, "dev", "eth0");
      await ns.ip("link", "set", "eth0", "up");
      await ns.ip("route", "add", "default", "via", `192.168.${i}.1`);
      await nft(router, natRules(symmetric));
      sites[name] = { name, ns, router, lanIp, wanIp };
    }

    const stund = Bun.spawn(["ip", "netns", "exec", stun.name, "stund", "-h", STUN_IP1, "-a", STUN_IP2], { stdout: "ignore", stderr: "ignore" });
    stundPid = stund.pid;
    // stund binds quickly; wait until its sockets exist.
    const deadline = Date.now() + 5000;
    for (;;) {
      const ss = await run(["ip", "netns", "exec", stun.name, "ss", "-Hlun"]);
      if (ss.stdout.includes(`${STUN_IP2}:3478`) && ss.stdout.includes(`${STUN_IP1}:3478`)) break;
      if (Date.now() > deadline) throw new Error(`stund did not bind: ${ss.stdout}${ss.stderr}`);
      await Bun.sleep(50);
    }
    return { core, stun, sites, pub, pubIp, stundPid, all };
  } catch (err) {
    if (stundPid) killPid(stundPid);
    await Promise.all(all.map((n) => n.remove()));
    throw err;
  }
}

/** SIGKILL by PID, ignoring "no such process". */
export function killPid(pid: number | null | undefined): void {
  if (!pid) return;
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    /* already gone */
  }
}

/** Stops stund and deletes every namespace (never throws). */
export async function teardownLab(lab: Lab | undefined): Promise<void> {
  if (!lab) return;
  killPid(lab.stundPid);
  await Promise.all(lab.all.map((n) => n.remove()));
}

/**
 * NAT rebinding as an ISP renumbering does it: the router's WAN address changes. Deleting the
 * old address makes the kernel drop every conntrack entry masqueraded to it, so the next
 * packet from the site gets a new mapping on the new address.
 */
export async function renumberWan(site: Site, newIp: string): Promise<void> {
  await site.router.ip("addr", "add", `${newIp}/24`, "dev", "wan");
  await site.router.ip("addr", "del", `${site.wanIp}/24`, "dev", "wan");
  await site.router.ip("route", "replace", "default", "via", "198.51.100.1");
  site.wanIp = newIp;
}
