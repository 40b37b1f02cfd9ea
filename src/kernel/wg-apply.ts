/**
 * The one apply algorithm shared by every WireGuard backend: read actual → diff against the
 * whole desired device → write the minimal set → read back and verify. The read-back matters
 * most for UAPI, whose `set=1` is not atomic (lines before a failing one stay applied).
 */
import { checkIfname, KernelError } from "./kernel-error.ts";
import type { ApplyOptions, DesiredDevice, DeviceChanges, WgDevice, WgSet, WgSetPeer } from "./types.ts";
import { diffDevice, prepareDesired } from "./wg-diff.ts";

/** How a backend reads and writes a WireGuard device. */
export interface WgDriver {
  /** null when the device is absent. */
  get(ifname: string): Promise<WgDevice | null>;
  set(ifname: string, set: WgSet): Promise<void>;
}

/**
 * Writes peer sections exactly as given (add, update-only, remove) in one write; no read and no
 * read-back. The event fast path: the caller keeps its own model of what it applied and the
 * periodic whole-device apply ({@link applyWithDriver}) verifies against the device.
 */
export async function writePeersWithDriver(driver: WgDriver, ifname: string, peers: WgSetPeer[]): Promise<void> {
  checkIfname(ifname);
  if (peers.length === 0) return;
  await driver.set(ifname, { peers });
}

/** Applies `desired` through `driver`; see Kernel.applyDevice. */
export async function applyWithDriver(driver: WgDriver, desired: DesiredDevice, opts: ApplyOptions = {}): Promise<DeviceChanges> {
  checkIfname(desired.ifname);
  // Validate and normalise once: the plan and the verification diff against the same thing.
  const prepared = prepareDesired(desired);
  const actual = await driver.get(desired.ifname);
  if (actual === null) throw new KernelError("NO_DEVICE", `WireGuard device ${desired.ifname} does not exist`);
  // One clock reading for diff and verification, so the roaming rule decides the same way twice.
  const nowMs = (opts.now ?? Date.now)();
  const fixed: ApplyOptions = { ...opts, now: () => nowMs };
  const plan = diffDevice(actual, prepared, fixed);
  if (plan.changes.empty) return plan.changes;
  await driver.set(desired.ifname, plan.set);
  const back = await driver.get(desired.ifname);
  if (back === null) throw new KernelError("VERIFY_FAILED", `WireGuard device ${desired.ifname} vanished during apply`);
  const rest = diffDevice(back, prepared, fixed).changes;
  if (!rest.empty) {
    const what = [
      rest.privateKey && "private key",
      rest.listenPort && "listen port",
      rest.fwmark && "fwmark",
      rest.added.length > 0 && `${rest.added.length} peers missing`,
      rest.removed.length > 0 && `${rest.removed.length} peers extra`,
      rest.updated.length > 0 && `${rest.updated.length} peers differ (${rest.updated[0]!.fields.join(",")} …)`,
    ].filter(Boolean);
    throw new KernelError("VERIFY_FAILED", `read-back of ${desired.ifname} differs after apply: ${what.join("; ")}`);
  }
  return plan.changes;
}
