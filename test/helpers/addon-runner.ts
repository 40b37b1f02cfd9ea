/**
 * Runs addon calls in a separate process (typically inside a netns via Netns.bun) and prints
 * one JSON line per call: {ok: true, value} or {ok: false, error: {...NativeError fields}}.
 *
 *   bun test/helpers/addon-runner.ts '[{"call":"linkAdd","args":["d0","dummy"]}]'
 *
 * Uint8Array values are printed as {"$bytes": "<hex>"}.
 */
import { loadAddon } from "../../src/kernel/addon.ts";
import { NativeError } from "../../src/kernel/errors.ts";

/** One call of the script's argv[2] JSON array. */
export interface AddonCall {
  call: string;
  args?: unknown[];
}

/** One output line. */
export type AddonCallResult =
  | { ok: true; value: unknown }
  | {
      ok: false;
      error: { name: string; message: string; isNativeError: boolean; code?: string; errno?: number; op?: string; object?: string };
    };

function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return { $bytes: Buffer.from(v).toString("hex") };
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

if (import.meta.main) {
  const calls = JSON.parse(process.argv[2] ?? "[]") as AddonCall[];
  const addon = loadAddon() as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const c of calls) {
    let line: AddonCallResult;
    try {
      const fn = addon[c.call];
      if (typeof fn !== "function") throw new Error(`no addon function ${c.call}`);
      line = { ok: true, value: plain(await fn(...(c.args ?? []))) };
    } catch (e) {
      const err = e as Error & Partial<NativeError>;
      line = {
        ok: false,
        error: {
          name: err.name,
          message: err.message,
          isNativeError: e instanceof NativeError,
          code: err.code,
          errno: err.errno,
          op: err.op,
          object: err.object,
        },
      };
    }
    console.log(JSON.stringify(line));
  }
}
