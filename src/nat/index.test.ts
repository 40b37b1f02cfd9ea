import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FakeClock, FakeTransport, txidOf } from "./fake-transport.test-util.ts";
import { natIndicator, NatDiscovery, type NatDiscoveryOptions, type NatState, type PeerView } from "./index.ts";
import { encodeBindingSuccess } from "./stun-codec.ts";

/** Fake clock with timers, shared with the fake transport. */
class TimerClock extends FakeClock {
  timers: Array<{ id: number; at: number; fn: () => void }> = [];
  private id = 0;
  setTimeout = (fn: () => void, ms: number) => {
    const id = ++this.id;
    this.timers.push({ id, at: this.t + ms, fn });
    return id;
  };
  clearTimeout = (h: unknown) => {
    this.timers = this.timers.filter((x) => x.id !== h);
  };
  /** Moves time to the next timer and fires it. */
  fireNext(): number {
    this.timers.sort((a, b) => a.at - b.at);
    const next = this.timers.shift();
    if (!next) throw new Error("no timer armed");
    this.t = Math.max(this.t, next.at);
    next.fn();
    return next.at;
  }
}

const flush = async () => {
  for (let i = 0; i < 20; i++) await Bun.sleep(0);
};

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

interface World {
  clock: TimerClock;
  /** Mapping each STUN server reports; change it to simulate rebinding. */
  mapping: [string, number];
  answer: boolean;
  reports: Array<[string, string]>;
  cpAnswer: Array<{ peer_id: string; endpoint: string }>;
  cpFail: boolean;
  peers: PeerView[];
  writes: Array<{ peerId: string; endpoint: string }>;
  opened: number;
  transports: FakeTransport[];
}

function setup(over: Partial<NatDiscoveryOptions> = {}, cachePath: string | null = null): { nat: NatDiscovery; w: World } {
  const w: World = {
    clock: new TimerClock(),
    mapping: ["198.51.100.11", 51820],
    answer: true,
    reports: [],
    cpAnswer: [],
    cpFail: false,
    peers: [],
    writes: [],
    opened: 0,
    transports: [],
  };
  const nat = new NatDiscovery({
    config: { enabled: true, stunServers: ["203.0.113.10", "203.0.113.20:3478"], refreshIntervalMs: 60_000, timeoutMs: 5000 },
    listenPort: 51820,
    cachePath,
    clock: w.clock,
    random: () => 0.5,
    localAddresses: () => new Set(["192.168.1.2"]),
    async openTransport() {
      w.opened++;
      const t = new FakeTransport(w.clock, (s) =>
        w.answer ? [{ delayMs: 30, d: { srcIp: s.dstIp, srcPort: s.dstPort, payload: encodeBindingSuccess(txidOf(s), w.mapping[0], w.mapping[1]) } }] : [],
      );
      w.transports.push(t);
      return { transport: t };
    },
    async reportEndpoint(ep, type) {
      w.reports.push([ep, type]);
      if (w.cpFail) throw new Error("cp offline");
      return w.cpAnswer;
    },
    async peers() {
      return w.peers;
    },
    async setPeerEndpoint(u) {
      w.writes.push({ peerId: u.peerId, endpoint: u.endpoint });
      const p = w.peers.find((x) => x.peerId === u.peerId);
      if (p) p.endpoint = u.endpoint;
    },
    ...over,
  });
  return { nat, w };
}

