/**
 * Hooks subsystem (actions.md §8): declared hook scripts, their file checks and checksums.
 * This build scans at start and on reload; the inotify watcher, `plexd hooks …` commands and
 * execution come later.
 */
export { scanHooks, type HookScan, type ValidHook, type InvalidHook, type HookInvalidCode, type HooksConfig, type HookDefinition, type HookParameter, type ScanOptions } from "./scan.ts";
export { mergeHookBaselines } from "./baselines.ts";
