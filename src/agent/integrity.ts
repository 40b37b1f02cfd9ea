/**
 * Binary checksum at start (lifecycle.md §2 step 6): SHA-256 of the running executable,
 * compared with the baseline in `checksums.json`. No baseline → store it; a mismatch without a
 * pending upgrade → an integrity violation (reported by the caller). The periodic check and the
 * upgrade path belong to the integrity / upgrade subsystems.
 */
import { join } from "node:path";
import * as v from "valibot";
import { readJsonFile, writeJsonAtomic } from "../store/index.ts";
import { sha256FileSync } from "../util/checksum.ts";

/** Outcome of {@link checkBinaryBaseline}. */
export interface BaselineResult {
  readonly path: string;
  /** Lowercase hex. */
  readonly actual: string;
  readonly status: "stored" | "match" | "mismatch";
  readonly expected?: string;
}

/**
 * Hashes `binaryPath` (default: target of /proc/self/exe) and compares it with the baseline.
 * @throws StoreError when checksums.json is corrupt
 */
export function checkBinaryBaseline(dataDir: string, binaryPath = "/proc/self/exe", hash: (p: string) => string = sha256FileSync): BaselineResult {
  const actual = hash(binaryPath);
  const file = join(dataDir, "checksums.json");
  const baselines = readJsonFile(file, v.record(v.string(), v.string())) ?? {};
  // /proc/self/exe is a link; record under the real path so an upgrade helper finds it.
  const key = binaryPath === "/proc/self/exe" ? process.execPath : binaryPath;
  const expected = baselines[key];
  if (expected === undefined) {
    writeJsonAtomic(file, { ...baselines, [key]: actual });
    return { path: key, actual, status: "stored" };
  }
  if (expected.toLowerCase() === actual) return { path: key, actual, status: "match" };
  return { path: key, actual, status: "mismatch", expected };
}
