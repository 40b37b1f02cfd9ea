/**
 * Hook entries of `checksums.json` (`{ "<path>": "<sha256 hex>" }`, shared with the binary
 * baseline). The scan owns every key inside its resolved `hooks.dir`: those are replaced by the
 * current valid hooks (a removed or now-invalid hook loses its entry); other keys — the binary —
 * are left untouched. Pure: the caller reads and writes the file through the one helper.
 */
import type { HookScan } from "./scan.ts";

/** Returns `current` with the hook entries replaced by the result of `scan`. */
export function mergeHookBaselines(current: Readonly<Record<string, string>>, scan: HookScan): Record<string, string> {
  const prefix = scan.dir.endsWith("/") ? scan.dir : `${scan.dir}/`;
  const next: Record<string, string> = {};
  for (const [k, v] of Object.entries(current)) if (!k.startsWith(prefix)) next[k] = v;
  for (const h of scan.valid) next[h.path] = h.checksum;
  return next;
}
