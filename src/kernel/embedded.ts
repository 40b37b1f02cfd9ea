/**
 * Loading the native addon embedded in the compiled executable.
 *
 * Bun would extract an embedded `.node` to `$TMPDIR/.bun-<uid>-<hash>.node` and load a
 * same-size file already there unchecked, so a planted file would run as root. Instead the
 * addon is embedded as a plain file asset, written to a root-only runtime directory (0700,
 * owned by us, not a symlink), its SHA-256 compared with the digest baked in at build time,
 * and only then dlopen'ed.
 */
import { lstatSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import embeddedAddon from "../../native/build/Release/plexd.addon" with { type: "file" };
import { ensurePrivateDir, writeFileAtomic } from "../store/atomic.ts";
import { sha256FileSync, sha256Hex } from "../util/checksum.ts";
import { ADDON_SHA256 } from "../version.ts";
import { openAddon } from "./addon.ts";
import type { NativeAddon } from "./addon-api.ts";

export class AddonLoadError extends Error {
  override name = "AddonLoadError";
  readonly code = "addon_load_failed";
}

/** Default runtime dir: `/run/plexd/native` as root; a per-user runtime dir otherwise. */
export function defaultNativeDir(env: Record<string, string | undefined> = process.env): string {
  if (process.getuid?.() === 0) return "/run/plexd/native";
  const base = env.XDG_RUNTIME_DIR || `/tmp/plexd-${process.getuid?.() ?? "user"}`;
  return join(base, "plexd", "native");
}

function checkPrivateDir(dir: string): void {
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.isSymbolicLink()) throw new AddonLoadError(`${dir}: not a directory`);
  if (st.uid !== process.getuid?.()) throw new AddonLoadError(`${dir}: owned by uid ${st.uid}, not us`);
  if ((st.mode & 0o077) !== 0) throw new AddonLoadError(`${dir}: mode ${(st.mode & 0o777).toString(8)} is not private`);
}

let cached: NativeAddon | undefined;

/**
 * Loads the addon once per process. `expectedSha256` defaults to the build-time digest; when
 * running from source (no digest baked in) the file is loaded from the build tree after the
 * same copy-and-verify steps, so both paths are exercised by tests.
 */
export function loadEmbeddedAddon(dir = defaultNativeDir(), expectedSha256 = ADDON_SHA256): NativeAddon {
  if (cached) return cached;
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(require("node:fs").readFileSync(embeddedAddon));
  } catch (err) {
    throw new AddonLoadError(`native addon not found (${embeddedAddon}); run \`npm run build:addon\``, { cause: err });
  }
  const digest = sha256Hex(bytes);
  if (expectedSha256 && digest !== expectedSha256) {
    throw new AddonLoadError(`embedded addon digest ${digest} does not match build digest ${expectedSha256}`);
  }
  // The parent (/run/plexd) also holds the sockets and stays 0755; only native/ is private.
  mkdirSync(dirname(dir), { recursive: true, mode: 0o755 });
  ensurePrivateDir(dir);
  checkPrivateDir(dir);
  const target = join(dir, `plexd-${digest.slice(0, 16)}.node`);
  writeFileAtomic(target, bytes, 0o500);
  // Verify what is on disk now, not what we meant to write.
  const onDisk = sha256FileSync(target);
  if (onDisk !== digest) throw new AddonLoadError(`${target}: digest changed after write`);
  cached = openAddon(target);
  return cached;
}
