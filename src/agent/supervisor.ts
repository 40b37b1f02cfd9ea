/**
 * The agent supervisor: the one wiring module (architecture.md). It builds every subsystem
 * with constructor arguments, runs the phase machine of lifecycle.md §1
 * (starting → registering → configuring → nat_discovery → connected → stopping|deregistering)
 * in the start order of §2, and owns stop and deregistration (§14).
 *
 * Subsystems never import each other; everything they need from another one arrives here as
 * a callback.
 */
import type { SseMessage, SseOversize } from "../events/sse.ts";
import type { Database } from "bun:sqlite";
import { existsSync, readFileSync } from "node:fs";
import { rootCertificates } from "node:tls";
import { join } from "node:path";
import type { Config } from "../config/index.ts";
import { CpApi } from "../controlplane/api.ts";
import { HttpClient } from "../controlplane/http.ts";
import type { CapabilitiesPayload } from "../controlplane/types.ts";
import { NonceStore } from "../events/nonce-store.ts";
import { EventStream, type StreamFailure } from "../events/stream.ts";
import { loadIdentity, TokenError, RegistrationError, type Identity } from "../identity/index.ts";
import { DEFAULT_JOURNAL_OPTIONS, Dispatcher, Journal, Outbox } from "../journal/index.ts";
import type { NativeAddon } from "../kernel/addon-api.ts";
import type { Kernel } from "../kernel/types.ts";
import type { Logger } from "../log/index.ts";
import { readMeshCache } from "../mesh/cache.ts";
import { HANDSHAKE_DEFER_MS, MeshController } from "../mesh/controller.ts";
import type { NatDiscovery, NatDiscoveryOptions } from "../nat/index.ts";
import { nftTarget, systemFirewalld, type FirewallTarget, type FirewalldControl } from "../policy/index.ts";
import { scanHooks, mergeHookBaselines, type HookScan } from "../hooks/index.ts";
import { ensurePrivateDir, kvGet, kvSet, openDatabase } from "../store/index.ts";
import { formatChecksum } from "../util/checksum.ts";
import { VERSION } from "../version.ts";
import { AuthMonitor } from "./auth.ts";
import { ControlSocketServer } from "./control-socket.ts";
import { registerControlRoutes } from "./control-routes.ts";
import { CpMonitor } from "./cp-monitor.ts";
import { deregisterNode, type DeregisterFlags, type DeregisterResult, type SystemctlRunner } from "./deregister.ts";
import { AgentFirewall } from "./firewall.ts";
import { createHandlers } from "./handlers.ts";
import { HeartbeatLoop } from "./heartbeat.ts";
import { ANNOUNCED_CAPABILITIES_KEY, buildCapabilities, CAPABILITIES_OUTBOX_KIND, capabilitiesHash } from "./capabilities.ts";
import { binaryViolationEntry, checkBinaryBaseline, outboxSender, updateBaselines, type BaselineResult } from "./integrity.ts";
import { createNatDiscovery, peerKeepaliveSec } from "./nat.ts";
import { NodeContext } from "./node-context.ts";
import { NodeStateStore } from "./node-state.ts";
import { Reconciler } from "./reconcile.ts";
import { planReload, type ReloadPlan } from "./reload.ts";
import { TokenMailbox, waitAndRegister } from "./registration.ts";
import { KeyRotator } from "./rotation.ts";
import { CycleScheduler } from "./scheduler.ts";
import { SigningKeyStore } from "./signing.ts";
import { buildStatus } from "./status.ts";
import type { Phase, StatusSnapshot } from "./types.ts";

/** Exit codes of `plexd up` (config.md §4.2). */
export const UP_EXIT = { ok: 0, fatal: 1, config: 78 } as const;

/** A fatal start error with the exit code it maps to. */
export class AgentStartError extends Error {
  override readonly name = "AgentStartError";
  constructor(
    readonly code: string,
    message: string,
    readonly exitCode: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Everything the supervisor needs from outside (tests swap the kernel and addon). */
export interface SupervisorOptions {
  readonly config: Config;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly log: Logger;
  /** Control socket path (`--socket` > `actions.socket`). */
  readonly socketPath: string;
  /** `PLEXD_BOOTSTRAP_TOKEN_FILE`. */
  readonly explicitTokenFile?: string;
  /** Loads the native addon (step 3); null = none (tests with the fake kernel). */
  readonly loadAddon: () => NativeAddon | null;
  /** Builds the kernel once the addon is loaded. */
  readonly createKernel: (addon: NativeAddon | null, onRestart: () => void) => Promise<Kernel>;
  /** Executable to checksum (default `integrity.binary_path` or /proc/self/exe). */
  readonly binaryPath?: string;
  /** Capability payload override [buildCapabilities over the binary checksum and the hook scan]. */
  readonly capabilities?: (binaryChecksum: string) => CapabilitiesPayload;
  /** Required owner uid of hooks and their directories [0]; tests running unprivileged pass theirs. */
  readonly hookOwnerUid?: number;
  readonly now?: () => number;
  /** Re-reads the configuration (same file, env and flags as at start) for SIGHUP. */
  readonly reloadConfig?: () => Promise<Config>;
  /** nftables target for `inet plexd` [nftTarget(addon) when an addon is loaded, else none]. */
  readonly firewallTarget?: (addon: NativeAddon | null) => FirewallTarget | null;
  /** firewalld control [systemFirewalld()]; null = do not manage firewalld. */
  readonly firewalld?: FirewalldControl | null;
  /** NatDiscovery test seams (transport, resolver, clock, local addresses). */
  readonly natOverrides?: Partial<NatDiscoveryOptions>;
  /** sd_notify [addon.sdNotify]. */
  readonly notify?: (state: string) => void;
  /** `systemctl` for `deregister --purge` [spawns systemctl when it exists]. */
  readonly systemctl?: SystemctlRunner | null;
}

const delay = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });

