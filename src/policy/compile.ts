/**
 * The policy compiler (lifecycle.md §4.3): policies + identity + peers + options → the whole
 * `inet plexd` table. Pure and deterministic.
 *
 * Layout (per direction d ∈ in/out/fwd, family f ∈ 4/6, action a ∈ deny/allow):
 *   input   hook input   prio 0 policy accept:  iifname "<if>" jump mesh_in
 *   output  hook output  prio 0 policy accept:  oifname "<if>" jump mesh_out
 *   forward hook forward prio 0 policy accept:  iifname "<if>" jump mesh_fwd
 *                                               oifname "<if>" jump mesh_fwd
 *   mesh_d: ct state established,related accept
 *           ct state invalid drop
 *           [mesh_in] ip saddr <mesh> meta l4proto tcp th dport @access_ports counter accept
 *           <peer> @deny_d<f>            counter [log] drop     (any protocol)
 *           <peer> . l4proto . dport @deny_d<f>_svc counter [log] drop
 *           … the same with allow_… and accept …
 *           [log] counter drop|accept   (policy.default)
 * where <peer> is `ip saddr` (in), `ip daddr` (out) or `ip saddr . ip daddr` (fwd). Every
 * lookup exists whether or not its set has elements, so the chains' structure depends only
 * on the options: a policy change is an element diff. The per-packet cost is a fixed number
 * of set lookups, whatever the number of rules.
 */
import type { FwChain, FwRule, Field, Match, SetKeyType, Statement } from "../kernel/firewall-api.ts";
import { NftValueError } from "../kernel/nft-values.ts";
import { contains, disjointBoxes, formatKind, parseKind, within, type Box, type Kind, type Range } from "./ranges.ts";
import { rememberBoxes } from "./wire.ts";
import type {
  CompileNote,
  CompileOptions,
  Compiled,
  DesiredSet,
  Direction,
  PolicyRuleInput,
  PolicySet,
  RuleReport,
  Ruleset,
} from "./types.ts";

export const DEFAULT_MESH_RANGES = ["10.100.0.0/16"] as const;
export const LOG_PREFIX = "plexd-deny ";
const FULL_PORTS: Range = [0n, 65535n];

type Fam = 4 | 6;
const FAMS: readonly Fam[] = [4, 6];
const DIRS: readonly Direction[] = ["in", "out", "fwd"];
const ACTIONS = ["deny", "allow"] as const;

const ADDR_KIND: Record<Fam, Kind> = { 4: "v4", 6: "v6" };
const ADDR_TYPE: Record<Fam, SetKeyType> = { 4: "ipv4_addr", 6: "ipv6_addr" };
const SADDR: Record<Fam, Field> = { 4: "ip saddr", 6: "ip6 saddr" };
const DADDR: Record<Fam, Field> = { 4: "ip daddr", 6: "ip6 daddr" };
const ICMP: Record<Fam, bigint> = { 4: 1n, 6: 58n };

/** Set name for direction/family/action; `svc` = with protocol and port. */
export function setName(action: "deny" | "allow", dir: Direction, fam: Fam, svc: boolean): string {
  return `${action}_${dir}${fam}${svc ? "_svc" : ""}`;
}

const CHAIN: Record<Direction, string> = { in: "mesh_in", out: "mesh_out", fwd: "mesh_fwd" };

function addrFields(dir: Direction, fam: Fam): Field[] {
  return dir === "in" ? [SADDR[fam]] : dir === "out" ? [DADDR[fam]] : [SADDR[fam], DADDR[fam]];
}

function setType(dir: Direction, fam: Fam, svc: boolean): SetKeyType[] {
  const addrs: SetKeyType[] = dir === "fwd" ? [ADDR_TYPE[fam], ADDR_TYPE[fam]] : [ADDR_TYPE[fam]];
  return svc ? [...addrs, "inet_proto", "inet_service"] : addrs;
}

/** One side of a rule resolved to address ranges per family. */
type Resolved =
  | { ok: true; v4: Range[]; v6: Range[]; local: boolean }
  | { ok: false; kind: "no_match" | "skipped"; reason: string };

interface Ctx {
  ranges: Record<Fam, Range[]>;
  localId: string;
  local: { fam: Fam; ip: bigint } | null;
  peers: Map<string, { fam: Fam; ip: bigint }>;
  /** Endpoint text → resolution (rules repeat endpoints: dst "n_self" 10,000 times). */
  memo: Map<string, Resolved>;
}

