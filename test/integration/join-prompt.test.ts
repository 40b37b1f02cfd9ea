/**
 * `plexd join` on a terminal (src/cli/commands/prompt.ts): with no --token-file/--token-stdin and
 * stdin a TTY, it asks "Bootstrap token: " and reads the token with echo off. Driven through a
 * real pseudo-terminal (python3's pty module: the child gets the pty as its controlling terminal
 * and stdin/stdout/stderr, exactly as in an interactive shell) against the real reference CP,
 * with no daemon running so join registers directly. Checks: the token never appears in what the
 * terminal shows, backspace edits the hidden input, the typed token is the one the CP consumed
 * (node registered, identity written), and the terminal's echo is restored afterwards.
 *
 * Keys are typed only after the pty's ECHO flag went off: prompt.ts prints the question before
 * it calls setRawMode, so a token pasted the instant the prompt appears can be echoed (a race
 * seen while writing this test; fix in prompt.ts: raw mode first, then the question).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { IdentityFiles } from "../../src/identity/files.ts";
import { call, startCp, type CpProc } from "./cp-harness.ts";

const ROOT = resolve(import.meta.dir, "../..");
const BUN = join(ROOT, "node_modules/.bin/bun");
const RUN = Math.random().toString(36).slice(2, 8);
const PYTHON = Bun.which("python3");

/**
 * pty driver: forks argv on a new pty, waits for the prompt, types the keystrokes (each chunk
 * written separately, as a person types), collects everything the terminal shows until the
 * child exits, and prints JSON: exit code, output (base64), and ECHO/ICANON of the pty before
 * the child ran and after it exited (tcgetattr on the master reads the shared termios).
 */
const DRIVER = String.raw`
import base64, json, os, pty, select, sys, termios, time
spec = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    os.environ.clear(); os.environ.update(spec["env"])
    os.execv(spec["argv"][0], spec["argv"])
def flags():
    a = termios.tcgetattr(fd); return {"echo": bool(a[3] & termios.ECHO), "icanon": bool(a[3] & termios.ICANON)}
before = flags()
out = b""
def pump(until=None, limit=30.0):
    global out
    end = time.time() + limit
    while time.time() < end:
        if until is not None and until in out: return True
        r, _, _ = select.select([fd], [], [], 0.1)
        if fd in r:
            try: chunk = os.read(fd, 4096)
            except OSError: return False
            if not chunk: return False
            out += chunk
    return until is None
prompted = pump(spec["prompt"].encode(), 60.0)
# Type only once the program has switched echo off: prompt.ts writes the question before it
# calls setRawMode, so keys sent the instant the prompt shows can still be echoed (see report).
end = time.time() + 10.0
while prompted and flags()["echo"] and time.time() < end:
    pump(b"\0never", 0.02)
during = flags()
if prompted:
    for k in spec["keys"]:
        os.write(fd, k.encode("latin1")); time.sleep(0.05)
pump(None, 60.0)
_, status = os.waitpid(pid, 0)
after = flags()
print(json.dumps({"prompted": prompted, "code": os.waitstatus_to_exitcode(status), "out": base64.b64encode(out).decode(),
                  "before": before, "during": during, "after": after}))
`;

interface DriverResult {
  prompted: boolean;
  code: number;
  out: string;
  before: { echo: boolean; icanon: boolean };
  during: { echo: boolean; icanon: boolean };
  after: { echo: boolean; icanon: boolean };
}

async function onPty(argv: string[], keys: string[], env: Record<string, string>): Promise<DriverResult & { text: string }> {
  const p = Bun.spawn([PYTHON!, "-c", DRIVER, JSON.stringify({ argv, keys, env, prompt: "Bootstrap token: " })], {
    stdout: "pipe",
    stderr: "pipe",
    cwd: ROOT,
    timeout: 150_000,
  });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`pty driver exit ${code}: ${err}`);
  const r = JSON.parse(out) as DriverResult;
  return { ...r, text: Buffer.from(r.out, "base64").toString("latin1") };
}

let cp: CpProc;
let tmp: string;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), `plexd-join-pty-${RUN}-`));
  cp = await startCp();
});
afterAll(async () => {
  await cp?.cleanup(); // by PID; removes the CP's temp dir
  rmSync(tmp, { recursive: true, force: true });
});

