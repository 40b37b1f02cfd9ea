/**
 * `npm run demo`: the reference control plane plus three plexd agents, each in its own network
 * and mount namespace on one bridge (test/helpers/lab.ts). Waits until every tunnel is up, prints
 * the peer table and a ping matrix over mesh IPs, then refreshes both every 10 s until Ctrl-C,
 * and cleans everything up.
 *
 *   bun run test/e2e/demo.ts [--once] [--nodes N] [--interval S]
 *
 * `--once` (or PLEXD_DEMO_ONCE=1): print once and exit 0 when every pair pings, 1 otherwise.
 * Needs root and the compiled binaries (dist/plexd, dist/plexd-cp): `npm run setup`.
 */
import { Lab, type CpNode, type LabNode } from "../helpers/lab.ts";
import { age, WaitTimeoutError } from "../helpers/lab-util.ts";

interface Args {
  once: boolean;
  nodes: number;
  intervalS: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { once: /^(1|true|yes)$/i.test(process.env.PLEXD_DEMO_ONCE ?? ""), nodes: 3, intervalS: 10 };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i]!;
    const num = (min: number, max: number) => {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < min || n > max) usage(`${f} needs an integer ${min}–${max}`);
      return n;
    };
    if (f === "--once") a.once = true;
    else if (f === "--nodes") a.nodes = num(2, 19);
    else if (f === "--interval") a.intervalS = num(1, 3600);
    else if (f === "-h" || f === "--help") usage();
    else usage(`unknown argument ${f}`);
  }
  return a;
}

function usage(problem?: string): never {
  if (problem) console.error(`demo: ${problem}`);
  console.error("usage: bun run test/e2e/demo.ts [--once] [--nodes N] [--interval SECONDS]");
  process.exit(problem ? 2 : 0);
}

const tty = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code: string, s: string) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
const green = (s: string) => paint("32", s);
const red = (s: string) => paint("31", s);
const bold = (s: string) => paint("1", s);
const dim = (s: string) => paint("2", s);