const looksLikeAddress = (s: string) => /^[0-9.]+(\/\d+)?$/.test(s) || (s.includes(":") && /^[0-9a-fA-F:.]+(\/\d+)?$/.test(s));

function parseIp(s: string): { fam: Fam; ip: bigint } | null {
  for (const fam of FAMS) {
    try {
      const [lo, hi] = parseKind(ADDR_KIND[fam], s);
      if (lo === hi && !s.includes("/")) return { fam, ip: lo };
    } catch {
      // try the other family
    }
  }
  return null;
}

function resolve(end: string, ctx: Ctx): Resolved {
  let r = ctx.memo.get(end);
  if (!r) {
    r = resolveUncached(end, ctx);
    ctx.memo.set(end, r);
  }
  return r;
}

function resolveUncached(end: string, ctx: Ctx): Resolved {
  const v4: Range[] = [];
  const v6: Range[] = [];
  const add = (fam: Fam, r: Range) => (fam === 4 ? v4 : v6).push(r);
  const isLocal = (fam: Fam, r: Range) => ctx.local !== null && ctx.local.fam === fam && contains(r, ctx.local.ip);
  if (end === "*") {
    for (const fam of FAMS) for (const r of ctx.ranges[fam]) add(fam, r);
    return { ok: true, v4, v6, local: ctx.local !== null };
  }
  if (looksLikeAddress(end)) {
    for (const fam of FAMS) {
      let r: Range;
      try {
        r = parseKind(ADDR_KIND[fam], end);
      } catch (e) {
        if (e instanceof NftValueError) continue;
        throw e;
      }
      if (!ctx.ranges[fam].some((m) => within(r, m)))
        return { ok: false, kind: "skipped", reason: `${end} is outside the mesh range` };
      add(fam, r);
      return { ok: true, v4, v6, local: isLocal(fam, r) };
    }
    return { ok: false, kind: "skipped", reason: `${JSON.stringify(end)} is not an address or CIDR` };
  }
  if (end === ctx.localId && ctx.local) {
    add(ctx.local.fam, [ctx.local.ip, ctx.local.ip]);
    return { ok: true, v4, v6, local: true };
  }
  const peer = ctx.peers.get(end);
  if (!peer) return { ok: false, kind: "no_match", reason: `unknown node id ${end}` };
  add(peer.fam, [peer.ip, peer.ip]);
  return { ok: true, v4, v6, local: false };
}

/** Protocol/port of a rule → the key tail [proto range, port range] per family, or null for "any". */
type Service = { ok: true; tail: null | Readonly<Record<Fam, Box>> } | { ok: false; reason: string };

function service(protocol: string, port: number): Service {
  if (!Number.isInteger(port) || port < 0 || port > 65535) return { ok: false, reason: `bad port ${port}` };
  const p = protocol.toLowerCase();
  if (p === "" || p === "any") {
    if (port !== 0) return { ok: false, reason: "a port needs protocol tcp or udp" };
    return { ok: true, tail: null };
  }
  if (p === "icmp") {
    if (port !== 0) return { ok: false, reason: "icmp has no ports" };
    return { ok: true, tail: { 4: [[ICMP[4], ICMP[4]], FULL_PORTS], 6: [[ICMP[6], ICMP[6]], FULL_PORTS] } };
  }
  const num = p === "tcp" ? 6n : p === "udp" ? 17n : undefined;
  if (num === undefined) return { ok: false, reason: `unknown protocol ${JSON.stringify(protocol)}` };
  const ports: Range = port === 0 ? FULL_PORTS : [BigInt(port), BigInt(port)];
  const tail: Box = [[num, num], ports];
  return { ok: true, tail: { 4: tail, 6: tail } };
}

/** service(), memoised per compile: protocol → port → result (10,000 rules, few protocols). */
function serviceOf(memo: Map<string, Service[]>, protocol: string, port: number): Service {
  if (typeof protocol !== "string" || !Number.isInteger(port) || port < 0 || port > 65535) return service(protocol, port);
  let byPort = memo.get(protocol);
  if (!byPort) memo.set(protocol, (byPort = []));
  return (byPort[port] ??= service(protocol, port));
}

function context(input: PolicySet, opts: CompileOptions): Ctx {
  const ranges: Record<Fam, Range[]> = { 4: [], 6: [] };
  for (const m of opts.meshRanges ?? DEFAULT_MESH_RANGES) {
    const ip = m.includes(":") ? 6 : 4;
    ranges[ip].push(parseKind(ADDR_KIND[ip], m));
  }
  const peers = new Map<string, { fam: Fam; ip: bigint }>();
  for (const p of input.peers) {
    const ip = parseIp(p.meshIp);
    if (ip) peers.set(p.id, ip);
  }
  return { ranges, localId: input.local.nodeId, local: parseIp(input.local.meshIp), peers, memo: new Map() };
}

