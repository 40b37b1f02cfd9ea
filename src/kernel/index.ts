/**
 * Builds the Kernel: picks the WireGuard backend (lifecycle.md §4.1) and wires the shared
 * pieces — rtnetlink links (addon) for both backends, WireGuard via genetlink (addon) or
 * wireguard-go UAPI. nftables goes through policy/target.ts (NftTable), not through here.
 */
import { randomBytes } from "node:crypto";
import type { NativeAddon } from "./addon-api.ts";
import { checkIfname, KernelError } from "./kernel-error.ts";
import { RtnlLinks } from "./links.ts";
import type {
  ApplyOptions,
  DesiredDevice,
  DeviceChanges,
  EnsureResult,
  InterfaceOptions,
  InterfaceState,
  Kernel,
  KernelLog,
  KernelRoute,
  SetResult,
  WgDevice,
  WgSetPeer,
} from "./types.ts";
import { DEFAULT_SOCKET_DIR, UapiClient } from "./uapi.ts";
import { applyWithDriver, writePeersWithDriver, type WgDriver } from "./wg-apply.ts";
import { nativeWgDriver } from "./wg-native.ts";
import { WireguardGo } from "./wireguard-go.ts";

export type * from "./types.ts";
export { FakeKernel } from "./fake.ts";
export { KernelError } from "./kernel-error.ts";
export { UapiError } from "./uapi-codec.ts";
export { diffDevice, keepRoamedEndpoint, normaliseDesiredPeer, prepareDesired, ROAMING_WINDOW_MS, type LastWrittenEndpoint, type NormPeer, type PreparedDevice } from "./wg-diff.ts";

/** Options of createKernel; defaults in brackets. */
export interface CreateKernelOptions {
  /** "auto" = kernel when a wireguard link can be created, else userspace. */
  backend: "auto" | "kernel" | "userspace";
  /** The native addon; null only for userspace-WireGuard-only use (tests): link ops then fail NO_ADDON. */
  addon: NativeAddon | null;
  /** ["wireguard-go"] (`mesh.wireguard_go_path`). */
  wireguardGoPath?: string;
  /** Full wireguard-go command line per interface [path, "-f", ifname]; tests run it in a netns. */
  wireguardGoArgv?: (ifname: string) => string[];
  /** ["/var/run/wireguard"]. */
  socketDir?: string;
  /** Called after a supervised wireguard-go restarted (empty); re-apply the full configuration. */
  onRestart?: (ifname: string) => void | Promise<void>;
  /** wireguard-go start wait [5000 ms] and restart backoff [1000 → 30000 ms]. */
  startTimeoutMs?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  log?: KernelLog;
  /** wireguard-go's log output ["discard"]; "log" forwards its lines at debug level (see WireguardGoOptions.output). */
  wireguardGoOutput?: "discard" | "log";
}

/**
 * Tries to create (and deletes again) a throw-away link of kind wireguard. Returns the error
 * code when that fails — EOPNOTSUPP on machines without the module.
 */
export async function probeKernelWireguard(addon: NativeAddon): Promise<{ ok: true } | { ok: false; code: string }> {
  const name = `pxprobe${randomBytes(3).toString("hex")}`;
  try {
    await addon.linkAdd(name, "wireguard");
  } catch (err) {
    return { ok: false, code: String((err as { code?: unknown }).code ?? (err as Error).message) };
  }
  await addon.linkDel(name).catch(() => undefined);
  return { ok: true };
}

/** Creates the Kernel for the chosen (or detected) backend. */
export async function createKernel(opts: CreateKernelOptions): Promise<Kernel> {
  let backend: "kernel" | "userspace";
  if (opts.backend === "auto") {
    if (opts.addon === null) {
      backend = "userspace";
    } else {
      const probe = await probeKernelWireguard(opts.addon);
      backend = probe.ok ? "kernel" : "userspace";
      opts.log?.info("WireGuard backend selected", { backend, ...(probe.ok ? {} : { kernelUnavailable: probe.code }) });
    }
  } else {
    backend = opts.backend;
  }
  if (backend === "kernel" && opts.addon === null) throw new KernelError("NO_ADDON", "kernel WireGuard backend needs the native addon");
  return new RealKernel(backend, opts);
}

/** Kernel over the addon (links, nft, kernel WireGuard) and/or wireguard-go (userspace WireGuard). */
class RealKernel implements Kernel {
  private readonly driver: WgDriver;
  private readonly uapi: UapiClient;
  private readonly links: RtnlLinks | null;
  private readonly supervisors = new Map<string, WireguardGo>();