function agentConfig(name: string): { configPath: string; dataDir: string; hostname: string } {
  const base = join(tmp, name);
  const dataDir = join(base, "data");
  const hostname = `join-pty-${RUN}-${name}`;
  const configPath = join(tmp, `${name}.yaml`);
  writeFileSync(
    configPath,
    [
      `api: {url: ${cp.url}}`,
      `data_dir: ${dataDir}`,
      `hostname: ${hostname}`,
      // No configured token source: the prompt is the only way in.
      `token: {file: ${join(base, "no-such-token")}, metadata: false}`,
      `actions: {socket: ${join(base, "plexd.sock")}}`,
      `hooks: {dir: ${join(base, "hooks.d")}, watch: false}`,
      "integrity: {enabled: false}",
    ].join("\n"),
  );
  return { configPath, dataDir, hostname };
}

/** Minimal environment: no PLEXD_* token variables leak in from the test runner. */
const childEnv = (): Record<string, string> => ({ PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tmp, TERM: "xterm", NO_COLOR: "1" });

describe.skipIf(PYTHON === null)(`plexd join: hidden token prompt on a pty${PYTHON ? "" : " (skipped: python3 not found)"}`, () => {
  test("typed token is not echoed, backspace works, the CP consumes exactly that token", async () => {
    const token = (await call(cp, "POST", "/admin/tokens", { token: cp.adminToken, body: { ttl: "10m" } })).json.token as string;
    expect(typeof token).toBe("string");
    const { configPath, dataDir, hostname } = agentConfig("a");
    // A typo fixed with backspace, typed in three chunks, finished with Enter (CR in raw mode).
    const cut = Math.floor(token.length / 2);
    const keys = [token.slice(0, cut), "Q\x7f", `${token.slice(cut)}\r`];
    const r = await onPty([BUN, join(ROOT, "src/main.ts"), "join", "--config", configPath], keys, childEnv());

    expect(`prompted=${r.prompted} exit=${r.code}\n${r.text}`).toStartWith("prompted=true exit=0\n");
    // Echo off while reading: neither the token nor any part of it reaches the screen.
    expect(r.text).not.toContain(token);
    expect(r.text).not.toContain(token.slice(0, 8));
    expect(r.text).not.toContain(token.slice(-8));
    expect(r.text).not.toContain("Q");
    expect(r.before.echo).toBe(true); // the pty starts cooked …
    expect(r.during).toEqual({ echo: false, icanon: false }); // … and the prompt switched to raw, no echo
    // Terminal restored afterwards.
    expect(r.after).toEqual(r.before);

    // Used: the node registered under our hostname with that token, identity on disk.
    const m = /node_id: (\S+)\r?\nmesh_ip: (\S+)/.exec(r.text);
    expect(m).not.toBeNull();
    const nodes = (await call(cp, "GET", "/admin/nodes", { token: cp.adminToken })).json.nodes as Array<{ id: string; hostname: string; mesh_ip: string }>;
    expect(nodes.find((n) => n.hostname === hostname)).toMatchObject({ id: m![1], mesh_ip: m![2] });
    expect(JSON.parse(readFileSync(join(dataDir, IdentityFiles.identity), "utf8")).node_id).toBe(m![1]!);

    // Single use: the same token typed again is refused by the CP (so it really was consumed).
    const again = agentConfig("b");
    const r2 = await onPty([BUN, join(ROOT, "src/main.ts"), "join", "--config", again.configPath], [`${token}\r`], childEnv());
    expect(r2.prompted).toBe(true);
    expect(r2.code).not.toBe(0);
    expect(r2.text).not.toContain(token);
  }, 180_000);

  test("a wrong token typed at the prompt is rejected and nothing is registered", async () => {
    const { configPath, dataDir } = agentConfig("c");
    const r = await onPty([BUN, join(ROOT, "src/main.ts"), "join", "--config", configPath], ["plxb_not_a_real_token_0000\r"], childEnv());
    expect(r.prompted).toBe(true);
    expect(r.code).not.toBe(0);
    expect(r.text).not.toContain("plxb_not_a_real_token_0000");
    expect(existsSync(join(dataDir, IdentityFiles.identity))).toBe(false);
    expect(r.after).toEqual(r.before);
  }, 180_000);
});
