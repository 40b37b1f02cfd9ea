/** `plexd-cp admin …`: a thin client of the admin HTTP API that prints JSON responses. */
import { readFileSync } from "node:fs";
import { flag, flagAll, has, type Parsed } from "./args.ts";
import { UsageError } from "./errors.ts";

interface Call {
  method: string;
  path: string;
  body?: unknown;
  raw?: Blob;
}

const enc = encodeURIComponent;

function kv(pairs: string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const i = p.indexOf("=");
    if (i <= 0) throw new UsageError(`${what}: expected k=v, got ${JSON.stringify(p)}`);
    out[p.slice(0, i)] = p.slice(i + 1);
  }
  return out;
}

function jsonArg(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`${what}: not valid JSON`);
  }
}

/** Maps a command line to one admin API call. */
export function adminCall(p: Parsed): Call {
  const [a = "", b = "", c, d, e] = p.positionals;
  const need = (x: string | undefined, name: string): string => {
    if (x === undefined) throw new UsageError(`missing ${name}`);
    return x;
  };
  switch (`${a} ${b}`) {
    case "token create":
      return { method: "POST", path: "/admin/tokens", body: { ...(flag(p, "ttl") ? { ttl: flag(p, "ttl") } : {}) } };
    case "nodes list":
      return { method: "GET", path: "/admin/nodes" };
    case "nodes show":
      return { method: "GET", path: `/admin/nodes/${enc(need(c, "NODE"))}` };
    case "nodes remove":
      return { method: "DELETE", path: `/admin/nodes/${enc(need(c, "NODE"))}` };
    case "policy set":
      return { method: "PUT", path: "/admin/policies", body: jsonArg(readFileSync(need(c, "FILE"), "utf8"), "policy file") };
    case "policy get":
      return { method: "GET", path: "/admin/policies" };
    case "action send": {
      const params = kv(flagAll(p, "param"), "--param");
      return {
        method: "POST",
        path: `/admin/nodes/${enc(need(c, "NODE"))}/actions`,
        body: { action: need(d, "ACTION"), parameters: params, ...(flag(p, "timeout") ? { timeout: flag(p, "timeout") } : {}) },
      };
    }
    case "metadata set":
      return { method: "PATCH", path: `/admin/nodes/${enc(need(c, "NODE"))}/metadata`, body: kv(p.positionals.slice(3), "metadata") };
    case "data set":
      return {
        method: "PUT",
        path: `/admin/nodes/${enc(need(c, "NODE"))}/data/${enc(need(d, "KEY"))}`,
        body: { payload: jsonArg(need(e, "JSON"), "data"), ...(flag(p, "content-type") ? { content_type: flag(p, "content-type") } : {}) },
      };
    case "secret set":
      return { method: "PUT", path: `/admin/nodes/${enc(need(c, "NODE"))}/secrets/${enc(need(d, "KEY"))}`, body: { value: need(e, "VALUE") } };
    case "keys rotate":
      return { method: "POST", path: `/admin/nodes/${enc(need(c, "NODE"))}/rotate-keys`, body: { ...(flag(p, "via") ? { via: flag(p, "via") } : {}) } };
    case "signing rotate":
      return { method: "POST", path: "/admin/signing/rotate", body: { ...(flag(p, "transition") ? { transition: flag(p, "transition") } : {}) } };
    case "signing show":
      return { method: "GET", path: "/admin/signing" };
    case "artifact upload":
      return {
        method: "PUT",
        path: `/admin/artifacts/${enc(need(c, "VERSION"))}/linux/${enc(need(d, "ARCH"))}${has(p, "unsigned") ? "?unsigned=1" : ""}`,
        raw: Bun.file(need(e, "FILE")),
      };
    case "artifact list":
      return { method: "GET", path: "/admin/artifacts" };
    case "executions list":
      return { method: "GET", path: `/admin/nodes/${enc(need(c, "NODE"))}/executions` };
    case "records list":
      return { method: "GET", path: `/admin/nodes/${enc(need(c, "NODE"))}/records/${enc(need(d, "KIND"))}` };
    case "reports list":
      return { method: "GET", path: `/admin/nodes/${enc(need(c, "NODE"))}/reports` };
    case "event send":
      return {
        method: "POST",
        path: `/admin/nodes/${enc(need(c, "NODE"))}/events`,
        body: {
          event_type: need(d, "TYPE"),
          payload_text: need(e, "PAYLOAD_JSON"),
          ...(flag(p, "issued-at") ? { issued_at: flag(p, "issued-at") } : {}),
          ...(flag(p, "nonce") ? { nonce: flag(p, "nonce") } : {}),
        },
      };
    case "faults list":
      return { method: "GET", path: "/admin/faults" };
    case "faults clear":
      return { method: "DELETE", path: "/admin/faults" };
    case "faults http":
      return {
        method: "POST",
        path: "/admin/faults/http",
        body: {
          pattern: need(c, "PATTERN"),
          status: Number(need(d, "STATUS")),
          ...(flag(p, "count") ? { count: Number(flag(p, "count")) } : {}),
          ...(flag(p, "retry-after") ? { retry_after: Number(flag(p, "retry-after")) } : {}),
          ...(flag(p, "method") ? { method: flag(p, "method") } : {}),
        },
      };
    case "faults latency":
      return {
        method: "POST",
        path: "/admin/faults/latency",
        body: { pattern: need(c, "PATTERN"), ms: Number(need(d, "MS")), ...(flag(p, "count") ? { count: Number(flag(p, "count")) } : {}) },
      };
    case "faults sse":
      return {
        method: "POST",
        path: `/admin/nodes/${enc(need(c, "NODE"))}/faults/sse`,
        body: { mode: need(d, "drop|stall|resume"), ...(flag(p, "ms") ? { ms: Number(flag(p, "ms")) } : {}) },
      };
    case "faults event":
      return { method: "POST", path: `/admin/nodes/${enc(need(c, "NODE"))}/faults/event`, body: { kind: need(d, "KIND") } };
  }
  if (a === "events") {
    return { method: "GET", path: `/admin/nodes/${enc(need(b || undefined, "NODE"))}/events?after=${Number(flag(p, "after") ?? 0)}` };
  }
  throw new UsageError(`unknown admin command: ${p.positionals.join(" ")}`);
}

/** Executes the call and prints the JSON answer; returns the process exit code. */
export async function runAdmin(p: Parsed): Promise<number> {
  const url = flag(p, "url");
  const tokenFile = flag(p, "token-file");
  if (!url || !tokenFile) throw new UsageError("admin: --url and --token-file are required");
  const call = adminCall(p);
  const token = readFileSync(tokenFile, "utf8").trim();
  const caFile = flag(p, "ca-file");
  const res = await fetch(url.replace(/\/+$/, "") + call.path, {
    method: call.method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(call.body !== undefined ? { "content-type": "application/json" } : {}),
    },
    body: call.raw ?? (call.body !== undefined ? JSON.stringify(call.body) : undefined),
    ...(caFile ? { tls: { ca: readFileSync(caFile, "utf8") } } : {}),
  } as RequestInit);
  const text = await res.text();
  let out: unknown;
  try {
    out = JSON.parse(text);
  } catch {
    out = { status: res.status, body: text };
  }
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  return res.ok ? 0 : 1;
}