  constructor(
    readonly backend: "kernel" | "userspace",
    private readonly opts: CreateKernelOptions,
  ) {
    this.uapi = new UapiClient({ socketDir: opts.socketDir ?? DEFAULT_SOCKET_DIR });
    this.links = opts.addon ? new RtnlLinks(opts.addon) : null;
    this.driver = backend === "kernel" ? nativeWgDriver(opts.addon!) : this.uapi;
  }

  private rtnl(): RtnlLinks {
    if (!this.links) throw new KernelError("NO_ADDON", "link, address and route operations need the native addon");
    return this.links;
  }

  async readDevice(ifname: string): Promise<WgDevice | null> {
    checkIfname(ifname);
    return this.driver.get(ifname);
  }

  async applyDevice(desired: DesiredDevice, opts?: ApplyOptions): Promise<DeviceChanges> {
    return applyWithDriver(this.driver, desired, opts);
  }

  async ensureInterface(name: string, opts: InterfaceOptions): Promise<EnsureResult> {
    checkIfname(name);
    const links = this.rtnl();
    let result: EnsureResult;
    if (this.backend === "kernel") {
      result = await links.ensureKind(name, "wireguard");
    } else {
      result = await this.ensureWireguardGo(name);
    }
    await links.configure(name, opts.mtu);
    return result;
  }

  private async ensureWireguardGo(name: string): Promise<EnsureResult> {
    const sup = this.supervisors.get(name);
    if (sup) {
      await sup.start();
      return "adopted";
    }
    if ((await this.uapi.get(name)) !== null) {
      // A wireguard-go we did not start (e.g. left by a crashed agent) already serves the
      // socket; a second one could not bind it. Adopt it, unsupervised.
      this.opts.log?.warn("adopting a running wireguard-go that this agent did not start; it is not supervised", { ifname: name });
      return "adopted";
    }
    const link = await this.rtnl().find(name);
    if (link) {
      throw new KernelError("WRONG_LINK_KIND", `interface ${name} exists (kind ${JSON.stringify(link.kind)}) without a wireguard-go serving it`);
    }
    const wg = new WireguardGo({
      ifname: name,
      ...(this.opts.wireguardGoArgv ? { argv: this.opts.wireguardGoArgv(name) } : {}),
      ...(this.opts.wireguardGoPath ? { path: this.opts.wireguardGoPath } : {}),
      socketDir: this.uapi.socketDir,
      ...(this.opts.startTimeoutMs ? { startTimeoutMs: this.opts.startTimeoutMs } : {}),
      ...(this.opts.backoffInitialMs ? { backoffInitialMs: this.opts.backoffInitialMs } : {}),
      ...(this.opts.backoffMaxMs ? { backoffMaxMs: this.opts.backoffMaxMs } : {}),
      ...(this.opts.onRestart ? { onRestart: this.opts.onRestart } : {}),
      ...(this.opts.log ? { log: this.opts.log } : {}),
      ...(this.opts.wireguardGoOutput ? { output: this.opts.wireguardGoOutput } : {}),
    });
    this.supervisors.set(name, wg);
    try {
      await wg.start();
    } catch (err) {
      this.supervisors.delete(name);
      await wg.stop();
      throw err;
    }
    return "created";
  }

  async deleteInterface(name: string): Promise<void> {
    checkIfname(name);
    this.uapi.closeConnections(name);
    const sup = this.supervisors.get(name);
    if (sup) {
      // wireguard-go's TUN link disappears with the process.
      this.supervisors.delete(name);
      await sup.stop();
      return;
    }
    await this.rtnl().delete(name);
  }

  async setAddresses(ifname: string, cidrs: string[]): Promise<SetResult> {
    return this.rtnl().setAddresses(ifname, cidrs);
  }

  async setRoutes(ifname: string, routes: KernelRoute[]): Promise<SetResult> {
    return this.rtnl().setRoutes(ifname, routes);
  }

  async readInterface(ifname: string): Promise<InterfaceState | null> {
    return this.rtnl().readInterface(ifname);
  }

  async updatePeers(ifname: string, peers: WgSetPeer[]): Promise<void> {
    checkIfname(ifname);
    await this.driver.set(ifname, { peers: peers.map((p) => ({ ...p, updateOnly: true })) });
  }

  async applyPeers(ifname: string, peers: WgSetPeer[]): Promise<void> {
    await writePeersWithDriver(this.driver, ifname, peers);
  }

  async close(): Promise<void> {
    const sups = [...this.supervisors.values()];
    this.supervisors.clear();
    this.uapi.closeConnections();
    await Promise.all(sups.map((s) => s.stop()));
  }
}
