import { expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { formatChecksum, parseChecksum, sha256File, sha256FileSync } from "./checksum.ts";

test("file hashes equal node:crypto over sizes around the chunk boundary", async () => {
  const d = mkdtempSync(join(tmpdir(), "plexd-sum-"));
  try {
    for (const size of [0, 1, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 * (1 << 20) + 17]) {
      const data = randomBytes(size);
      const p = join(d, `f${size}`);
      writeFileSync(p, data);
      const want = createHash("sha256").update(data).digest("hex");
      expect(sha256FileSync(p)).toBe(want);
      expect(await sha256File(p)).toBe(want);
    }
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test("checksum wire forms", () => {
  const hex = "a".repeat(64);
  expect(formatChecksum(hex)).toBe(`sha256:${hex}`);
  expect(formatChecksum(hex, "legacy")).toBe(hex);
  expect(parseChecksum(`SHA256:${"A".repeat(64)}`)).toBe(hex);
  expect(parseChecksum(hex)).toBe(hex);
  expect(parseChecksum("sha256:abc")).toBeUndefined();
});
