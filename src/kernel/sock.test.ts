/**
 * The addon's socket/process calls: sdNotify (datagram bytes checked by a python3 receiver,
 * since Bun cannot receive Unix datagrams), peerCred (node:net and Bun.listen fds, peer in a
 * child process, optionally under another uid), execve (same PID, exact argv/env).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadAddon } from "./addon.ts";
import type { NativeAddon } from "./addon-api.ts";
import { NativeError } from "./errors.ts";

const PYTHON = Bun.which("python3");
const SETPRIV = Bun.which("setpriv");
// The client under another uid cannot run a python behind /root (pyenv shims): system one.
const SYS_PYTHON = ["/usr/bin/python3", "/bin/python3"].find((p) => Bun.file(p).size > 0);
const BUN = resolve(import.meta.dir, "../../node_modules/.bin/bun");

let addon: NativeAddon;
let dir: string;
beforeAll(() => {
  addon = loadAddon();
  dir = mkdtempSync(join(tmpdir(), "plexd-sock-"));
  chmodSync(dir, 0o755);
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Reads a child's stdout until `marker` appears; returns everything read so far. */
async function readUntil(stream: ReadableStream<Uint8Array>, marker: string, acc: { text: string }): Promise<void> {
  const reader = stream.getReader();
  const dec = new TextDecoder();
  try {
    while (!acc.text.includes(marker)) {
      const { value, done } = await reader.read();
      if (done) break;
      acc.text += dec.decode(value);
    }
  } finally {
    reader.releaseLock();
  }
}

/** A python3 AF_UNIX datagram receiver: prints "ready", then the hex of one datagram. */
function receiver(address: string): Bun.Subprocess<"ignore", "pipe", "pipe"> {
  const code = [
    "import socket,sys",
    "s=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)",
    `a=${JSON.stringify(address)}`,
    "s.bind('\\0'+a[1:] if a.startswith('@') else a)",
    "s.settimeout(10)",
    "print('ready',flush=True)",
    "print(s.recv(65536).hex(),flush=True)",
  ].join("\n");
  return Bun.spawn([PYTHON!, "-c", code], { stdin: "ignore", stdout: "pipe", stderr: "pipe", timeout: 15_000 });
}