const t0 = Date.now();
const note = (line: string) => console.error(dim(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${line}`));

/** Pads to width, counting code points (✓/✗ are one column). */
function pad(s: string, w: number): string {
  const visible = s.replace(/\x1b\[[0-9;]*m/g, "");
  return s + " ".repeat(Math.max(0, w - [...visible].length));
}

function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, [...c.replace(/\x1b\[[0-9;]*m/g, "")].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : pad(c, widths[i]!))).join("  ")).join("\n");
}

function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 ** 2).toFixed(1)} MiB`;
}

/** Peer table of every node, read from the kernel side (`wg show plexd0 dump` in the node). */
async function peerTable(lab: Lab, nodes: LabNode[]): Promise<string> {
  const cpNodes = await lab.cpNodes().catch(() => [] as CpNode[]);
  const byKey = new Map(cpNodes.map((c) => [c.public_key, c]));
  const out: string[] = [];
  for (const n of nodes) {
    const reg = cpNodes.find((c) => c.hostname === n.name);
    const head = `${bold(n.name)}  ${reg ? `${reg.id}  mesh ${reg.mesh_ip}` : red("not registered")}  endpoint ${n.addr}:51820  ${
      lab.agentPid(n) ? `agent pid ${lab.agentPid(n)}` : red("agent not running")
    }`;
    out.push(head);
    const dump = await lab.wgDump(n);
    if (!dump) {
      out.push(`  ${red(`no ${n.iface} interface`)}`);
      continue;
    }
    const rows = [["  PEER", "MESH_IP", "ENDPOINT", "HANDSHAKE", "RX", "TX"]];
    for (const p of dump.peers) {
      const c = byKey.get(p.publicKey);
      rows.push([
        `  ${c ? `${c.hostname} (${c.id})` : `${p.publicKey.slice(0, 10)}…`}`,
        p.allowedIps.map((a) => a.replace(/\/32$/, "")).join(",") || "-",
        p.endpoint ?? "-",
        p.latestHandshake ? age(p.latestHandshake) : red("never"),
        fmtBytes(p.rxBytes),
        fmtBytes(p.txBytes),
      ]);
    }
    out.push(dump.peers.length === 0 ? `  ${dim("(no peers)")}` : table(rows));
  }
  return out.join("\n");
}

/** Ping matrix over mesh IPs; returns the text and whether every pair answered. */
async function pingMatrix(lab: Lab, nodes: LabNode[]): Promise<{ text: string; allOk: boolean }> {
  for (const n of nodes) if (!n.meshIp) await lab.registration(n).catch(() => undefined);
  const results = await lab.pingMatrix(nodes, 1);
  const rows = [["FROM \\ TO", ...nodes.map((n) => `${n.name} ${n.meshIp ?? "?"}`)]];
  for (const from of nodes) {
    const row = [from.name];
    for (const to of nodes) {
      if (from === to) {
        row.push(dim("—"));
        continue;
      }
      const r = results.find((x) => x.from === from && x.to === to)!.result;
      row.push(r.ok ? green(`✓ ${r.rttMs!.toFixed(2)} ms`) : red("✗"));
    }
    rows.push(row);
  }
  return { text: table(rows), allOk: results.every((r) => r.result.ok) };
}

/** One line per node from `plexd status --json` (best effort: the agent's own view). */
async function statusLines(lab: Lab, nodes: LabNode[]): Promise<string> {
  const lines = await Promise.all(
    nodes.map(async (n) => {
      if (!lab.agentPid(n)) return `${n.name}: ${red("agent not running")}`;
      const r = await lab.plexdJson(n, ["status"], { timeoutMs: 5000 }).catch(() => undefined);
      const d = r?.doc?.data;
      if (!d) return `${n.name}: ${dim(`status unavailable (exit ${r?.code ?? "?"})`)}`;
      return `${n.name}: phase ${d.phase ?? "?"}, control plane ${d.control_plane?.connectivity ?? "?"}, sse ${d.sse?.state ?? "?"} (${
        d.sse?.reconnects_total ?? "?"
      } reconnects), peers ${d.peers?.up ?? "?"}/${d.peers?.total ?? "?"} up, health ${d.health?.status ?? "?"}`;
    }),
  );
  return lines.join("\n");
}

async function report(lab: Lab, nodes: LabNode[]): Promise<boolean> {
  const peers = await peerTable(lab, nodes);
  const matrix = await pingMatrix(lab, nodes);
  const status = await statusLines(lab, nodes);
  console.log(`\n${bold(`── peers (${new Date().toISOString()}) ──`)}\n${peers}`);
  console.log(`\n${bold("── ping matrix over mesh IPs ──")}\n${matrix.text}`);
  console.log(`\n${bold("── agents ──")}\n${status}`);
  console.log(matrix.allOk ? green("\nall pairs reachable") : red("\nsome pairs unreachable"));
  return matrix.allOk;
}

let stopping = false;

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const why = await Lab.unavailable();
  if (why) {
    console.error(`demo: cannot run: ${why}`);
    return 1;
  }
  // Ctrl-C: clean up and exit 0 (the lab's exit hook still covers crashes). Installed before the
  // lab exists so no signal can slip between its creation and this handler.
  let lab: Lab | undefined;
  const onSignal = (sig: string) => {
    if (stopping) return;
    stopping = true;
    note(`${sig}: stopping agents and control plane, removing namespaces`);
    void (lab ? lab.cleanup() : Promise.resolve()).then(
      () => process.exit(0),
      (e) => {
        console.error(e);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  lab = await Lab.create({ log: note, signals: false });
  if (stopping) {
    await lab.cleanup();
    return 0;
  }

  try {
    await lab.startCp();
    const nodes: LabNode[] = [];
    for (let i = 0; i < args.nodes; i++) nodes.push(await lab.addNode());
    for (const n of nodes) lab.startAgent(n);
    note(`waiting for ${args.nodes} agents to register and every tunnel to come up…`);
    // An agent that dies early ends the wait at once, with its log.
    const died = (async () => {
      for (;;) {
        const dead = nodes.find((n) => n.agent?.exit);
        if (dead) return dead;
        await Bun.sleep(200);
      }
    })();
    const outcome = await Promise.race([
      lab.waitMesh(nodes, 90_000).then((ms) => ({ ok: true as const, ms })),
      died.then((n) => ({ ok: false as const, dead: n })),
    ]).catch((e: unknown) => ({ ok: false as const, error: e }));
    if (outcome.ok) note(`mesh up after ${(outcome.ms / 1000).toFixed(1)} s`);
    else if ("dead" in outcome) {
      const n = outcome.dead;
      console.error(red(`agent of ${n.name} exited (code ${n.agent?.exit?.code}, signal ${n.agent?.exit?.signal}); log tail:`));
      console.error(await lab.agentLog(n, 3000));
    } else {
      const e = outcome.error;
      console.error(red(`mesh not complete: ${e instanceof WaitTimeoutError || e instanceof Error ? e.message : String(e)}`));
    }
    if (stopping) return 0;
    const ok = await report(lab, nodes);
    if (args.once) {
      await lab.cleanup();
      return ok ? 0 : 1;
    }
    console.log(
      dim(
        `\nnamespaces: ${nodes.map((n) => n.netns).join(", ")} — look inside with e.g.\n  nsenter -t ${lab.agentPid(nodes[0]!) ?? "<agent pid>"} -m -n wg show\n` +
          `refreshing every ${args.intervalS} s; Ctrl-C stops and cleans up`,
      ),
    );
    while (!stopping) {
      await Bun.sleep(args.intervalS * 1000);
      if (stopping) break;
      await report(lab, nodes);
    }
    return 0;
  } catch (e) {
    console.error(red(`demo failed: ${e instanceof Error ? e.message : String(e)}`));
    await lab.cleanup();
    return 1;
  }
}

const code = await main();
// When a signal started the cleanup, its handler exits once that is done.
if (!stopping) process.exit(code);
