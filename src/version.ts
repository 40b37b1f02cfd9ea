/**
 * Build information. `build/compile` bakes these in with `bun build --define`; running from
 * source falls back to package.json and "dev" values.
 */
import pkg from "../package.json" with { type: "json" };

declare const PLEXD_VERSION: string | undefined;
declare const PLEXD_COMMIT: string | undefined;
declare const PLEXD_BUILT: string | undefined;
declare const PLEXD_ADDON_SHA256: string | undefined;

export const VERSION: string = typeof PLEXD_VERSION === "string" ? PLEXD_VERSION : pkg.version;
export const COMMIT: string = typeof PLEXD_COMMIT === "string" ? PLEXD_COMMIT : "dev";
export const BUILT: string = typeof PLEXD_BUILT === "string" ? PLEXD_BUILT : "dev";
/** SHA-256 of the addon embedded at build time; undefined when running from source. */
export const ADDON_SHA256: string | undefined = typeof PLEXD_ADDON_SHA256 === "string" ? PLEXD_ADDON_SHA256 : undefined;
export const BUN_VERSION: string = Bun.version;