describe.skipIf(!PYTHON)("sdNotify", () => {
  const saved = process.env.NOTIFY_SOCKET;
  afterAll(() => {
    if (saved === undefined) delete process.env.NOTIFY_SOCKET;
    else process.env.NOTIFY_SOCKET = saved;
  });

  for (const kind of ["path", "abstract"] as const) {
    test(`sends the exact state bytes as one datagram (${kind} socket)`, async () => {
      const address = kind === "path" ? join(dir, `notify-${kind}.sock`) : `@plexd-test-notify-${process.pid}-${Date.now()}`;
      const p = receiver(address);
      try {
        const out = { text: "" };
        await readUntil(p.stdout, "ready\n", out);
        process.env.NOTIFY_SOCKET = address;
        const state = "READY=1\nSTATUS=up — 3 peers\nMAINPID=" + process.pid;
        expect(addon.sdNotify(state)).toBe(true);
        await readUntil(p.stdout, "\n", (out.text = out.text.replace("ready\n", ""), out));
        await p.exited;
        expect(out.text.trim()).toBe(Buffer.from(state, "utf8").toString("hex"));
      } finally {
        p.kill("SIGKILL");
      }
    });
  }

  test("returns false without NOTIFY_SOCKET, NativeError when nobody listens", () => {
    delete process.env.NOTIFY_SOCKET;
    expect(addon.sdNotify("READY=1")).toBe(false);
    process.env.NOTIFY_SOCKET = join(dir, "nobody.sock");
    let caught: unknown;
    try {
      addon.sdNotify("READY=1");
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(NativeError);
    expect((caught as NativeError).code).toBe("ENOENT");
    expect((caught as NativeError).op).toBe("sock.sd_notify");
    process.env.NOTIFY_SOCKET = "relative/path";
    expect(() => addon.sdNotify("READY=1")).toThrow(NativeError);
  });
});

/** A python3 client that connects to `path` and sleeps; argv prefix lets it run under setpriv. */
function client(path: string, prefix: string[] = [], python = PYTHON!): Bun.Subprocess<"ignore", "pipe", "pipe"> {
  const code = `import socket,time\ns=socket.socket(socket.AF_UNIX)\ns.connect(${JSON.stringify(path)})\nprint('connected',flush=True)\ntime.sleep(10)`;
  return Bun.spawn([...prefix, python, "-c", code], { stdin: "ignore", stdout: "pipe", stderr: "pipe", timeout: 15_000 });
}

describe.skipIf(!PYTHON)("peerCred", () => {
  test("node:net server: fd from socket._handle.fd, pid/uid/gid of the connecting child", async () => {
    const path = join(dir, "cred-net.sock");
    const got = Promise.withResolvers<ReturnType<NativeAddon["peerCred"]>>();
    const srv = net.createServer((s) => {
      try {
        const fd = (s as unknown as { _handle?: { fd?: number } })._handle?.fd;
        if (typeof fd !== "number" || fd < 0) throw new Error(`no fd on node:net socket (${fd})`);
        got.resolve(addon.peerCred(fd));
      } catch (e) {
        got.reject(e);
      }
      s.destroy();
    });
    await new Promise<void>((r) => srv.listen(path, r));
    const child = client(path);
    try {
      const cred = await got.promise;
      expect(cred).toEqual({ pid: child.pid, uid: process.getuid!(), gid: process.getgid!() });
    } finally {
      child.kill("SIGKILL");
      srv.close();
    }
  });

  test.skipIf(!SETPRIV || !SYS_PYTHON || process.getuid?.() !== 0)("Bun.listen server: fd from socket.fd; child under uid/gid 65534", async () => {
    const path = join(dir, "cred-bun.sock");
    const got = Promise.withResolvers<ReturnType<NativeAddon["peerCred"]>>();
    const l = Bun.listen({
      unix: path,
      socket: {
        open(s) {
          try {
            // `fd` exists at runtime (Bun 1.4) but is missing from the bun-types Socket declaration.
            got.resolve(addon.peerCred((s as unknown as { fd: number }).fd));
          } catch (e) {
            got.reject(e);
          }
          s.end();
        },
        data() {},
      },
    });
    chmodSync(path, 0o777);
    const child = client(path, [SETPRIV!, "--reuid=65534", "--regid=65534", "--clear-groups"], SYS_PYTHON);
    try {
      // A child that dies before connecting fails the test instead of timing it out.
      const died = child.exited.then(async (c) => {
        throw new Error(`client exited ${c}: ${await new Response(child.stderr).text()}`);
      });
      const cred = await Promise.race([got.promise, died]);
      // setpriv execs python in place: the child PID is the peer.
      expect(cred).toEqual({ pid: child.pid, uid: 65534, gid: 65534 });
    } finally {
      child.kill("SIGKILL");
      l.stop(true);
    }
  });

  test("a non-socket fd is ENOTSOCK, a closed one EBADF", () => {
    const f = join(dir, "plain");
    writeFileSync(f, "x");
    const fd = require("node:fs").openSync(f, "r") as number;
    try {
      expect(() => addon.peerCred(fd)).toThrow(expect.objectContaining({ code: "ENOTSOCK", op: "sock.peer_cred" }));
    } finally {
      require("node:fs").closeSync(fd);
    }
    expect(() => addon.peerCred(9999)).toThrow(expect.objectContaining({ code: "EBADF" }));
  });
});

describe("execve", () => {
  test("replaces the process image in place (same PID), exact argv and env", async () => {
    const script = join(dir, "exec.ts");
    writeFileSync(
      script,
      `import { loadAddon } from ${JSON.stringify(resolve(import.meta.dir, "addon.ts"))};
const a = loadAddon();
console.log("before " + process.pid);
try { a.execve("/nonexistent/plexd", ["x"], []); } catch (e) { console.log("failed " + e.name + " " + e.code + " " + e.op); }
a.execve("/bin/sh", ["sh", "-c", 'echo "after $$ $FOO $#"', "arg0", "a b"], ["FOO=bar baz", "PATH=/usr/bin:/bin"]);
console.log("not reached");
`,
    );
    const p = Bun.spawn([BUN, script], { stdout: "pipe", stderr: "pipe", timeout: 20_000 });
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    expect(err).toBe("");
    expect(code).toBe(0);
    const lines = out.trim().split("\n");
    expect(lines).toEqual([`before ${p.pid}`, "failed NativeError ENOENT sock.execve", `after ${p.pid} bar baz 1`]);
  });
});