/** See the file comment. */
export class Supervisor {
  readonly o: SupervisorOptions;
  readonly log: Logger;
  readonly now: () => number;
  readonly startedAt: number;
  readonly ctx = new NodeContext();
  readonly mailbox = new TokenMailbox();
  readonly cpMonitor: CpMonitor;
  readonly http: HttpClient;
  readonly api: CpApi;
  readonly control: ControlSocketServer;
  phase: Phase = "starting";
  kernel: Kernel | undefined;
  addon: NativeAddon | null = null;
  db: Database | undefined;
  mesh: MeshController | undefined;
  signing: SigningKeyStore | undefined;
  nodeState: NodeStateStore;
  journal: Journal | undefined;
  dispatcher: Dispatcher | undefined;
  stream: EventStream | undefined;
  heartbeat: HeartbeatLoop | undefined;
  reconciler: Reconciler | undefined;
  scheduler: CycleScheduler | undefined;
  rotator: KeyRotator | undefined;
  auth: AuthMonitor | undefined;
  firewall: AgentFirewall | undefined;
  nat: NatDiscovery | undefined;
  outbox: Outbox | undefined;
  binaryChecksum = "";
  /** Result of the last hook scan (start, reload). */
  hooks: HookScan | undefined;
  #config: Config;
  #integrityViolation: BaselineResult | undefined;
  #watchdog: ReturnType<typeof setInterval> | undefined;
  #lastKeepalive: number | undefined;
  #stop = new AbortController();
  #stopRequested: { deregister?: DeregisterFlags } | undefined;
  #stopped: Promise<number> | undefined;
  #configureRetry: Promise<void> | undefined;
  #timers: Array<ReturnType<typeof setInterval>> = [];
  #registering: Promise<Identity> | undefined;
  #deregistering: Promise<DeregisterResult> | undefined;

  constructor(opts: SupervisorOptions) {
    this.o = opts;
    this.#config = opts.config;
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
    this.startedAt = this.now();
    const c = opts.config;
    this.cpMonitor = new CpMonitor(() => this.config.heartbeat.interval, this.now);
    this.http = new HttpClient({
      baseUrl: c.api.url,
      auth: () => this.ctx.bearer(),
      caFile: c.api.ca_file || undefined,
      tlsInsecureSkipVerify: c.api.tls_insecure_skip_verify,
      connectTimeoutMs: c.api.connect_timeout,
      requestTimeoutMs: c.api.request_timeout,
    });
    this.api = new CpApi({ http: this.http, profile: c.compat.profile, logger: this.log });
    this.control = new ControlSocketServer(this.log);
    this.nodeState = new NodeStateStore(c.data_dir);
  }

  /** The running configuration (replaced by a reload; only keys marked R change). */
  get config(): Config {
    return this.#config;
  }

  /** Requests a normal stop (SIGTERM/SIGINT). */
  requestStop(): void {
    if (this.#stopRequested) return;
    this.#stopRequested = this.config.shutdown.deregister_on_stop ? { deregister: { purge: false, force: false } } : {};
    this.#stop.abort();
  }

  #setPhase(p: Phase): void {
    if (this.phase === p) return;
    this.log.info("phase", { from: this.phase, to: p });
    this.phase = p;
    this.#notify(`STATUS=${p}`);
  }

