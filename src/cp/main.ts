#!/usr/bin/env bun
/** plexd-cp: the reference control plane (`serve`) and its admin client (`admin`). */
import { parseArgs } from "./args.ts";
import { UsageError } from "./errors.ts";
import { serve } from "./serve-cli.ts";
import { runAdmin } from "./admin-cli.ts";

const USAGE = `usage:
  plexd-cp serve --db PATH [--listen 127.0.0.1:8443] [--tls|--no-tls] [--cert-dir DIR]
                 [--admin-token-file F] [--faults] [--heartbeat-interval 30s] [--sse-keepalive 15s]
                 [--ip-cooldown 24h] [--signing-transition 24h] [--min-version SEMVER]
  plexd-cp admin --url URL --token-file F [--ca-file F] <command>
    token create [--ttl D] | nodes list|show ID|remove ID | policy set FILE|get
    action send NODE ACTION [--param k=v]... [--timeout D] | executions list NODE
    metadata set NODE k=v... | data set NODE KEY JSON [--content-type T] | secret set NODE KEY VALUE
    keys rotate NODE [--via event|heartbeat|both] | signing rotate [--transition D] | signing show
    artifact upload VERSION ARCH FILE [--unsigned] | artifact list | events NODE [--after N]
    event send NODE TYPE PAYLOAD_JSON [--issued-at T] [--nonce N] | records list NODE KIND | reports list NODE
    faults list|clear | faults http PATTERN STATUS [--count N] [--retry-after S] | faults latency PATTERN MS
    faults sse NODE drop|stall|resume [--ms N] | faults event NODE forged|stale|replayed|malformed|oversized
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    if (cmd === "serve") {
      await serve(parseArgs(rest));
      return -1; // keep running
    }
    if (cmd === "admin") return await runAdmin(parseArgs(rest));
    process.stderr.write(USAGE);
    return cmd === undefined || cmd === "help" || cmd === "--help" ? 0 : 2;
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`plexd-cp: ${e.message}\n${USAGE}`);
      return 2;
    }
    process.stderr.write(`plexd-cp: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

const code = await main(process.argv.slice(2));
if (code >= 0) process.exit(code);
