/**
 * Reading state files: a missing file is `undefined`; a present but truncated or corrupt file is
 * a StoreError naming the path — it is never silently replaced by a default.
 */
import { existsSync, readFileSync } from "node:fs";
import * as v from "valibot";
import { StoreError } from "./errors.ts";

export function readTextFile(path: string): string | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new StoreError("io", path, (err as Error).message, { cause: err });
  }
}

/** Reads and validates a JSON state file against `schema`. */
export function readJsonFile<S extends v.GenericSchema>(path: string, schema: S): v.InferOutput<S> | undefined {
  const text = readTextFile(path);
  if (text === undefined) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new StoreError("corrupt", path, `not valid JSON (truncated or corrupt): ${(err as Error).message}`, { cause: err });
  }
  const res = v.safeParse(schema, raw);
  if (!res.success) {
    const issue = res.issues[0];
    const where = issue?.path?.map((p) => String(p.key)).join(".") ?? "";
    throw new StoreError("corrupt", path, `unexpected content${where ? " at " + where : ""}: ${issue?.message ?? "invalid"}`);
  }
  return res.output;
}