const cnt = (): Statement => ({ stmt: "counter" });
const verdict = (v: "accept" | "drop"): Statement => ({ stmt: "verdict", verdict: v });
const logStmt = (): Statement => ({ stmt: "log", prefix: LOG_PREFIX, level: "debug" });

/** The chains, sets (empty) and rules for the options; only options change the structure. */
export function renderStructure(opts: CompileOptions): Ruleset {
  const forward = opts.forward ?? true;
  const dirs = DIRS.filter((d) => d !== "fwd" || forward);
  const ifn = opts.interface;
  const chains: FwChain[] = [
    { name: "input", hook: "input", priority: 0, policy: "accept" },
    { name: "output", hook: "output", priority: 0, policy: "accept" },
    ...(forward ? [{ name: "forward", hook: "forward" as const, priority: 0, policy: "accept" as const }] : []),
    ...dirs.map((d) => ({ name: CHAIN[d] })),
  ];
  const jump = (chain: string, field: Field, to: string): FwRule => ({
    chain,
    match: [{ match: "cmp", field, value: ifn }],
    stmt: [{ stmt: "verdict", verdict: "jump", chain: to }],
  });
  const rules: FwRule[] = [jump("input", "meta iifname", "mesh_in"), jump("output", "meta oifname", "mesh_out")];
  if (forward) rules.push(jump("forward", "meta iifname", "mesh_fwd"), jump("forward", "meta oifname", "mesh_fwd"));
  const sets: DesiredSet[] = [{ name: "access_ports", type: ["inet_service"], elements: [] }];
  const meshV4 = (opts.meshRanges ?? DEFAULT_MESH_RANGES).find((m) => !m.includes(":"));
  for (const d of dirs) {
    const chain = CHAIN[d];
    rules.push(
      { chain, match: [{ match: "ct", states: ["established", "related"] }], stmt: [verdict("accept")] },
      { chain, match: [{ match: "ct", states: ["invalid"] }], stmt: [verdict("drop")] },
    );
    if (d === "in" && meshV4)
      rules.push({
        chain,
        match: [
          { match: "cmp", field: "ip saddr", value: meshV4 },
          { match: "cmp", field: "meta l4proto", value: 6 },
          { match: "set", fields: ["th dport"], set: "access_ports" },
        ],
        stmt: [cnt(), verdict("accept")],
      });
    for (const a of ACTIONS) {
      const stmt: Statement[] =
        a === "deny" ? [cnt(), ...(opts.logDenied ? [logStmt()] : []), verdict("drop")] : [cnt(), verdict("accept")];
      for (const fam of FAMS)
        for (const svc of [false, true]) {
          const name = setName(a, d, fam, svc);
          sets.push({ name, type: setType(d, fam, svc), flags: ["interval"], elements: [] });
          const fields: Field[] = [...addrFields(d, fam), ...(svc ? (["meta l4proto", "th dport"] as Field[]) : [])];
          const match: Match[] = [{ match: "set", fields, set: name }];
          rules.push({ chain, match, stmt: stmt.map((s) => ({ ...s })) });
        }
    }
    const final: Statement[] =
      opts.default === "deny" ? [...(opts.logDenied ? [logStmt()] : []), cnt(), verdict("drop")] : [cnt(), verdict("accept")];
    rules.push({ chain, match: [], stmt: final });
  }
  return { family: "inet", table: opts.table ?? "plexd", chains, sets, rules };
}

/** Set elements (canonical spelling) of disjoint boxes of a set type. */
export function elementsOf(type: readonly SetKeyType[], boxes: readonly Box[]): Array<{ key: Array<string | number> }> {
  const kinds = type.map((t): Kind => (t === "ipv4_addr" ? "v4" : t === "ipv6_addr" ? "v6" : t === "inet_proto" ? "u8" : "u16"));
  const els = boxes.map((box) => ({ key: box.map((r, i) => formatKind(kinds[i] as Kind, r)) }));
  rememberBoxes(els, boxes, type);
  return els;
}

/** Set names by action, direction, family and service ([action][dir][fam][svc ? 1 : 0]). */
const NAMES = Object.fromEntries(
  ACTIONS.map((a) => [a, Object.fromEntries(DIRS.map((d) => [d, { 4: [setName(a, d, 4, false), setName(a, d, 4, true)], 6: [setName(a, d, 6, false), setName(a, d, 6, true)] }]))]),
) as Record<"deny" | "allow", Record<Direction, Record<Fam, [string, string]>>>;

