/**
 * Idle RSS and CPU of the COMPILED agent (`dist/plexd up`) holding 100 peers, against an idle
 * compiled Bun binary (a `setInterval(() => {}, 1e9)` script built with the same
 * `bun build --compile` flags as build/compile) sampled over the same window.
 *
 * Lab (all created here, removed at the end, processes killed by PID):
 *   netns `pxidc-<sfx>` runs `dist/plexd-cp serve --tls` on 192.0.2.1 (a veth end inside it);
 *   netns `pxida-<sfx>` runs `dist/plexd up` (userspace backend, wireguard-go) on 192.0.2.2.
 *   A helper (this file re-run with `--register-child` inside the CP namespace) creates an
 *   allow-all policy, registers 100 peer nodes through `/v1/register` (keys only, no agents) and
 *   makes the agent's bootstrap token. The CP's liveness interval is 1 h so the keyless peers
 *   do not go `unreachable`/`offline` (which would send events) during the window.
 *
 * Agent settings are production defaults (heartbeat 30 s, reconcile 60 s, journal, policy on)
 * except: NAT traversal off (no STUN traffic leaves the lab), paths under a temp dir.
 * Sampling: every second, /proc/<pid>/status VmRSS and /proc/<pid>/stat utime+stime of the
 * agent, its wireguard-go child and the baseline.
 *
 *   node_modules/.bin/bun bench/agent-idle.ts [--duration 60] [--peers 100] [--settle 5] [--agent-bin PATH] [--cp-bin PATH] [--smaps] [--strace]
 */
import { generateKeyPairSync } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUN, childrenOf, commOf, flag, hasFlag, killPid, median, Proc, ROOT, sampleProc, sh, sleep, suffix, waitFor, type ProcSample } from "./lib.ts";

const DURATION_S = Number(flag("duration", "60"));
const PEERS = Number(flag("peers", "100"));
const SETTLE_S = Number(flag("settle", "5"));
// --agent-bin: compare another build (e.g. a copy of the previous dist/) in the same lab.
const AGENT_BIN = flag("agent-bin", join(ROOT, "dist/plexd"));
const CP_BIN = flag("cp-bin", join(ROOT, "dist/plexd-cp"));

// ---------------------------------------------------------------------------------------------
// Registration helper (runs inside the CP namespace)