describe("NatDiscovery", () => {
  test("discover: classifies, caches (0600), reports, applies peer endpoints, closes the socket", async () => {
    const dir = mkdtempSync(join(tmpdir(), "plexd-nat-"));
    dirs.push(dir);
    const cache = join(dir, "nat.json");
    const { nat, w } = setup({}, cache);
    w.peers = [{ peerId: "n2", publicKey: "K2", endpoint: null, lastHandshakeMs: null }];
    w.cpAnswer = [
      { peer_id: "n2", endpoint: "198.51.100.12:51820" },
      { peer_id: "n9", endpoint: "198.51.100.99:51820" },
    ];
    expect(nat.heartbeatNat()).toBeUndefined();
    const r = await nat.discover();
    expect(r).toEqual({ ok: true, natType: "full_cone", publicEndpoint: "198.51.100.11:51820", changed: true, reported: true });
    expect(w.reports).toEqual([["198.51.100.11:51820", "full_cone"]]);
    expect(w.writes).toEqual([{ peerId: "n2", endpoint: "198.51.100.12:51820" }]);
    expect(w.transports[0]?.closed).toBe(true);
    const s = nat.state();
    expect(s).toMatchObject({ natType: "full_cone", mode: "raw", reportPending: false, appliedEndpoints: { n2: "198.51.100.12:51820" } });
    expect(s.lastPlan).toEqual({ updated: ["n2"], kept: [], unchanged: [], unknown: ["n9"], invalid: [], punched: [] });
    expect(nat.heartbeatNat()).toEqual({ public_endpoint: "198.51.100.11:51820", type: "full_cone" });
    expect(nat.indicator().status).toBe("healthy");
    expect(statSync(cache).mode & 0o777).toBe(0o600);
    const c = JSON.parse(readFileSync(cache, "utf8"));
    expect(c).toMatchObject({ version: 1, public_endpoint: "198.51.100.11:51820", nat_type: "full_cone", mode: "raw", applied_endpoints: { n2: "198.51.100.12:51820" } });

    // Restored by the next process; a corrupt cache is ignored, not fatal.
    const again = setup({}, cache).nat.state();
    expect(again).toMatchObject({ fromCache: true, natType: "full_cone", publicEndpoint: "198.51.100.11:51820", appliedEndpoints: { n2: "198.51.100.12:51820" } });
    writeFileSync(cache, "{trunc");
    expect(setup({}, cache).nat.state().natType).toBeNull();
  });

  test("re-reports when unchanged; a failed report is retried by the next cycle", async () => {
    const { nat, w } = setup();
    w.cpFail = true;
    const r1 = await nat.discover();
    expect(r1).toMatchObject({ ok: true, reported: false });
    expect(nat.state()).toMatchObject({ reportPending: true, lastReportError: "cp offline", natType: "full_cone" });
    w.cpFail = false;
    expect(await nat.discover()).toMatchObject({ ok: true, changed: false, reported: true });
    expect(w.reports).toHaveLength(2);
    expect(nat.state().reportPending).toBe(false);
  });

  test("rebinding: the new mapping is reported and a peer that handshook seconds ago still gets the new endpoint", async () => {
    const { nat, w } = setup();
    w.peers = [{ peerId: "n2", publicKey: "K2", endpoint: null, lastHandshakeMs: null }];
    w.cpAnswer = [{ peer_id: "n2", endpoint: "198.51.100.12:51820" }];
    await nat.discover();
    w.peers[0]!.lastHandshakeMs = w.clock.t - 3000;
    w.cpAnswer = [{ peer_id: "n2", endpoint: "198.51.100.22:51820" }]; // the peer's NAT rebound
    w.mapping = ["198.51.100.21", 51820]; // ours too
    const r = await nat.discover();
    expect(r).toMatchObject({ ok: true, changed: true, publicEndpoint: "198.51.100.21:51820" });
    expect(w.writes.map((x) => x.endpoint)).toEqual(["198.51.100.12:51820", "198.51.100.22:51820"]);
    // WireGuard roamed elsewhere (LAN) with a fresh handshake: left alone.
    w.peers[0]!.endpoint = "192.168.1.7:51820";
    w.cpAnswer = [{ peer_id: "n2", endpoint: "198.51.100.23:51820" }];
    await nat.discover();
    expect(nat.state().lastPlan?.kept).toEqual(["n2"]);
    expect(w.writes).toHaveLength(2);
  });

  test("own mapping rebound: peers whose endpoint is already right are written again (hole punch); not otherwise", async () => {
    const { nat, w } = setup();
    w.peers = [
      { peerId: "n2", publicKey: "K2", endpoint: "198.51.100.12:51820", lastHandshakeMs: w.clock.t - 3000 },
      { peerId: "n3", publicKey: "K3", endpoint: "192.168.1.7:51820", lastHandshakeMs: w.clock.t - 3000 }, // roamed
      { peerId: "n4", publicKey: "K4", endpoint: null, lastHandshakeMs: null },
    ];
    w.cpAnswer = [
      { peer_id: "n2", endpoint: "198.51.100.12:51820" },
      { peer_id: "n3", endpoint: "198.51.100.13:51820" },
    ];
    await nat.discover(); // first result: nothing to punch
    await nat.discover(); // same mapping: nothing to punch
    expect(w.writes).toEqual([]);
    w.mapping = ["198.51.100.11", 24694]; // conntrack flushed on our NAT: new port
    expect(await nat.discover()).toMatchObject({ ok: true, changed: true, publicEndpoint: "198.51.100.11:24694" });
    // n2 rewritten with its own endpoint; the roamed n3 and endpoint-less n4 left alone.
    expect(w.writes).toEqual([{ peerId: "n2", endpoint: "198.51.100.12:51820" }]);
    expect(nat.state().lastPlan).toMatchObject({ updated: [], punched: ["n2"], kept: ["n3"], unchanged: ["n2"] });
    expect(nat.state().appliedEndpoints).toEqual({ n2: "198.51.100.12:51820" });
    await nat.discover();
    expect(w.writes).toHaveLength(1);
  });

  test("refresh every interval ±10 % (jittered), re-armed after each cycle; stop disarms", async () => {
    const randoms = [0, 0.999999, 0.5];
    const { nat, w } = setup({ random: () => randoms.shift() ?? 0.5 });
    await nat.discover();
    nat.start();
    const t0 = w.clock.t;
    expect(nat.state().nextRefreshAt).toBe(t0 + 54_000);
    w.clock.fireNext();
    await flush();
    expect(w.opened).toBe(2);
    const t1 = w.clock.t;
    expect(nat.state().nextRefreshAt! - t1).toBe(66_000);
    w.clock.fireNext();
    await flush();
    expect(w.opened).toBe(3);
    expect(w.reports).toHaveLength(3);
    await nat.stop();
    expect(w.clock.timers).toHaveLength(0);
    expect(nat.state().nextRefreshAt).toBeNull();
  });

  test("jitter extremes stay within ±10 %", () => {
    for (const r of [0, 0.25, 0.75, 0.9999]) {
      const { nat } = setup({ random: () => r });
      nat.start();
      const d = nat.state().nextRefreshAt! - new FakeClock().t;
      expect(d).toBeGreaterThanOrEqual(54_000);
      expect(d).toBeLessThanOrEqual(66_000);
    }
  });

  test("overlapping calls share one cycle and queue one more; trigger runs now and re-arms", async () => {
    const { nat, w } = setup();
    const a = nat.discover();
    const b = nat.discover();
    expect(a).toBe(b);
    await a;
    await flush();
    expect(w.opened).toBe(2); // the queued one
    nat.start();
    const armed = w.clock.timers.length;
    expect(armed).toBe(1);
    await nat.trigger("route change");
    await flush();
    expect(w.opened).toBe(3);
    expect(w.clock.timers).toHaveLength(1);
    await nat.stop();
  });

  test("no answer: failed, nothing reported, indicator degraded; transport open failure likewise", async () => {
    const { nat, w } = setup();
    w.answer = false;
    const r = await nat.discover();
    expect(r).toMatchObject({ ok: false });
    expect(w.reports).toHaveLength(0);
    expect(nat.state()).toMatchObject({ consecutiveFailures: 1, natType: null });
    expect(nat.indicator()).toMatchObject({ status: "degraded" });
    const broken = setup({
      openTransport: async () => {
        throw new Error("EADDRNOTAVAIL");
      },
    });
    expect(await broken.nat.discover()).toMatchObject({ ok: false, reason: expect.stringContaining("EADDRNOTAVAIL") });
  });

  test("deadlineMs bounds the whole discovery (nat_discovery phase)", async () => {
    const { nat, w } = setup();
    w.answer = false;
    const t0 = w.clock.t;
    await nat.discover({ deadlineMs: 7000 });
    expect(w.clock.t - t0).toBeLessThanOrEqual(7000);
  });

  test("disabled: no socket, healthy indicator", async () => {
    const { nat, w } = setup({ config: { enabled: false, stunServers: [], refreshIntervalMs: 60_000, timeoutMs: 5000 } });
    expect(await nat.discover()).toEqual({ ok: false, reason: "NAT traversal disabled" });
    nat.start();
    expect(w.opened).toBe(0);
    expect(w.clock.timers).toHaveLength(0);
    expect(nat.indicator()).toMatchObject({ status: "healthy", message: "NAT traversal disabled" });
  });

  test("bad options are rejected naming the value", () => {
    expect(() => setup({ jitter: 1 })).toThrow(/jitter/);
    expect(() => setup({ listenPort: 0 })).toThrow(/listenPort/);
  });
});

