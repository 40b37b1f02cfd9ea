/**
 * Loading the native addon from the build tree (development and tests). The compiled binary
 * loads its embedded copy through embedded.ts; both go through openAddon so the error class
 * hand-over happens exactly once, in one place.
 */
import { fileURLToPath } from "node:url";
import type { NativeAddon, NativeAddr, NativeLink, NativeRoute } from "./addon-api.ts";
import { NativeError } from "./errors.ts";

/** Default location of the freshly built addon (`bash build/addon`). */
export const BUILD_ADDON_PATH = fileURLToPath(new URL("../../native/build/Release/plexd.node", import.meta.url));

/** Exports the addon has beyond NativeAddon: init plumbing and test hooks. */
export interface AddonInternals {
  setErrorClass(cls: typeof NativeError): void;
  /** Test hook: nl_parse_attrs over raw bytes; [type, payload length] of each kept attribute. */
  _nlParseAttrs(buf: Uint8Array, max: number): Array<[number, number]>;
  /**
   * Test hook: the rtnetlink dump decoders (rtnl.c) over raw reply messages, without a socket.
   * `filter` is the ifindex (addr) or table (route) the list calls take; 0/absent = all.
   * Returns what linkList/addrList/routeList would; throws NativeError on malformed input.
   */
  _rtnlParse(kind: "link", messages: Uint8Array[], filter?: number): NativeLink[];
  _rtnlParse(kind: "addr", messages: Uint8Array[], filter?: number): NativeAddr[];
  _rtnlParse(kind: "route", messages: Uint8Array[], filter?: number): NativeRoute[];
}

const REQUIRED = ["version", "setErrorClass", "linkList", "wgBuildSet", "wgParseGet", "sdNotify"] as const;

const opened = new Map<string, NativeAddon & AddonInternals>();

/**
 * dlopens the addon at `path` and hands it the NativeError class so every native failure
 * arrives as a NativeError instance. Opening the same path again returns the same object
 * (a shared object can only be initialised once per process).
 */
export function openAddon(path: string): NativeAddon & AddonInternals {
  const known = opened.get(path);
  if (known) return known;
  const mod: { exports: Record<string, unknown> } = { exports: {} };
  process.dlopen(mod, path);
  for (const name of REQUIRED) {
    if (typeof mod.exports[name] !== "function") {
      throw new Error(`native addon ${path} lacks ${name}(); rebuild it with \`bash build/addon\``);
    }
  }
  const addon = mod.exports as unknown as NativeAddon & AddonInternals;
  addon.setErrorClass(NativeError);
  opened.set(path, addon);
  return addon;
}

/** Loads the addon from the build tree (or `path`). */
export function loadAddon(path: string = BUILD_ADDON_PATH): NativeAddon & AddonInternals {
  return openAddon(path);
}
