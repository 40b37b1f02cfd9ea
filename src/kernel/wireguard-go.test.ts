import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UapiClient } from "./uapi.ts";
import { WireguardGo, type WireguardGoOptions } from "./wireguard-go.ts";

// A stand-in for wireguard-go: serves a UAPI socket in FAKE_WG_DIR like the real one (removing
// a stale socket first, unlinking on SIGTERM), or misbehaves as FAKE_WG_MODE says.
const dir = mkdtempSync(join(tmpdir(), "plexd-wggo-"));
const script = join(dir, "fake-wireguard-go.ts");
writeFileSync(
  script,
  `import { unlinkSync } from "node:fs";
const ifname = process.argv[3];
const mode = process.env.FAKE_WG_MODE ?? "serve";
if (mode === "exit") process.exit(3);
if (mode === "silent") { setInterval(() => {}, 1000); } else {
  const path = process.env.FAKE_WG_DIR + "/" + ifname + ".sock";
  try { unlinkSync(path); } catch {}
  Bun.listen({ unix: path, socket: { data(s) { s.write("listen_port=1\\nerrno=0\\n\\n"); } } });
  process.on("SIGTERM", () => { try { unlinkSync(path); } catch {} process.exit(0); });
}
`,
);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function sup(ifname: string, mode: string, extra: Partial<WireguardGoOptions> = {}): WireguardGo {
  return new WireguardGo({
    ifname,
    argv: [process.execPath, script, "-f", ifname],
    socketDir: dir,
    env: { FAKE_WG_DIR: dir, FAKE_WG_MODE: mode },
    ...extra,
  });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("WireguardGo supervisor", () => {
  test("start waits for the socket; stop kills by PID and leaves no socket", async () => {
    const s = sup("fk0", "serve");
    await s.start();
    const pid = s.pid!;
    expect(alive(pid)).toBe(true);
    expect(await new UapiClient({ socketDir: dir }).get("fk0")).toMatchObject({ listenPort: 1 });
    await s.start(); // idempotent
    expect(s.pid).toBe(pid);
    await s.stop();
    expect(alive(pid)).toBe(false);
    expect(existsSync(join(dir, "fk0.sock"))).toBe(false);
  });

  test("killed hard: restarted after backoff, onRestart called, stale socket handled", async () => {
    const restarted: string[] = [];
    const s = sup("fk1", "serve", { backoffInitialMs: 50, onRestart: (n) => void restarted.push(n) });
    await s.start();
    const pid = s.pid!;
    process.kill(pid, "SIGKILL");
    const deadline = Date.now() + 5000;
    while (restarted.length === 0 && Date.now() < deadline) await Bun.sleep(20);
    expect(restarted).toEqual(["fk1"]);
    expect(s.restarts).toBe(1);
    expect(s.pid).not.toBe(pid);
    await s.stop();
    expect(existsSync(join(dir, "fk1.sock"))).toBe(false);
  });

  test("stop cancels a pending restart", async () => {
    const restarted: string[] = [];
    const s = sup("fk2", "serve", { backoffInitialMs: 300, onRestart: (n) => void restarted.push(n) });
    await s.start();
    process.kill(s.pid!, "SIGKILL");
    await Bun.sleep(50);
    await s.stop();
    await Bun.sleep(400);
    expect(restarted).toEqual([]);
    expect(s.pid).toBeNull();
  });

  test("process exiting during start → WG_GO_START without waiting for the timeout", async () => {
    const s = sup("fk3", "exit", { startTimeoutMs: 5000 });
    const t0 = Date.now();
    await expect(s.start()).rejects.toMatchObject({ name: "KernelError", code: "WG_GO_START" });
    expect(Date.now() - t0).toBeLessThan(3000);
    await s.stop();
  });

  test("no socket within the timeout → WG_GO_START and the process is killed", async () => {
    const s = sup("fk4", "silent", { startTimeoutMs: 300 });
    await expect(s.start()).rejects.toMatchObject({ code: "WG_GO_START", message: expect.stringMatching(/300 ms/) });
    expect(s.pid).toBeNull();
    await s.stop();
  });

  test("refuses --help and bad options", () => {
    expect(() => new WireguardGo({ ifname: "x0", argv: ["wireguard-go", "--help"] })).toThrow(/--help/);
    expect(() => new WireguardGo({ ifname: "../etc" })).toThrow(/interface name/);
    expect(() => new WireguardGo({ ifname: "x0", backoffInitialMs: 0 })).toThrow(/backoffInitialMs/);
  });
});