describe("natIndicator", () => {
  const base: NatState = {
    enabled: true,
    mode: "raw",
    fallbackReason: null,
    natType: "full_cone",
    publicEndpoint: "198.51.100.11:51820",
    mappings: [],
    failures: [],
    lastAttemptAt: 0,
    lastSuccessAt: 1_000_000,
    lastError: null,
    consecutiveFailures: 0,
    reportedAt: null,
    reportPending: false,
    lastReportError: null,
    appliedEndpoints: {},
    lastPlan: null,
    nextRefreshAt: null,
    fromCache: false,
  };
  test("healthy within 3 × refresh; degraded when stale, unknown or fallback", () => {
    expect(natIndicator(base, 60_000, 1_000_000 + 180_000)).toMatchObject({ status: "healthy", details: { last_success_age_s: 180, mode: "raw" } });
    expect(natIndicator(base, 60_000, 1_000_000 + 180_001).status).toBe("degraded");
    expect(natIndicator({ ...base, natType: "unknown" }, 60_000, 1_000_000).status).toBe("degraded");
    expect(natIndicator({ ...base, mode: "fallback", fallbackReason: "no CAP_NET_RAW" }, 60_000, 1_000_000)).toMatchObject({
      status: "degraded",
      message: expect.stringContaining("no CAP_NET_RAW"),
    });
  });
});