async function registerChild(): Promise<void> {
  const url = flag("url", "");
  const token = flag("admin-token", "");
  const ca = readFileSync(flag("ca", ""), "utf8");
  const call = async (method: string, path: string, bearer: string, body?: unknown) => {
    const res = await fetch(url + path, {
      method,
      headers: { authorization: `Bearer ${bearer}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      tls: { ca },
    } as RequestInit);
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return JSON.parse(text) as Record<string, unknown>;
  };
  await call("PUT", "/admin/policies", token, [{ id: "allow-all", rules: [{ src: "*", dst: "*", action: "allow" }] }]);
  const newToken = async () => (await call("POST", "/admin/tokens", token, { ttl: "1h" })).token as string;
  const n = Number(flag("count", "100"));
  for (let i = 0; i < n; i++) {
    const t = await newToken();
    const { publicKey } = generateKeyPairSync("x25519");
    const public_key = Buffer.from((publicKey.export({ format: "jwk" }) as { x: string }).x, "base64url").toString("base64");
    await call("POST", "/v1/register", t, { token: t, public_key, hostname: `idle-peer-${i}` });
  }
  console.log(JSON.stringify({ agent_token: await newToken(), registered: n }));
}

/** Mappings of `pid` grouped by name (file path or [heap]/anon), largest Rss first. */
function smapsTop(pid: number, n = 8): Array<{ name: string; rss: number }> {
  const by = new Map<string, number>();
  let name = "";
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) name = head[1] || "[anon]";
    else {
      const m = /^Rss:\s+(\d+) kB/.exec(line);
      if (m) by.set(name, (by.get(name) ?? 0) + Number(m[1]));
    }
  }
  return [...by.entries()].map(([k, v]) => ({ name: k, rss: v })).sort((a, b) => b.rss - a.rss).slice(0, n);
}

// ---------------------------------------------------------------------------------------------
// Main

interface Series {
  name: string;
  pid: number;
  samples: ProcSample[];
}

function summary(s: Series, seconds: number): { rssMed: number; rssMax: number; anonMed: number; fileMed: number; cpuSec: number; perMin: number } {
  const rss = s.samples.map((x) => x.rssKiB);
  const anonMed = median(s.samples.map((x) => x.anonKiB));
  const fileMed = median(s.samples.map((x) => x.fileKiB));
  const cpu = s.samples.length >= 2 ? s.samples[s.samples.length - 1]!.cpuSec - s.samples[0]!.cpuSec : Number.NaN;
  return { rssMed: median(rss), rssMax: Math.max(...rss), anonMed, fileMed, cpuSec: cpu, perMin: (cpu / seconds) * 60 };
}

const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("agent-idle needs root (network namespaces, wireguard-go)");
  for (const b of [AGENT_BIN, CP_BIN]) if (!existsSync(b)) throw new Error(`${b} missing: run \`bash build/compile\``);
  for (const b of ["ip", "wireguard-go", "wg", "openssl"]) if (!Bun.which(b)) throw new Error(`${b} not found`);

  const sfx = suffix();
  const nsCp = `pxidc-${sfx}`;
  const nsAg = `pxida-${sfx}`;
  const vethCp = `pxic${sfx}`;
  const vethAg = `pxia${sfx}`;
  const ifname = `pxidw${sfx}`;
  const dir = mkdtempSync(join(tmpdir(), `plexd-bench-idle-${sfx}-`));
  const procs: Proc[] = [];
  const extraPids: number[] = [];
  try {
    // Baseline binary: same compile flags as build/compile.
    writeFileSync(join(dir, "idle.ts"), "setInterval(() => {}, 1e9);\n");
    sh([BUN, "build", "--compile", "--bytecode", "--minify", "--format=esm", "--target=bun", "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig", join(dir, "idle.ts"), "--outfile", join(dir, "idle")]);

    // Lab: two namespaces joined by a veth pair.
    sh(["ip", "netns", "add", nsCp]);
    sh(["ip", "netns", "add", nsAg]);
    sh(["ip", "link", "add", vethCp, "type", "veth", "peer", "name", vethAg]);
    sh(["ip", "link", "set", vethCp, "netns", nsCp]);
    sh(["ip", "link", "set", vethAg, "netns", nsAg]);
    for (const [ns, veth, ip] of [
      [nsCp, vethCp, "192.0.2.1/30"],
      [nsAg, vethAg, "192.0.2.2/30"],
    ] as const) {
      sh(["ip", "-n", ns, "link", "set", "lo", "up"]);
      sh(["ip", "-n", ns, "addr", "add", ip, "dev", veth]);
      sh(["ip", "-n", ns, "link", "set", veth, "up"]);
    }

    // Control plane (compiled) inside its namespace. `ip netns exec` execs: the PID is the CP's.
    const cp = new Proc(
      Bun.spawn(["ip", "netns", "exec", nsCp, CP_BIN, "serve", "--listen", "192.0.2.1:8443", "--db", join(dir, "cp", "cp.db"), "--tls", "--heartbeat-interval", "1h"], {
        stdout: "pipe",
        stderr: "pipe",
      }),
    );
    procs.push(cp);
    const line = await waitFor("CP ready line", () => (cp.out.includes("\n") ? cp.out.split("\n")[0] : undefined), 30_000, 50).catch((err) => {
      throw new Error(`${(err as Error).message}\nCP stderr: ${cp.err}`);
    });
    const ready = JSON.parse(line) as { url: string; admin_token: string; ca_file: string };

    const t0 = performance.now();
    const reg = new Proc(
      Bun.spawn(
        ["ip", "netns", "exec", nsCp, BUN, import.meta.path, "--register-child", "--url", ready.url, "--admin-token", ready.admin_token, "--ca", ready.ca_file, "--count", String(PEERS)],
        { stdout: "pipe", stderr: "pipe" },
      ),
    );
    procs.push(reg);
    if ((await reg.exited) !== 0) throw new Error(`registration helper failed: ${reg.err}`);
    const { agent_token } = JSON.parse(reg.out.trim().split("\n").pop()!) as { agent_token: string };
    const regMs = performance.now() - t0;

    // Agent config: defaults except NAT traversal (off) and paths.
    const base = join(dir, "agent");
    mkdirSync(base, { recursive: true });
    const tokenFile = join(base, "bootstrap-token");
    writeFileSync(tokenFile, agent_token + "\n", { mode: 0o600 });
    const configPath = join(base, "config.yaml");
    writeFileSync(
      configPath,
      [
        "api:",
        `  url: ${ready.url}`,
        `  ca_file: ${ready.ca_file}`,
        `data_dir: ${join(base, "data")}`,
        "log_level: info",
        "log_format: json",
        `hostname: idle-agent-${sfx}`,
        "mesh:",
        `  interface: ${ifname}`,
        "  backend: userspace",
        "  listen_port: 51820",
        "token:",
        `  file: ${tokenFile}`,
        "  metadata: false",
        "nat_traversal:",
        "  enabled: false",
        "actions:",
        `  socket: ${join(base, "plexd.sock")}`,
        "",
      ].join("\n"),
    );
    const agent = new Proc(Bun.spawn(["ip", "netns", "exec", nsAg, AGENT_BIN, "up", "--config", configPath], { stdout: "pipe", stderr: "pipe" }));
    procs.push(agent);
    const tStart = performance.now();
    const peersNow = (): number => {
      const r = sh(["ip", "netns", "exec", nsAg, "wg", "show", ifname, "peers"], true);
      return r.code === 0 ? r.out.trim().split("\n").filter(Boolean).length : -1;
    };
    await waitFor(
      `agent with ${PEERS} peers configured`,
      () => {
        if (!agent.running) throw new Error(`agent exited: ${agent.err.slice(-2000)}`);
        return peersNow() === PEERS;
      },
      60_000,
      200,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}\nagent stderr (tail): ${agent.err.slice(-3000)}`);
    });
    const upMs = performance.now() - tStart;
    const wgPid = childrenOf(agent.pid).find((p) => commOf(p) === "wireguard-go");
    if (wgPid === undefined) throw new Error("no wireguard-go child of the agent found");
    extraPids.push(wgPid);

    const idle = new Proc(Bun.spawn([join(dir, "idle")], { stdout: "ignore", stderr: "pipe" }));
    procs.push(idle);

    await sleep(SETTLE_S * 1000);
    const series: Series[] = [
      { name: "agent (dist/plexd up)", pid: agent.pid, samples: [] },
      { name: "wireguard-go (agent's child)", pid: wgPid, samples: [] },
      { name: "baseline: idle compiled Bun", pid: idle.pid, samples: [] },
    ];
    const sampleAll = () => {
      for (const s of series) {
        const x = sampleProc(s.pid);
        if (x === undefined) throw new Error(`${s.name} (pid ${s.pid}) disappeared during sampling`);
        s.samples.push(x);
      }
    };
    sampleAll();
    const w0 = performance.now();
    for (let i = 1; i <= DURATION_S; i++) {
      await sleep(Math.max(0, w0 + i * 1000 - performance.now()));
      sampleAll();
    }
    const secs = (performance.now() - w0) / 1000;
    const peersEnd = peersNow();

    const [ag, wg, bl] = series.map((s) => summary(s, secs)) as [ReturnType<typeof summary>, ReturnType<typeof summary>, ReturnType<typeof summary>];
    const targetKiB = 30 * 1024 + 64 * PEERS;
    const stamp = existsSync(join(ROOT, "dist/.stamp")) ? readFileSync(join(ROOT, "dist/.stamp"), "utf8").trim() : "?";
    console.log(`agent-idle: ${PEERS} peers, ${secs.toFixed(1)} s window after ${SETTLE_S} s settle, sampled every 1 s (dist stamp: ${stamp})`);
    console.log(`setup: ${PEERS} registrations ${(regMs / 1000).toFixed(1)} s; agent start → ${PEERS} peers on ${ifname} ${(upMs / 1000).toFixed(1)} s; peers at end ${peersEnd}`);
    console.log(["process", "RSS median", "RSS max", "anon / file-backed", "CPU-s in window", "CPU-s/min"].join("\t"));
    for (const [s, x] of [
      [series[0]!, ag],
      [series[1]!, wg],
      [series[2]!, bl],
    ] as const) {
      console.log([`${s.name} pid ${s.pid}`, mib(x.rssMed), mib(x.rssMax), `${mib(x.anonMed)} / ${mib(x.fileMed)}`, x.cpuSec.toFixed(2), x.perMin.toFixed(3)].join("\t"));
    }
    // Where the agent's CPU went over time: CPU ticks per 10 s slice (1 tick = 10 ms).
    const a = series[0]!.samples;
    const slices: string[] = [];
    for (let i = 10; i < a.length; i += 10) slices.push(String(Math.round((a[i]!.cpuSec - a[i - 10]!.cpuSec) * 100)));
    console.log(`agent CPU ticks (10 ms) per 10 s slice: ${slices.join(" ")}`);
    const above = ag.rssMed - bl.rssMed;
    console.log(`agent RSS / baseline RSS: ${(ag.rssMed / bl.rssMed).toFixed(2)}x; agent above bare runtime: ${mib(above)}`);
    console.log(
      `RSS target 30 MiB + 64 KiB × ${PEERS} = ${mib(targetKiB)}: absolute agent ${mib(ag.rssMed)} ${ag.rssMed <= targetKiB ? "OK" : "OVER"}; ` +
        `above bare runtime ${mib(above)} ${above <= targetKiB ? "OK" : "OVER"} (the bare runtime alone is ${mib(bl.rssMed)})`,
    );
    console.log(`CPU target ≤ 0.1 CPU-s/min: agent ${ag.perMin.toFixed(3)} ${ag.perMin <= 0.1 ? "OK" : "OVER"} (baseline ${bl.perMin.toFixed(3)}, agent − baseline ${(ag.perMin - bl.perMin).toFixed(3)})`);
    console.log(`wireguard-go (separate process, not in the agent figure): RSS ${mib(wg.rssMed)}, ${wg.perMin.toFixed(3)} CPU-s/min`);
    if (hasFlag("smaps")) {
      // Where the agent's RSS lives: top mappings by Rss (/proc/<pid>/smaps).
      const rows = smapsTop(agent.pid);
      console.log("agent RSS by mapping (top 8, KiB): " + rows.map((r) => `${r.name} ${r.rss}`).join("; "));
    }
    if (hasFlag("strace")) {
      // Syscalls of the idle agent (all threads) over 20 s: what still wakes it up.
      const st = Bun.spawn(["strace", "-f", "-c", "-p", String(agent.pid)], { stdout: "pipe", stderr: "pipe" });
      await sleep(20_000);
      killPid(st.pid, "SIGINT");
      await st.exited;
      console.log(`agent syscalls over 20 s (strace -c -f):\n${(await new Response(st.stderr).text()).trim()}`);
    }
    const warnLines = agent.err.split("\n").filter((l) => /"level":"(warn|error)"/.test(l));
    if (warnLines.length > 0) console.log(`agent warn/error lines during run: ${warnLines.length}; first: ${warnLines[0]!.slice(0, 300)}`);
  } finally {
    for (const p of procs.reverse()) await p.kill(5_000).catch(() => undefined);
    for (const pid of extraPids) killPid(pid, "SIGKILL");
    sh(["ip", "netns", "del", nsAg], true);
    sh(["ip", "netns", "del", nsCp], true);
    const sock = `/var/run/wireguard/${ifname}.sock`;
    if (existsSync(sock)) rmSync(sock, { force: true });
    rmSync(dir, { recursive: true, force: true });
  }
}

if (hasFlag("register-child")) await registerChild();
else await main();