/**
 * Puts one rule's boxes into their sets (`listOf(name)`) and its directions into the report;
 * returns [status, reason] when the rule is skipped or matches nothing.
 */
function ruleInto(
  r: PolicyRuleInput,
  port: number,
  protocol: string,
  report: RuleReport,
  ctx: Ctx,
  services: Map<string, Service[]>,
  forward: boolean,
  listOf: (name: string) => Box[],
): ["skipped" | "no_match", string] | null {
  if (r.action !== "allow" && r.action !== "deny") return ["skipped", `unknown action ${JSON.stringify(r.action)}`];
  const svc = serviceOf(services, protocol, port);
  if (!svc.ok) return ["skipped", svc.reason];
  const src = resolve(r.src, ctx);
  const dst = resolve(r.dst, ctx);
  // An invalid side wins over an unknown one: the rule is wrong whatever the peers are.
  if (!src.ok && src.kind === "skipped") return ["skipped", src.reason];
  if (!dst.ok && dst.kind === "skipped") return ["skipped", dst.reason];
  if (!src.ok) return ["no_match", src.reason];
  if (!dst.ok) return ["no_match", dst.reason];
  const names = NAMES[r.action];
  const dirs = report.directions;
  const addDir = (d: Direction) => {
    if (!dirs.includes(d)) dirs.push(d);
  };
  for (const fam of FAMS) {
    const sr = fam === 4 ? src.v4 : src.v6;
    const dr = fam === 4 ? dst.v4 : dst.v6;
    const tail = svc.tail ? svc.tail[fam] : null;
    const si = tail ? 1 : 0;
    if (dst.local && sr.length) {
      const l = listOf(names.in[fam][si]);
      for (const x of sr) l.push(tail ? [x, ...tail] : [x]);
      addDir("in");
    }
    if (src.local && dr.length) {
      const l = listOf(names.out[fam][si]);
      for (const y of dr) l.push(tail ? [y, ...tail] : [y]);
      addDir("out");
    }
    if (forward && sr.length && dr.length) {
      const l = listOf(names.fwd[fam][si]);
      for (const x of sr) for (const y of dr) l.push(tail ? [x, y, ...tail] : [x, y]);
      addDir("fwd");
    }
  }
  return null;
}

/** Compiles the policy set into the whole table plus a per-rule report. */
export function compile(input: PolicySet, opts: CompileOptions): Compiled {
  const ruleset = renderStructure(opts);
  const forward = opts.forward ?? true;
  const ctx = context(input, opts);
  const boxes = new Map<string, Box[]>();
  const listOf = (name: string): Box[] => {
    let l = boxes.get(name);
    if (!l) boxes.set(name, (l = []));
    return l;
  };
  const services = new Map<string, Service[]>();
  const rules: RuleReport[] = [];
  const notes: CompileNote[] = [];
  for (const pol of input.policies) {
    const list = pol.rules;
    for (let index = 0; index < list.length; index++) {
      const r = list[index] as PolicyRuleInput;
      const port = r.port ?? 0;
      const protocol = r.protocol ?? "";
      const report: RuleReport = {
        policy: pol.id,
        index,
        src: r.src,
        dst: r.dst,
        protocol: protocol === "" ? "any" : protocol,
        port,
        action: r.action,
        status: "active",
        directions: [],
      };
      rules.push(report);
      const reason = ruleInto(r, port, protocol, report, ctx, services, forward, listOf);
      if (reason) {
        report.status = reason[0];
        report.reason = reason[1];
        notes.push({ level: reason[0] === "skipped" ? "warn" : "info", policy: pol.id, index, message: reason[1] });
      } else if (report.directions.length === 0) report.status = "not_local";
    }
  }
  const disjoint = new Map<string, Box[]>();
  for (const set of ruleset.sets) {
    const b = boxes.get(set.name);
    if (!b) continue;
    const d = disjointBoxes(b);
    disjoint.set(set.name, d);
    set.elements = elementsOf(set.type, d);
  }
  const access = ruleset.sets.find((s) => s.name === "access_ports");
  if (access && opts.accessPorts)
    access.elements = [...new Set(opts.accessPorts)]
      .filter((p) => Number.isInteger(p) && p > 0 && p <= 65535)
      .sort((a, b) => a - b)
      .map((p) => ({ key: [p] }));
  return { ruleset, rules, notes, boxes: disjoint };
}
