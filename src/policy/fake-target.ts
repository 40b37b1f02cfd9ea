/**
 * In-memory FirewallTarget for unit tests: applies FwBatch ops to a table model with the
 * kernel's rules that matter here — one transaction (a failing op changes nothing),
 * overlapping interval elements rejected (EEXIST), deleting a missing element rejected
 * (ENOENT), rules need their chain and sets. Emits monitor events like the kernel.
 */
import type { NftMonitorEvent, NftMonitorHandle } from "../kernel/addon-api.ts";
import type { FwBatch, FwDump, FwElement, FwOp, FwRule, FwSet } from "../kernel/firewall-api.ts";
import { elementKey, normaliseElement, normaliseRule } from "../kernel/nft.ts";
import { parseKind, type Kind, type Range } from "./ranges.ts";
import type { FirewallTarget, ForeignTable } from "./target.ts";

/** A kernel-like failure (code as the addon's NativeError). */
export class FakeNftError extends Error {
  override name = "NativeError";
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const KINDS: Record<string, Kind> = { ipv4_addr: "v4", ipv6_addr: "v6", inet_proto: "u8", inet_service: "u16" };

function boxOf(set: FwSet, e: FwElement): Range[] {
  return set.type.map((t, i) => parseKind(KINDS[t] as Kind, e.key[i] as string | number));
}

function overlaps(a: Range[], b: Range[]): boolean {
  return a.every((r, i) => r[0] <= (b[i] as Range)[1] && (b[i] as Range)[0] <= r[1]);
}

export class FakeFirewall implements FirewallTarget {
  readonly family = "inet" as const;
  state: FwDump;
  gen = 1;
  /** Every applied batch, in order. */
  readonly batches: FwBatch[] = [];
  /** Make the next apply fail with this code. */
  failNext: string | null = null;
  foreign: ForeignTable[] = [];
  /** Round trips by kind (what a real target would pay a thread hop for). */
  readonly calls = { applyAt: 0, dump: 0, generation: 0 };
  private listeners = new Set<(e: NftMonitorEvent[]) => void>();
  private nextHandle = 1;

  constructor(readonly table = "plexd") {
    this.state = { family: "inet", table, exists: false, chains: [], sets: [], rules: [] };
  }

  async apply(batch: FwBatch, _sets: ReadonlyMap<string, FwSet>): Promise<void> {
    if (batch.family !== "inet" || batch.table !== this.table) throw new FakeNftError("EPERM", "foreign table");
    if (this.failNext) {
      const code = this.failNext;
      this.failNext = null;
      throw new FakeNftError(code, `injected ${code}`);
    }
    const s = structuredClone(this.state);
    for (const op of batch.ops) this.op(s, op);
    this.state = s;
    this.batches.push(structuredClone(batch));
    this.commit(process.pid, batch.ops.length ? [{ type: "newtable", family: "inet", table: this.table }] : []);
  }

  /** Conditional commit (FirewallTarget.applyAt): refused with ERESTART once the generation moved. */
  async applyAt(batch: FwBatch, sets: ReadonlyMap<string, FwSet>, generation: number | null): Promise<number> {
    this.calls.applyAt++;
    if (generation !== null && generation !== this.gen) throw new FakeNftError("ERESTART", `generation ${this.gen}, expected ${generation}`);
    await this.apply(batch, sets);
    return this.gen;
  }

  private op(s: FwDump, op: FwOp): void {
    const set = (n: string) => {
      const x = s.sets.find((y) => y.name === n);
      if (!x) throw new FakeNftError("ENOENT", `no set ${n}`);
      return x;
    };
    const needTable = () => {
      if (!s.exists) throw new FakeNftError("ENOENT", "no table");
    };
    switch (op.op) {
      case "addTable":
        s.exists = true;
        return;
      case "deleteTable":
        needTable();
        Object.assign(s, { exists: false, chains: [], sets: [], rules: [] });
        return;
      case "flushTable":
        needTable();
        s.rules = [];
        return;
      case "addChain":
        needTable();
        if (!s.chains.some((c) => c.name === op.chain.name)) s.chains.push({ ...op.chain, handle: this.nextHandle++ });
        return;
      case "deleteChain":
        s.chains = s.chains.filter((c) => c.name !== op.chain);
        return;
      case "flushChain":
        s.rules = s.rules.filter((r) => r.chain !== op.chain);
        return;
      case "addSet":
        needTable();
        if (!s.sets.some((x) => x.name === op.set.name)) s.sets.push({ ...op.set, elements: [], handle: this.nextHandle++ });
        return;
      case "deleteSet":
        s.sets = s.sets.filter((x) => x.name !== op.set);
        return;
      case "flushSet":
        set(op.set).elements = [];
        return;
      case "addElements": {
        const x = set(op.set);
        const interval = x.flags?.includes("interval") ?? false;
        for (const e of op.elements) {
          const n = normaliseElement(x, e);
          if (x.elements.some((y) => elementKey(y) === elementKey(n))) continue;
          const b = boxOf(x, n);
          if (!interval && b.some((r) => r[0] !== r[1])) throw new FakeNftError("EINVAL", "range in a non-interval set");
          if (x.elements.some((y) => overlaps(boxOf(x, y), b)))
            throw new FakeNftError("EEXIST", `overlapping element ${elementKey(n)} in ${x.name}`);
          x.elements.push(n);
        }
        return;
      }
      case "deleteElements": {
        const x = set(op.set);
        for (const e of op.elements) {
          const k = elementKey(normaliseElement(x, e));
          const i = x.elements.findIndex((y) => elementKey(y) === k);
          if (i < 0) throw new FakeNftError("ENOENT", `no element ${k} in ${x.name}`);
          x.elements.splice(i, 1);
        }
        return;
      }
      case "addRule": {
        const r: FwRule = op.rule;
        if (!s.chains.some((c) => c.name === r.chain)) throw new FakeNftError("ENOENT", `no chain ${r.chain}`);
        for (const m of r.match) if (m.match === "set") set(m.set);
        const n = normaliseRule(r, "inet");
        n.stmt = n.stmt.map((st) => (st.stmt === "counter" ? { stmt: "counter", packets: 0, bytes: 0 } : st));
        s.rules.push({ ...n, handle: this.nextHandle++ });
        return;
      }
      case "deleteRule":
        s.rules = s.rules.filter((r) => !(r.chain === op.chain && r.handle === op.handle));
        return;
    }
  }

  async dump(): Promise<FwDump> {
    this.calls.dump++;
    return structuredClone(this.state);
  }

  async generation(): Promise<number> {
    this.calls.generation++;
    return this.gen;
  }

  monitor(cb: (events: NftMonitorEvent[]) => void): NftMonitorHandle {
    this.listeners.add(cb);
    return { close: () => this.listeners.delete(cb), ref() {}, unref() {} };
  }

  async foreignTables(): Promise<ForeignTable[]> {
    return structuredClone(this.foreign);
  }

  /** Someone else changes the ruleset (pid 1 by default): e.g. `nft flush ruleset`. */
  external(mutate: (s: FwDump) => void, pid = 1): void {
    mutate(this.state);
    this.commit(pid, [{ type: "deltable", family: "inet", table: this.table }]);
  }

  private commit(pid: number, events: NftMonitorEvent[]): void {
    this.gen++;
    const all: NftMonitorEvent[] = [...events, { type: "newgen", gen: this.gen, pid, proc: "fake" }];
    for (const l of this.listeners) queueMicrotask(() => l(all));
  }
}
