import type { Command } from "../command.ts";
import { jsonData } from "../output.ts";
import { BUILT, BUN_VERSION, COMMIT, VERSION } from "../../version.ts";
import { formatChecksum, sha256FileSync } from "../../util/checksum.ts";
import { loadEmbeddedAddon } from "../../kernel/embedded.ts";

/** `plexd version [--json]`: build facts plus the self-checksum of the running executable. */
export const versionCommand: Command = {
  path: ["version"],
  summary: "print version, commit, build time, binary checksum, Bun and addon versions",
  async run({ io, json }) {
    const checksum = formatChecksum(sha256FileSync("/proc/self/exe"));
    let addon: string;
    try {
      addon = loadEmbeddedAddon().version();
    } catch (err) {
      addon = `unavailable (${(err as Error).message})`;
    }
    const data = { version: VERSION, commit: COMMIT, built: BUILT, checksum, bun: BUN_VERSION, addon };
    if (json) io.out(jsonData(data));
    else
      io.out(
        [
          `plexd ${VERSION} (commit ${COMMIT}, built ${BUILT}, bun ${BUN_VERSION})`,
          `checksum ${checksum}`,
          `addon    ${addon}`,
        ].join("\n"),
      );
    return 0;
  },
};
