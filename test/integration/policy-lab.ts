/**
 * Lab for the policy integration tests: node namespaces joined by a bridge in a hub namespace,
 * each node's link named like the mesh interface ("plexd0") with a 10.100.0.x address, and a
 * client for test/integration/policy-runner.ts (an Enforcer running inside a namespace).
 */
import { resolve } from "node:path";
import type { Subprocess } from "bun";
import { BUN, Netns, REPO_ROOT } from "../helpers/netns.ts";

export const RUNNER = resolve(REPO_ROOT, "test/integration/policy-runner.ts");
export const MESH_IF = "plexd0";

export interface Lab {
  hub: Netns;
  nodes: Netns[];
  remove(): Promise<void>;
}

/** Hub with bridge br0; node i gets `plexd0` = 10.100.0.(i+1)/16. */
export async function createLab(count: number): Promise<Lab> {
  const hub = await Netns.create("plexd-pol-hub");
  const nodes: Netns[] = [];
  const lab: Lab = {
    hub,
    nodes,
    async remove() {
      await Promise.all([...nodes.map((n) => n.remove()), hub.remove()]);
    },
  };
  try {
    await hub.ip("link", "add", "br0", "type", "bridge");
    await hub.ip("link", "set", "br0", "up");
    for (let i = 0; i < count; i++) {
      const n = await Netns.create(`plexd-pol-${String.fromCharCode(97 + i)}`);
      nodes.push(n);
      await hub.ip("link", "add", `p${i}`, "type", "veth", "peer", "name", MESH_IF, "netns", n.name);
      await hub.ip("link", "set", `p${i}`, "master", "br0", "up");
      await n.ip("addr", "add", `10.100.0.${i + 1}/16`, "dev", MESH_IF);
      await n.ip("link", "set", MESH_IF, "up");
    }
  } catch (e) {
    await lab.remove();
    throw e;
  }
  return lab;
}

/** Line-protocol client of policy-runner.ts. */
export class RunnerClient {
  private lines: string[] = [];
  private waiters: Array<(l: string) => void> = [];
  private nextId = 1;
  stderr = "";
  private constructor(readonly proc: Subprocess<"pipe", "pipe", "pipe">) {}

  static async start(ns: Netns, options: Record<string, unknown>, env: Record<string, string> = {}): Promise<RunnerClient> {
    const proc = Bun.spawn(["ip", "netns", "exec", ns.name, BUN, RUNNER, JSON.stringify(options)], {
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, ...env },
    });
    const c = new RunnerClient(proc);
    void c.pump();
    void (async () => {
      for await (const ch of proc.stderr) c.stderr += new TextDecoder().decode(ch);
    })();
    const first = JSON.parse(await c.next(10_000)) as { ready?: boolean };
    if (!first.ready) throw new Error(`runner did not start: ${c.stderr}`);
    return c;
  }

  private async pump(): Promise<void> {
    let buf = "";
    for await (const ch of this.proc.stdout) {
      buf += new TextDecoder().decode(ch);
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const l = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const w = this.waiters.shift();
        if (w) w(l);
        else this.lines.push(l);
      }
    }
  }

  private next(timeoutMs: number): Promise<string> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    return new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error(`runner: no reply in ${timeoutMs} ms; stderr: ${this.stderr.slice(-2000)}`)), timeoutMs);
      this.waiters.push((x) => {
        clearTimeout(t);
        res(x);
      });
    });
  }

  /** Sends a command and returns its value (throws on {ok:false}). */
  async call<T = unknown>(cmd: string, extra: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<{ value: T; ms: number }> {
    const id = this.nextId++;
    this.proc.stdin.write(JSON.stringify({ id, cmd, ...extra }) + "\n");
    this.proc.stdin.flush();
    const r = JSON.parse(await this.next(timeoutMs)) as { id: number; ok: boolean; value: T; ms: number; error?: unknown };
    if (!r.ok) throw new Error(`runner ${cmd}: ${JSON.stringify(r.error)}`);
    return { value: r.value, ms: r.ms };
  }

  /** SIGKILL of the runner (and its `ip netns exec` parent exec'd into bun: same PID). */
  kill(): void {
    this.proc.kill("SIGKILL");
  }

  async exited(): Promise<number> {
    return this.proc.exited;
  }
}

/** Python TCP echo server on the given ports inside ns (runs until killed). */
export function echoServer(ns: Netns, ports: number[]): Subprocess {
  const py = `
import socket, threading, sys
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=echo, args=(c,), daemon=True).start()
def echo(c):
    try:
        while True:
            d = c.recv(4096)
            if not d: break
            c.sendall(d)
    finally:
        c.close()
for p in ${JSON.stringify(ports)}:
    threading.Thread(target=serve, args=(p,), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
`;
  return Bun.spawn(["ip", "netns", "exec", ns.name, "python3", "-c", py], { stdout: "pipe", stderr: "pipe" });
}

/** Waits for the first stdout chunk of a spawned helper. */
export async function firstLine(p: Subprocess, timeoutMs = 5000): Promise<string> {
  const reader = (p.stdout as ReadableStream<Uint8Array>).getReader();
  const t = setTimeout(() => reader.cancel(), timeoutMs);
  const { value } = await reader.read();
  clearTimeout(t);
  reader.releaseLock();
  return new TextDecoder().decode(value ?? new Uint8Array());
}

/** The rest of a helper's stdout (after firstLine), until it closes. */
export async function restOf(p: Subprocess): Promise<string> {
  const reader = (p.stdout as ReadableStream<Uint8Array>).getReader();
  let out = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return out;
    out += new TextDecoder().decode(value);
  }
}

/** True when a TCP connect + echo from `ns` to ip:port succeeds within timeoutMs. */
export async function canConnect(ns: Netns, ip: string, port: number, timeoutMs = 700): Promise<boolean> {
  const py = `
import socket, sys
try:
    s = socket.create_connection((${JSON.stringify(ip)}, ${port}), timeout=${timeoutMs / 1000})
    s.sendall(b"x"); ok = s.recv(1) == b"x"; s.close()
    sys.exit(0 if ok else 1)
except Exception:
    sys.exit(1)
`;
  const r = await ns.exec(["python3", "-c", py], { timeoutMs: timeoutMs + 5000 });
  return r.code === 0;
}

/**
 * A long-lived TCP client in ns: connects, then every `intervalMs` sends one byte and waits for
 * the echo, for `durationMs`. Prints "ok N" or "fail N <error>" and exits.
 */
export function longClient(ns: Netns, ip: string, port: number, durationMs: number, intervalMs = 50): Subprocess {
  const py = `
import socket, time, sys
s = socket.create_connection((${JSON.stringify(ip)}, ${port}), timeout=2)
print("connected", flush=True)
n = 0
end = time.time() + ${durationMs / 1000}
try:
    while time.time() < end:
        s.sendall(b"y")
        if s.recv(1) != b"y": raise Exception("bad echo")
        n += 1
        time.sleep(${intervalMs / 1000})
    print("ok", n, flush=True)
except Exception as e:
    print("fail", n, e, flush=True); sys.exit(1)
`;
  return Bun.spawn(["ip", "netns", "exec", ns.name, "python3", "-c", py], { stdout: "pipe", stderr: "pipe" });
}

export { REPO_ROOT, Netns };
