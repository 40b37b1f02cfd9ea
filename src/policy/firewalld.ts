/**
 * firewalld coexistence. With firewalld running, its own base chains reject traffic from
 * interfaces outside trusted zones even after plexd accepted it (a drop/reject in any base
 * chain is final), so the mesh interface is put into firewalld's `trusted` zone — runtime
 * only (no permanent host change; re-asserted on start and after every firewalld reload,
 * which the nftables monitor sees as firewalld's table being recreated).
 *
 * Detection needs no D-Bus: a process whose comm is "firewalld". The change goes through
 * `firewall-cmd` (firewalld's own client; not ip/wg/nft). Absent binary → a warning.
 */
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";

/** What the enforcer needs from firewalld. */
export interface FirewalldControl {
  running(): Promise<boolean>;
  /** Zone of the interface, null when none / firewalld says so. */
  zoneOf(ifname: string): Promise<string | null>;
  /** Binds the interface to the trusted zone (runtime). */
  trust(ifname: string): Promise<void>;
}

/** A failed firewall-cmd call. */
export class FirewalldError extends Error {
  override name = "FirewalldError";
  readonly code = "FIREWALLD_FAILED";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export type Runner = (argv: string[]) => Promise<{ code: number; stdout: string; stderr: string }>;

const defaultRunner: Runner = async (argv) => {
  const p = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe", timeout: 15_000, killSignal: "SIGKILL" });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
};

/** True when a process named firewalld runs (reads /proc/<pid>/comm). */
export async function firewalldRunning(proc = "/proc"): Promise<boolean> {
  let pids: string[];
  try {
    pids = (await readdir(proc)).filter((d) => /^\d+$/.test(d));
  } catch {
    return false;
  }
  for (const pid of pids) {
    const comm = await readFile(`${proc}/${pid}/comm`, "utf8").catch(() => "");
    if (comm.trim() === "firewalld") return true;
  }
  return false;
}

/** The real control: process detection + firewall-cmd. */
export function systemFirewalld(opts: { cmd?: string; run?: Runner; proc?: string } = {}): FirewalldControl {
  const cmd = opts.cmd ?? "firewall-cmd";
  const run = opts.run ?? defaultRunner;
  return {
    running: () => firewalldRunning(opts.proc),
    async zoneOf(ifname) {
      const r = await run([cmd, `--get-zone-of-interface=${ifname}`]).catch((e: unknown) => {
        throw new FirewalldError(`${cmd} failed to start`, { cause: e });
      });
      return r.code === 0 ? r.stdout.trim() || null : null;
    },
    async trust(ifname) {
      // --change-interface adds the interface or moves it from another zone.
      const r = await run([cmd, "--zone=trusted", `--change-interface=${ifname}`]).catch((e: unknown) => {
        throw new FirewalldError(`${cmd} failed to start`, { cause: e });
      });
      if (r.code !== 0) throw new FirewalldError(`${cmd} --zone=trusted --change-interface=${ifname}: exit ${r.code}: ${r.stderr.trim()}`);
    },
  };
}

/** `/run/firewalld` exists (firewalld ran since boot); informational only. */
export function firewalldRunDir(): boolean {
  return existsSync("/run/firewalld");
}
