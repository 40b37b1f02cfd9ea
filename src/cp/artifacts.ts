/** Upgrade artifacts: files beside the DB, metadata (SHA-256, size) in SQLite. */
import { createHash } from "node:crypto";
import { mkdirSync, renameSync, rmSync, openSync, writeSync, closeSync, fsyncSync } from "node:fs";
import { join } from "node:path";
import type { Db } from "./db.ts";
import { HttpError } from "./errors.ts";

export interface ArtifactRow {
  version: string;
  os: string;
  arch: string;
  sha256: string;
  size: number;
  path: string;
  signed: number;
}

const VERSION = /^[0-9A-Za-z.+-]{1,64}$/;

/** True for a version/arch pair that may name an artifact. */
export function validArtifactName(version: string, os: string, arch: string): boolean {
  return VERSION.test(version) && os === "linux" && (arch === "amd64" || arch === "arm64");
}

/** The message signed for an artifact (lifecycle.md §13.2). */
export const artifactMessage = (a: { version: string; arch: string; sha256: string }) =>
  `plexd-artifact:v1:${a.version}:linux:${a.arch}:${a.sha256}`;

export class Artifacts {
  constructor(
    private readonly db: Db,
    private readonly dir: string,
    private readonly now: () => number = Date.now,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  get(version: string, os: string, arch: string): ArtifactRow | undefined {
    return (
      (this.db.query("SELECT * FROM artifacts WHERE version = ? AND os = ? AND arch = ?").get(version, os, arch) as
        | ArtifactRow
        | null) ?? undefined
    );
  }

  list(): ArtifactRow[] {
    return this.db.query("SELECT * FROM artifacts ORDER BY version, arch").all() as ArtifactRow[];
  }

  /** Streams `body` to disk while hashing; at most `limit` bytes. */
  async store(
    version: string,
    arch: string,
    body: ReadableStream<Uint8Array> | null,
    limit: number,
    signed: boolean,
  ): Promise<ArtifactRow> {
    const final = join(this.dir, `plexd-${version}-linux-${arch}`);
    const tmp = `${final}.part`;
    const hash = createHash("sha256");
    const fd = openSync(tmp, "w", 0o600);
    let size = 0;
    try {
      if (body) {
        const reader = body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          size += value.byteLength;
          if (size > limit) {
            await reader.cancel().catch(() => {});
            throw new HttpError(413, "payload_too_large", `artifact exceeds ${limit} bytes`);
          }
          hash.update(value);
          writeSync(fd, value);
        }
      }
      fsyncSync(fd);
    } catch (e) {
      closeSync(fd);
      rmSync(tmp, { force: true });
      throw e;
    }
    closeSync(fd);
    renameSync(tmp, final);
    const row: ArtifactRow = { version, os: "linux", arch, sha256: hash.digest("hex"), size, path: final, signed: signed ? 1 : 0 };
    this.db
      .query(
        `INSERT INTO artifacts (version, os, arch, sha256, size, path, signed, uploaded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(version, os, arch) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size, path = excluded.path,
         signed = excluded.signed, uploaded_at = excluded.uploaded_at`,
      )
      .run(row.version, row.os, row.arch, row.sha256, row.size, row.path, row.signed, this.now());
    return row;
  }
}
