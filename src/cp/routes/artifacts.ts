/** GET /v1/artifacts/plexd/{version}/{os}/{arch} (protocol.md §6.17, lifecycle.md §13.2). */
import { sign } from "node:crypto";
import type { Cp } from "../context.ts";
import { authNode } from "../context.ts";
import type { Router } from "../router.ts";
import { notFound } from "../errors.ts";
import { artifactMessage, validArtifactName } from "../artifacts.ts";

export function artifactRoutes(cp: Cp, r: Router): void {
  r.on("GET", "/v1/artifacts/plexd/{version}/{os}/{arch}", ({ req, params }) => {
    authNode(cp, req, undefined);
    const { version = "", os = "", arch = "" } = params;
    const a = validArtifactName(version, os, arch) ? cp.artifacts.get(version, os, arch) : undefined;
    if (!a) throw notFound("artifact not found");
    const headers: Record<string, string> = {
      "content-type": "application/octet-stream",
      "content-length": String(a.size),
      "x-plexd-artifact-sha256": `sha256:${a.sha256}`,
    };
    if (a.signed) {
      // Signed at download time with the current key, so the signature follows key rotation.
      headers["x-plexd-artifact-signature"] = sign(
        null,
        Buffer.from(artifactMessage(a)),
        cp.keys.current().privateKey,
      ).toString("base64");
    }
    return new Response(Bun.file(a.path), { status: 200, headers });
  });
}
