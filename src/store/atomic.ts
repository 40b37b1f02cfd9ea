/**
 * The one atomic-write helper every state file goes through:
 * temp file in the same directory → write → fsync → rename → fsync directory.
 * A crash at any point leaves either the old or the new content, never a torn file.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync, chmodSync, statSync } from "node:fs";
import { dirname, basename, join } from "node:path";
import { randomBytes } from "node:crypto";
import { StoreError } from "./errors.ts";

export const FILE_MODE = 0o600;
export const DIR_MODE = 0o700;

/** Writes `data` to `path` atomically with mode 0600 (or `mode`). */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = FILE_MODE): void {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  let fd = -1;
  try {
    fd = openSync(tmp, "wx", mode);
    const buf = typeof data === "string" ? Buffer.from(data) : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = -1;
    chmodSync(tmp, mode); // umask may have narrowed or widened the create mode
    renameSync(tmp, path);
    fsyncDir(dir);
  } catch (err) {
    if (fd >= 0) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      /* already renamed or never created */
    }
    throw new StoreError("io", path, `atomic write failed: ${(err as Error).message}`, { cause: err });
  }
}

export function writeJsonAtomic(path: string, value: unknown, mode = FILE_MODE): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n", mode);
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Creates `dir` (and parents) with mode 0700, or tightens a wider existing mode.
 * Returns true when the mode had to be tightened (the caller warns).
 */
export function ensurePrivateDir(dir: string): boolean {
  mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  const mode = statSync(dir).mode & 0o777;
  if (mode !== DIR_MODE) {
    chmodSync(dir, DIR_MODE);
    return true;
  }
  return false;
}
