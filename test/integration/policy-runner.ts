/**
 * A long-lived Enforcer inside a network namespace, driven by the policy integration tests
 * (and bench/policy.ts): one JSON command per stdin line, one JSON reply per stdout line.
 *
 *   {"id":1,"cmd":"apply","desired":{…PolicySet},"options":{…}}  → {"id":1,"ok":true,"value":Corrections,"ms":…}
 *   {"cmd":"reconcile"} | {"cmd":"status"} | {"cmd":"watch"} | {"cmd":"unwatch"} | {"cmd":"stop"} | {"cmd":"options","options":{…}}
 *
 * Log lines go to stderr as JSON. The addon comes from PLEXD_TEST_ADDON or the build tree.
 */
import { loadAddon } from "../../src/kernel/addon.ts";
import { Enforcer, nftTarget, type EnforcerOptions, type PolicySet } from "../../src/policy/index.ts";

interface Cmd {
  id?: number;
  cmd: "apply" | "reconcile" | "status" | "watch" | "unwatch" | "stop" | "options";
  desired?: PolicySet;
  options?: EnforcerOptions;
}

const log = Object.fromEntries(
  (["debug", "info", "warn", "error"] as const).map((level) => [
    level,
    (msg: string, fields?: Record<string, unknown>) => process.stderr.write(JSON.stringify({ level, msg, ...fields }) + "\n"),
  ]),
) as unknown as ConstructorParameters<typeof Enforcer>[0]["log"];

if (import.meta.main) {
  const addon = process.env.PLEXD_TEST_ADDON ? loadAddon(process.env.PLEXD_TEST_ADDON) : loadAddon();
  const options: EnforcerOptions = JSON.parse(process.argv[2] ?? "{}");
  const enforcer = new Enforcer({ target: nftTarget(addon), log, options, firewalld: null });
  const reply = (o: unknown) => process.stdout.write(JSON.stringify(o) + "\n");
  reply({ ready: true, pid: process.pid });
  let buf = "";
  for await (const chunk of Bun.stdin.stream()) {
    buf += new TextDecoder().decode(chunk);
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (!line.trim()) continue;
      const c = JSON.parse(line) as Cmd;
      const t0 = performance.now();
      try {
        let value: unknown = null;
        if (c.cmd === "apply") value = await enforcer.apply(c.desired as PolicySet);
        else if (c.cmd === "reconcile") value = await enforcer.reconcile();
        else if (c.cmd === "status") value = await enforcer.status();
        else if (c.cmd === "watch") enforcer.startWatch();
        else if (c.cmd === "unwatch") await enforcer.stop();
        else if (c.cmd === "options") value = await enforcer.setOptions(c.options as EnforcerOptions);
        else if (c.cmd === "stop") {
          await enforcer.stop();
          reply({ id: c.id, ok: true, value: null, ms: performance.now() - t0 });
          process.exit(0);
        }
        reply({ id: c.id, ok: true, value, ms: performance.now() - t0 });
      } catch (e) {
        const err = e as Error & { code?: string };
        reply({ id: c.id, ok: false, error: { name: err.name, code: err.code, message: err.message } });
      }
    }
  }
  await enforcer.stop();
}
