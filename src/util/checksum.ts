/**
 * SHA-256 of files, streamed in 1 MiB reads (never one 110 MB buffer for the agent's own binary).
 */
import { closeSync, openSync, readSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";

const CHUNK = 1 << 20;

/** Synchronous variant for start-up, where nothing else runs yet. */
export function sha256FileSync(path: string): string {
  const hasher = new Bun.CryptoHasher("sha256");
  const buf = Buffer.allocUnsafe(CHUNK);
  const fd = openSync(path, "r");
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (n <= 0) break;
      hasher.update(n === CHUNK ? buf : buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return hasher.digest("hex");
}

/** Asynchronous variant for periodic checks: reads off the JS thread, one chunk at a time. */
export async function sha256File(path: string): Promise<string> {
  const fh = await open(path, "r");
  try {
    return await sha256FileHandle(fh);
  } finally {
    await fh.close();
  }
}

/**
 * Hashes an already opened file from offset 0 (the hook checks of actions.md §8.2 hash the very
 * descriptor they fstat'ed, so the file cannot be swapped between check and hash). The caller
 * closes the handle.
 */
export async function sha256FileHandle(fh: FileHandle): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  const buf = Buffer.allocUnsafe(CHUNK);
  let pos = 0;
  for (;;) {
    const { bytesRead } = await fh.read(buf, 0, CHUNK, pos);
    if (bytesRead <= 0) break;
    pos += bytesRead;
    hasher.update(bytesRead === CHUNK ? buf : buf.subarray(0, bytesRead));
  }
  return hasher.digest("hex");
}

export function sha256Hex(data: Uint8Array | string): string {
  return new Bun.CryptoHasher("sha256").update(data).digest("hex");
}

/** Checksum as emitted on the wire: `sha256:<hex>` (standard) or bare hex (legacy profile). */
export function formatChecksum(hex: string, profile: "standard" | "legacy" = "standard"): string {
  return profile === "legacy" ? hex : `sha256:${hex}`;
}

/** Accepts both wire forms, case-insensitive; returns lowercase hex or undefined. */
export function parseChecksum(s: string): string | undefined {
  const m = /^(?:sha256:)?([0-9a-f]{64})$/i.exec(s.trim());
  return m ? m[1]!.toLowerCase() : undefined;
}
