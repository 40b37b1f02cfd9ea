/** Exit codes (config.md §4.4). */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  daemonDown: 3,
  unavailable: 69,
  noPerm: 77,
  config: 78,
} as const;