  #notify(state: string): void {
    try {
      if (this.o.notify) this.o.notify(state);
      else this.addon?.sdNotify(state);
    } catch {
      /* no systemd */
    }
  }

  /**
   * systemd watchdog (lifecycle.md §1): `WATCHDOG=1` every WATCHDOG_USEC/2 from a timer on the
   * supervisor's event loop — a blocked loop sends nothing and systemd restarts the service.
   */
  #startWatchdog(): void {
    const usec = Number(this.o.env.WATCHDOG_USEC ?? "");
    const pid = this.o.env.WATCHDOG_PID;
    if (!Number.isFinite(usec) || usec <= 0) return;
    if (pid !== undefined && pid !== "" && Number(pid) !== process.pid) return;
    const every = Math.max(1, Math.floor(usec / 2000));
    this.#notify("WATCHDOG=1");
    this.#watchdog = setInterval(() => this.#notify("WATCHDOG=1"), every);
    this.log.debug("systemd watchdog enabled", { interval_ms: every });
  }

  /** Status snapshot for the control socket. */
  async status(): Promise<StatusSnapshot> {
    return buildStatus(this);
  }

  /**
   * Runs the agent until stopped. Resolves with the exit code (0 clean stop, 1 fatal).
   */
  run(): Promise<number> {
    this.#stopped ??= this.#run();
    return this.#stopped;
  }

  async #run(): Promise<number> {
    try {
      await this.#start();
    } catch (err) {
      const e = err as Error & { exitCode?: number };
      if (this.#stop.signal.aborted && !(err instanceof AgentStartError)) {
        return this.#shutdown();
      }
      this.log.error("agent start failed", { error: e.message, code: (e as { code?: string }).code });
      await this.#closeAll();
      return e.exitCode === 69 ? 1 : e instanceof AgentStartError ? e.exitCode : UP_EXIT.fatal;
    }
    await new Promise<void>((resolve) => {
      if (this.#stop.signal.aborted) return resolve();
      this.#stop.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    return this.#shutdown();
  }

  // ------------------------------------------------------------------------------------------
  // Start (lifecycle.md §2)

  async #start(): Promise<void> {
    const c = this.config;
    // 2. data_dir 0700 (wider modes tightened with a warning), runtime dir.
    try {
      if (ensurePrivateDir(c.data_dir)) this.log.warn("data_dir mode was wider than 0700; tightened", { data_dir: c.data_dir });
    } catch (err) {
      throw new AgentStartError("data_dir", `cannot create data_dir ${c.data_dir}: ${(err as Error).message}`, 1, { cause: err });
    }
    // 3. Native addon.
    try {
      this.addon = this.o.loadAddon();
    } catch (err) {
      throw new AgentStartError("addon", `native addon: ${(err as Error).message}`, 1, { cause: err });
    }
    this.#startWatchdog();
    // 4. plexd.db.
    try {
      this.db = openDatabase(join(c.data_dir, "plexd.db"), { snapshotDir: join(c.data_dir, "upgrade") });
    } catch (err) {
      throw new AgentStartError("db", (err as Error).message, 1, { cause: err });
    }
    // 5. Upgrade confirm mode belongs to the upgrade subsystem; note it.
    if (existsSync(join(c.data_dir, "upgrade", "pending.json"))) this.log.warn("upgrade/pending.json present; confirm mode is not handled by this build");
    // 6. Binary checksum vs baseline.
    if (c.integrity.enabled) {
      try {
        const r = checkBinaryBaseline(c.data_dir, this.o.binaryPath ?? (c.integrity.binary_path || "/proc/self/exe"));
        this.binaryChecksum = formatChecksum(r.actual, c.compat.profile);
        if (r.status === "mismatch") {
          // Queued through the durable outbox once the identity (node id) and outbox exist.
          this.#integrityViolation = r;
          this.log.error("integrity violation: running binary differs from the recorded baseline", { path: r.path, expected: r.expected, actual: r.actual });
        }
      } catch (err) {
        this.log.warn("binary checksum failed", { error: (err as Error).message });
      }
    }
    // 7. Hooks: scan and checksum the declared hooks; invalid ones are excluded and logged.
    await this.#scanHooks();
    // 8. Identity.
    const loaded = loadIdentity(c.data_dir, this.log);
    if (loaded.registered) this.ctx.set(loaded.identity);
    // Kernel (needs the addon), mesh, signing keys.
    try {
      this.kernel = await this.o.createKernel(this.addon, () => {
        this.log.warn("wireguard-go restarted; re-applying the full configuration");
        void this.mesh?.apply();
      });
    } catch (err) {
      throw new AgentStartError("kernel", `kernel backend: ${(err as Error).message}`, 1, { cause: err });
    }
    // Policy enforcement: the one nftables path (Enforcer over the FirewallTarget).
    this.firewall = new AgentFirewall({
      target: (this.o.firewallTarget ?? ((a) => (a ? nftTarget(a) : null)))(this.addon),
      config: () => this.config,
      log: this.log.with({ subsystem: "policy" }),
      firewalld: this.o.firewalld === undefined ? systemFirewalld() : this.o.firewalld,
      now: this.now,
    });
    this.firewall.startWatch();
    this.mesh = new MeshController({
      kernel: this.kernel,
      dataDir: c.data_dir,
      handshakeDeferMs: HANDSHAKE_DEFER_MS,
      logger: this.log.with({ subsystem: "mesh" }),
      firewall: this.firewall,
      settings: () => {
        const cur = this.config;
        this.#lastKeepalive = peerKeepaliveSec(cur, this.nat);
        return {
          ifname: cur.mesh.interface,
          listenPort: cur.mesh.listen_port,
          mtu: cur.mesh.mtu,
          keepaliveSec: this.#lastKeepalive,
          policyDefault: cur.policy.default,
          policyEnabled: cur.policy.enabled,
        };
      },
      self: () => {
        const id = this.ctx.identity;
        return { nodeId: id.nodeId, meshIp: id.meshIp, privateKey: id.privateKey, publicKey: id.publicKey };
      },
    });
    // 9. Control socket (local emergency actions and the CLI work from here on).
    registerControlRoutes(this.control, this);
    try {
      await this.control.listen(this.o.socketPath);
    } catch (err) {
      throw new AgentStartError("control_socket", `control socket ${this.o.socketPath}: ${(err as Error).message}`, 1, { cause: err });
    }
    this.log.info("control socket listening", { socket: this.o.socketPath });
    // 10. Registered → configure from cache before any CP call; else register.
    if (this.ctx.registered) {
      try {
        const cache = readMeshCache(c.data_dir);
        this.mesh.load(cache.peers, cache.policies);
        this.log.info("restored desired state from cache", { peers: cache.peers.length, policies: cache.policies.length, found: cache.found });
      } catch (err) {
        this.log.warn("cache unreadable; starting with an empty peer set", { error: (err as Error).message });
      }
    } else {
      await this.#register();
    }
    this.#initSigning();
    // NAT before configuring: its cached type decides the keepalive, its cached "endpoints we
    // wrote" feed the roaming rule of the first apply.
    this.#initNat();
    await this.#configure();
    await this.#discoverNat();
    this.#connect();
  }

  /**
   * Scans the declared hooks (actions.md §8.2) and records the valid ones' checksums next to the
   * binary baseline in checksums.json. A baseline write failure is logged; the scan still counts.
   */
  async #scanHooks(): Promise<HookScan> {
    const c = this.config;
    const scan = await scanHooks(c.hooks, { log: this.log.with({ subsystem: "hooks" }), ...(this.o.hookOwnerUid !== undefined ? { ownerUid: this.o.hookOwnerUid } : {}) });
    this.hooks = scan;
    if (scan.enabled) {
      if (c.hooks.definitions.length > 0) this.log.info("hooks scanned", { valid: scan.valid.map((h) => h.name), invalid: scan.invalid.map((h) => h.name) });
      try {
        updateBaselines(c.data_dir, (b) => mergeHookBaselines(b, scan));
      } catch (err) {
        this.log.warn("hook baselines not stored", { error: (err as Error).message });
      }
    }
    return scan;
  }

  /** The current CapabilitiesPayload (protocol.md §5): binary, 11 built-ins, valid hooks. */
  capabilities(): CapabilitiesPayload {
    if (this.o.capabilities) return this.o.capabilities(this.binaryChecksum);
    return buildCapabilities({ binaryChecksum: this.binaryChecksum, hooks: this.hooks?.valid ?? [], profile: this.config.compat.profile });
  }

  /** Stores the payload the CP acknowledged (registration or 2xx PUT) as the announced one. */
  #recordAnnounced(caps: CapabilitiesPayload | string | undefined): void {
    if (caps === undefined || !this.db) return;
    try {
      kvSet(this.db, ANNOUNCED_CAPABILITIES_KEY, typeof caps === "string" ? caps : JSON.stringify(caps));
    } catch (err) {
      this.log.warn("announced capabilities not recorded", { error: (err as Error).message });
    }
  }

  /**
   * Queues `PUT …/capabilities` (durable outbox, newest replaces a pending older one) when the
   * current payload differs from the announced one. Returns whether something was queued.
   */
  announceCapabilities(reason: string): boolean {
    const outbox = this.outbox;
    const db = this.db;
    if (!outbox || !db || !this.ctx.registered) return false;
    const body = JSON.stringify(this.capabilities());
    let announced: string | undefined;
    try {
      announced = kvGet(db, ANNOUNCED_CAPABILITIES_KEY);
    } catch {
      announced = undefined;
    }
    // Equal to the announced payload: nothing to send — unless an older payload is still
    // pending, which would otherwise overwrite the CP's (current) view when it is delivered.
    if (announced === body && db.query("SELECT 1 FROM outbox WHERE kind = ? AND status = 'pending'").get(CAPABILITIES_OUTBOX_KIND) === null) return false;
    try {
      outbox.enqueue({
        kind: CAPABILITIES_OUTBOX_KIND,
        dedupKey: CAPABILITIES_OUTBOX_KIND,
        method: "PUT",
        path: `/v1/nodes/${encodeURIComponent(this.ctx.identity.nodeId)}/capabilities`,
        body,
      });
      outbox.kick();
      this.log.info("capabilities update queued", { reason, hash: capabilitiesHash(body), hooks: this.hooks?.valid.length ?? 0 });
      return true;
    } catch (err) {
      this.log.error("capabilities update could not be queued", { error: (err as Error).message });
      return false;
    }
  }

  #initNat(): void {
    const mesh = this.mesh!;
    this.nat = createNatDiscovery({
      config: this.config,
      addon: this.addon,
      api: this.api,
      nodeId: () => this.ctx.identity.nodeId,
      mesh,
      keepaliveSec: () => peerKeepaliveSec(this.config, this.nat),
      log: this.log.with({ subsystem: "nat" }),
      onCpSuccess: () => this.cpMonitor.success(),
      onCycle: (r) => {
        // A new NAT type can change every peer's keepalive (keepaliveFor): re-apply then.
        if (r.ok && this.#lastKeepalive !== undefined && peerKeepaliveSec(this.config, this.nat) !== this.#lastKeepalive) void mesh.apply();
      },
      ...(this.o.natOverrides ? { overrides: this.o.natOverrides } : {}),
    });
    mesh.seedWrittenEndpoints(this.nat.state().appliedEndpoints);
  }

  /** `nat_discovery` (§5): first STUN result reported, or failed; 15 s total; failure → unknown. */
  async #discoverNat(): Promise<void> {
    this.#setPhase("nat_discovery");
    const nat = this.nat;
    if (!nat || !this.config.nat_traversal.enabled) return;
    const limit = 15_000;
    const r = await Promise.race([
      nat.discover({ reason: "start", deadlineMs: limit }),
      delay(limit + 1_000, this.#stop.signal).then(() => ({ ok: false as const, reason: "nat_discovery exceeded 15 s" })),
    ]);
    if (r.ok) this.log.info("NAT discovery", { nat_type: r.natType, public_endpoint: r.publicEndpoint, reported: r.reported });
    else this.log.warn("NAT discovery failed; continuing with nat type unknown", { reason: r.reason });
  }

  #initSigning(): void {
    const id = this.ctx.identity;
    this.signing?.close();
    this.signing = new SigningKeyStore({ dataDir: this.config.data_dir, initial: id.signingKeys, now: this.now });
  }

  async #register(reuse?: string): Promise<Identity> {
    this.#setPhase("registering");
    const extend = setInterval(() => this.#notify("EXTEND_TIMEOUT_USEC=60000000"), 30_000);
    this.#notify("EXTEND_TIMEOUT_USEC=60000000");
    this.#registering = (async () => {
      let sent: CapabilitiesPayload | undefined;
      try {
        const reg = await this.#waitAndRegister(this.config, reuse, (c) => (sent = c));
        this.#recordAnnounced(sent);
        this.ctx.set(reg.identity);
        this.cpMonitor.success();
        this.mesh!.commit({ peers: reg.peers, policies: [] });
        this.log.info("identity persisted", { node_id: reg.identity.nodeId, mesh_ip: reg.identity.meshIp, bootstrap_file_removed: reg.tokenFileDeleted });
        return reg.identity;
      } catch (err) {
        if (this.#stop.signal.aborted) throw err;
        if (err instanceof TokenError || err instanceof RegistrationError) {
          throw new AgentStartError(err.code, err.message, 1, { cause: err });
        }
        throw err;
      } finally {
        clearInterval(extend);
      }
    })();
    try {
      return await this.#registering;
    } finally {
      this.#registering = undefined;
    }
  }

  /** The running registration (for `plexd join` while registering). */
  get registering(): Promise<Identity> | undefined {
    return this.#registering;
  }

  /** `configuring` (§4): 30 s limit; failure → continue, retry 10 s → 60 s in the background. */
  async #configure(): Promise<void> {
    this.#setPhase("configuring");
    const mesh = this.mesh!;
    const attempt = async () => {
      const r = await Promise.race([mesh.apply(), delay(30_000).then(() => ({ corrections: [], errors: [{ step: "timeout", message: "configuring exceeded 30 s" }] }))]);
      return r.errors.length === 0;
    };
    const ok = await attempt();
    this.#notify("READY=1");
    if (ok) {
      this.log.info("mesh configured", { interface: this.config.mesh.interface, peers: mesh.desired().device.peers.length });
      return;
    }
    this.log.warn("configuring failed; continuing with the mesh unhealthy and retrying");
    this.#configureRetry = (async () => {
      let wait = 10_000;
      while (!this.#stop.signal.aborted) {
        await delay(wait, this.#stop.signal);
        if (this.#stop.signal.aborted) return;
        if (await attempt()) {
          this.log.info("mesh configured after retry");
          return;
        }
        wait = Math.min(wait * 2, 60_000);
      }
    })();
  }

  // ------------------------------------------------------------------------------------------
  // Connected (§6)

  #connect(): void {
    const c = this.config;
    const log = this.log;
    const mesh = this.mesh!;
    const signing = this.signing!;
    this.#setPhase("connected");
    const reconcileNow = (reason: string) => this.scheduler?.trigger(reason);

    this.auth = new AuthMonitor({
      log,
      heartbeatNow: () => this.heartbeat?.beatNow(),
      reregister: (token) => this.#reregister(token),
      onStateChange: (s) => {
        if (s === "unauthorized") void this.stream?.stop();
        else {
          this.#startStream();
          reconcileNow("auth_restored");
          this.outbox?.kick();
          void this.rotator?.resumeIfPending();
        }
      },
    });
    const auth = this.auth;
    this.rotator = new KeyRotator({ dataDir: c.data_dir, api: this.api, ctx: this.ctx, mesh, log, on401: () => auth.report401("keys/rotate") });
    this.reconciler = new Reconciler({
      api: this.api,
      nodeId: () => this.ctx.identity.nodeId,
      mesh,
      nodeState: this.nodeState,
      signing,
      paused: () => auth.unauthorized,
      onSuccess: () => {
        this.cpMonitor.success();
        auth.reportSuccess();
      },
      on401: () => auth.report401("state"),
      onFailure: (e) => this.cpMonitor.failure(e),
      log: log.with({ subsystem: "reconcile" }),
      ...(this.firewall ? { firewall: this.firewall } : {}),
    });
    const reconciler = this.reconciler;
    this.scheduler = new CycleScheduler({
      intervalMs: () => this.config.reconcile.interval,
      jitter: c.schedule.jitter,
      cycle: async (reason) => {
        await reconciler.cycle(reason);
      },
      onError: (err) => log.error("reconcile cycle crashed", { error: (err as Error).message }),
    });
    this.heartbeat = new HeartbeatLoop({
      api: this.api,
      intervalMs: () => this.config.heartbeat.interval,
      jitter: c.schedule.jitter,
      log: log.with({ subsystem: "heartbeat" }),
      facts: async () => {
        // protocol.md §6.3: `nat` omitted until the first STUN result.
        const nat = this.config.nat_traversal.enabled ? this.nat?.heartbeatNat() : undefined;
        return {
          nodeId: this.ctx.identity.nodeId,
          status: (await this.status()).health.status,
          uptimeMs: this.now() - this.startedAt,
          binaryChecksum: this.binaryChecksum,
          iface: c.mesh.interface,
          listenPort: c.mesh.listen_port,
          peerCount: await mesh.peerCount(),
          ...(nat ? { nat } : {}),
        };
      },
      onSuccess: () => {
        this.cpMonitor.success();
        auth.reportSuccess();
      },
      onReconcile: () => reconcileNow("heartbeat_directive"),
      onRotateKeys: () => void this.rotator?.trigger("heartbeat_directive"),
      on401: () => auth.report401("heartbeat"),
      onFailure: (e) => this.cpMonitor.failure(e),
    });

    // Journal + dispatcher: the only path from SSE bytes to handlers.
    const nonces = new NonceStore();
    this.journal = new Journal({
      db: this.db!,
      nodeId: () => this.ctx.identity.nodeId,
      keys: () => signing.trusted(),
      nonces,
      log: log.with({ subsystem: "journal" }),
      now: this.now,
      options: {
        ...DEFAULT_JOURNAL_OPTIONS,
        maxRetries: c.journal.max_retries,
        retryBaseMs: c.journal.retry_base,
        retryMaxMs: c.journal.retry_max,
        retentionMs: c.journal.retention,
        maxRows: c.journal.max_rows,
        dlqRetentionMs: c.journal.dlq_retention,
        maxDbBytes: c.journal.max_db_size,
      },
    });
    this.journal.seedNonces();
    this.dispatcher = new Dispatcher({
      journal: this.journal,
      mode: () => c.mode,
      log: log.with({ subsystem: "dispatcher" }),
      handlers: createHandlers({
        mesh,
        signing,
        nodeState: this.nodeState,
        triggerReconcile: reconcileNow,
        rotateKeys: (reason) => void this.rotator?.trigger(reason),
        log,
        now: this.now,
      }),
    });
    this.dispatcher.start();
    this.#timers.push(setInterval(() => nonces.cleanup(this.now()), 60_000));
    this.#timers.push(
      setInterval(() => {
        try {
          this.journal?.prune();
        } catch (err) {
          log.warn("journal prune failed", { error: (err as Error).message });
        }
      }, 3_600_000),
    );

    // Durable outbox: things owed to the CP (integrity violations here), drained with backoff.
    this.outbox = new Outbox({
      db: this.db!,
      nodeId: () => this.ctx.identity.nodeId,
      send: outboxSender(this.api, () => this.ctx.identity.nodeId, { onCapabilitiesDelivered: (body) => this.#recordAnnounced(body) }),
      log: log.with({ subsystem: "outbox" }),
      now: this.now,
    });
    if (this.#integrityViolation) {
      const v = this.#integrityViolation;
      this.#integrityViolation = undefined;
      try {
        this.outbox.enqueue(binaryViolationEntry(v, this.now(), this.ctx.identity.nodeId, (h) => formatChecksum(h, c.compat.profile)));
      } catch (err) {
        log.error("integrity violation could not be queued", { error: (err as Error).message });
      }
    }
    // §6.6 / actions.md §8.4: the startup checksums go out in the registration or, when the
    // payload differs from the last one the CP acknowledged, in one capabilities PUT.
    this.announceCapabilities("start");
    this.outbox.start();
    // §5.5 / §6: offline → online refreshes NAT (re-sends a pending report) and kicks the outbox.
    this.cpMonitor.onChange((now, prev) => {
      if (prev !== "offline" || now !== "online" || this.phase !== "connected") return;
      log.info("control plane reachable again");
      this.outbox?.kick();
      if (this.config.nat_traversal.enabled) void this.nat?.trigger("offline_to_online");
    });
    if (this.config.nat_traversal.enabled) this.nat?.start();

    this.heartbeat.start();
    this.scheduler.start();
    this.#startStream();
    // First reconcile right after the first SSE connect attempt.
    reconcileNow("connected");
    void this.rotator.resumeIfPending();
  }

  #startStream(): void {
    const c = this.config;
    const log = this.log.with({ subsystem: "sse" });
    if (this.stream && this.stream.state !== "stopped") return;
    if (this.#stop.signal.aborted || this.phase !== "connected") return;
    const intake = (items: (SseMessage | SseOversize)[]): void => {
      const results = this.journal!.intakeBatch(items);
      if (results.some((r) => r.verdict === "verified")) this.dispatcher!.kick();
    };
    this.stream ??= new EventStream({
      url: () => `${this.http.baseUrl}/v1/nodes/${encodeURIComponent(this.ctx.identity.nodeId)}/events`,
      token: () => this.ctx.bearer() ?? "",
      lastEventId: () => this.journal?.lastEventId(),
      version: VERSION,
      timing: { idleTimeoutMs: c.api.sse_idle_timeout, connectTimeoutMs: c.api.connect_timeout, pollIntervalMs: c.reconcile.interval },
      // The journal logs rejections ("security: event rejected") itself.
      onEvent: (item) => intake([item]),
      onEvents: (items) => intake(items),
      onConnected: () => {
        log.info("event stream connected", { last_event_id: this.journal?.lastEventId() });
        this.cpMonitor.success();
        this.auth?.reportSuccess();
        this.scheduler?.trigger("sse_connected");
        this.outbox?.kick();
      },
      onFailure: (f: StreamFailure) => this.#onStreamFailure(f),
      onStateChange: (s, prev) => log.debug("event stream state", { from: prev, to: s }),
      poll: async () => {
        await this.reconciler?.cycle("polling");
      },
      fetch: this.#streamFetch(),
    });
    void this.stream.start();
  }

  /** fetch for the SSE stream with the same TLS trust as the API client (api.ca_file). */
  #streamFetch(): (url: string, init: RequestInit) => Promise<Response> {
    const c = this.config.api;
    let tlsOpts: { ca?: string[]; rejectUnauthorized?: boolean } | undefined;
    if (c.ca_file) tlsOpts = { ca: [...rootCertificates, readFileSync(c.ca_file, "utf8")] };
    if (c.tls_insecure_skip_verify) tlsOpts = { ...tlsOpts, rejectUnauthorized: false };
    if (!tlsOpts) return (u, i) => fetch(u, i);
    const t = tlsOpts;
    return (u, i) => fetch(u, { ...i, tls: t } as RequestInit);
  }

  #onStreamFailure(f: StreamFailure): void {
    const log = this.log.with({ subsystem: "sse" });
    switch (f.kind) {
      case "unauthorized":
        this.auth?.report401("sse");
        break;
      case "node_unknown":
        this.cpMonitor.nodeUnknown = true;
        log.error("node not known to control plane; keeping cached state — run `plexd join` to re-enrol", { status: f.status });
        break;
      case "ended":
      case "idle_timeout":
        log.info("event stream closed; reconnecting", { reason: f.kind });
        break;
      default:
        log.warn("event stream failed", { reason: f.kind, ...("status" in f ? { status: f.status } : {}) });
    }
  }

  /** §11 step 3: re-register with the existing key; token from `plexd join` or the sources. */
  /** Registration and re-registration share every input but the config and the key. */
  #waitAndRegister(config: Config, reusePrivateKey: string | undefined, onSent: (c: CapabilitiesPayload) => void) {
    return waitAndRegister({
      config,
      env: this.o.env,
      ...(this.o.explicitTokenFile ? { explicitFile: this.o.explicitTokenFile } : {}),
      api: this.api,
      capabilities: () => {
        const c = this.capabilities();
        onSent(c);
        return c;
      },
      mailbox: this.mailbox,
      signal: this.#stop.signal,
      log: this.log,
      ...(reusePrivateKey ? { reusePrivateKey } : {}),
    });
  }

  async #reregister(token?: string): Promise<boolean> {
    const old = this.ctx.identity;
    if (token !== undefined) this.mailbox.put(token);
    let reg;
    let sent: CapabilitiesPayload | undefined;
    try {
      reg = await this.#waitAndRegister(
        { ...this.config, registration: { ...this.config.registration, token_wait: 0 } },
        old.privateKey,
        (c) => (sent = c),
      );
      this.#recordAnnounced(sent);
    } catch (err) {
      if (err instanceof TokenError && err.code === "no_token") {
        this.log.warn("unauthorized and no bootstrap token available — run `plexd join`");
        return false;
      }
      throw err;
    }
    const id = reg.identity;
    this.ctx.set(id);
    this.#initSigning();
    if (id.nodeId !== old.nodeId || id.meshIp !== old.meshIp) {
      this.log.warn("re-registration changed the node identity", { old_node_id: old.nodeId, node_id: id.nodeId, mesh_ip: id.meshIp });
      this.journal?.clearLastEventId();
      this.mesh!.commit({ peers: reg.peers });
      await this.mesh!.apply();
    }
    this.log.info("re-registered with the control plane", { node_id: id.nodeId });
    return true;
  }

  // ------------------------------------------------------------------------------------------
  // Reload (SIGHUP = service.reload_config, lifecycle.md §14.1)

  /**
   * Re-reads the configuration; keys marked R apply live, every other changed key keeps its
   * running value and is reported as restart_required. An invalid file changes nothing.
   */
  async reload(): Promise<ReloadPlan> {
    const load = this.o.reloadConfig;
    if (!load) throw new Error("configuration reload is not available in this process");
    let loaded: Config;
    try {
      loaded = await load();
    } catch (err) {
      this.log.error("configuration reload failed; keeping the running configuration", { error: (err as Error).message });
      throw err;
    }
    const plan = planReload(this.config, loaded);
    this.#config = plan.next;
    const c = this.config;
    const has = (prefix: string) => plan.applied.some((k) => k === prefix || k.startsWith(`${prefix}.`));
    if (has("log_level")) this.log.setLevel(c.log_level);
    if (has("log_format")) this.log.warn("log_format changes take effect after a restart of this build", { log_format: c.log_format });
    if (has("nat_traversal")) {
      await this.nat?.stop();
      if (this.mesh && this.ctx.registered) {
        this.#initNat();
        if (this.phase === "connected" && c.nat_traversal.enabled) {
          this.nat!.start();
          void this.nat!.trigger("reload");
        }
      }
    }
    if (has("hooks")) {
      // hooks.enabled / hooks.definitions are R (re-validated on reload): rescan, announce.
      await this.#scanHooks();
      if (this.phase === "connected" && c.hooks.auto_announce) this.announceCapabilities("reload");
    }
    if (has("policy.default") || has("policy.log_denied")) {
      await this.firewall?.reload().catch((err) => this.log.error("firewall reload failed", { error: (err as Error).message }));
    }
    if (this.mesh && this.ctx.registered && (has("policy") || has("mesh.persistent_keepalive") || has("nat_traversal"))) {
      const r = await this.mesh.apply();
      if (r.errors.length > 0) this.log.warn("mesh apply after reload had failing steps", { errors: r.errors });
    }
    this.log.info("configuration reloaded", { changed: plan.changed, applied: plan.applied });
    if (plan.restartRequired.length > 0) {
      this.log.warn("configuration keys changed that need a restart; running values kept", { restart_required: plan.restartRequired });
    }
    return plan;
  }

  // ------------------------------------------------------------------------------------------
  // join / deregister from the control socket

  /** `plexd join` handed a token to the daemon. */
  async join(token: string): Promise<{ node_id: string; mesh_ip: string; action: string }> {
    if (!this.ctx.registered || this.phase === "registering") {
      this.mailbox.put(token);
      const id = await (this.#registering ?? Promise.reject(new Error("daemon is not waiting for a token")));
      return { node_id: id.nodeId, mesh_ip: id.meshIp, action: "registered" };
    }
    if (this.auth?.unauthorized) {
      const ok = await this.auth.tryReregister(token);
      if (!ok) throw new Error("re-registration failed");
      return { node_id: this.ctx.identity.nodeId, mesh_ip: this.ctx.identity.meshIp, action: "re-registered" };
    }
    const e = new Error(`already registered as ${this.ctx.identity.nodeId}`) as Error & { code: string };
    e.code = "already_registered";
    throw e;
  }

  /**
   * `plexd deregister` through the daemon (§14.2). When the CP cannot be notified and --force
   * is absent, nothing is torn down and normal operation resumes.
   */
  deregister(flags: DeregisterFlags): Promise<DeregisterResult> {
    this.#deregistering ??= this.#deregister(flags).finally(() => {
      this.#deregistering = undefined;
    });
    return this.#deregistering;
  }

  async #deregister(flags: DeregisterFlags): Promise<DeregisterResult> {
    if (!this.ctx.registered) throw new Error("node is not registered");
    const previous = this.phase;
    this.#setPhase("deregistering");
    // 1. stop new work, 2. drain.
    await this.stream?.stop();
    await this.#drain();
    await this.dispatcher?.stop();
    const res = await deregisterNode(
      {
        api: this.api,
        nodeId: this.ctx.identity.nodeId,
        mesh: this.mesh!,
        dataDir: this.config.data_dir,
        tokenFiles: [this.config.token.file, ...(this.o.explicitTokenFile ? [this.o.explicitTokenFile] : [])],
        log: this.log,
        ...(this.o.systemctl !== undefined ? { systemctl: this.o.systemctl } : {}),
        // No reconcile, NAT write or firewall repair may rebuild what teardown removes.
        beforeTeardown: async () => {
          await Promise.all([this.scheduler?.stop(), this.nat?.stop(), this.firewall?.stop()]);
        },
        beforePurge: async () => {
          await this.#stopLoops();
          this.db?.close();
          this.db = undefined;
        },
      },
      flags,
    );
    if (!res.tornDown) {
      // Not notified and no --force: back to normal operation.
      this.#setPhase(previous);
      this.dispatcher?.start();
      this.#startStream();
      return res;
    }
    // 5. Stop subsystems; the daemon ends after answering.
    this.#stopRequested = { deregister: flags };
    setTimeout(() => this.#stop.abort(), 50);
    return res;
  }

  async #drain(): Promise<void> {
    const d = this.dispatcher;
    if (!d) return;
    const limit = this.config.shutdown.drain_timeout;
    const drained = await Promise.race([d.idle().then(() => true), delay(limit).then(() => false)]);
    if (!drained) this.log.warn("drain timeout reached; stopping with work outstanding", { drain_timeout_ms: limit });
  }

  async #stopLoops(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    this.auth?.close();
    await Promise.all([this.heartbeat?.stop(), this.scheduler?.stop(), this.stream?.stop(), this.nat?.stop(), this.outbox?.stop()]);
  }

  // ------------------------------------------------------------------------------------------
  // Stop (§14.1)

  async #shutdown(): Promise<number> {
    const dereg = this.#stopRequested?.deregister;
    const alreadyDeregistered = this.phase === "deregistering";
    if (dereg && !alreadyDeregistered && this.ctx.registered && this.mesh) {
      // shutdown.deregister_on_stop
      await this.deregister(dereg).catch((err) => this.log.error("deregister on stop failed", { error: (err as Error).message }));
    }
    if (!alreadyDeregistered) this.#setPhase("stopping");
    this.#notify("STOPPING=1");
    // 1. Stop intake: no new SSE events.
    await this.stream?.stop();
    // 2. Drain what the dispatcher is doing, bounded by shutdown.drain_timeout.
    await this.#drain();
    await this.dispatcher?.stop();
    // 3. Stop loops, registration wait, configure retries.
    await this.#stopLoops();
    await this.#configureRetry;
    await this.#closeAll();
    this.log.info("stopped", { phase: this.phase });
    return UP_EXIT.ok;
  }

  async #closeAll(): Promise<void> {
    if (this.#watchdog) clearInterval(this.#watchdog);
    this.#watchdog = undefined;
    await this.control.close().catch(() => undefined);
    await this.nat?.stop().catch(() => undefined);
    // The table stays (fail closed while the agent is down); only the watch ends.
    await this.firewall?.stop().catch(() => undefined);
    this.signing?.close();
    // The peers cache is written behind events (debounced): put the last change on disk.
    await this.mesh?.close().catch((err) => this.log.warn("peer cache flush at stop failed", { error: (err as Error).message }));
    // Leave the interface and table in place: kernel backend keeps forwarding; the userspace
    // wireguard-go ends with the service (its TUN link goes with it).
    await this.kernel?.close().catch(() => undefined);
    try {
      this.db?.close();
    } catch {
      /* already closed */
    }
    this.db = undefined;
  }
}
