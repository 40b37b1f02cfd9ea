/** GET /v1/nodes/{node_id}/secrets/{key} — value encrypted under the node's NSK (nodeapi.md §6). */
import type { Cp } from "../context.ts";
import { authNode } from "../context.ts";
import type { Router } from "../router.ts";
import { json } from "../http.ts";
import { notFound } from "../errors.ts";
import { encryptForNode } from "../secrets-crypto.ts";

export function secretRoutes(cp: Cp, r: Router): void {
  r.on("GET", "/v1/nodes/{node_id}/secrets/{key}", ({ req, params }) => {
    const node = authNode(cp, req, params.node_id);
    const key = params.key as string;
    const s = cp.desired.secret(node.id, key);
    if (!s) throw notFound("unknown secret");
    const { ciphertext, nonce } = encryptForNode(node.nsk as string, s.value);
    return json({ key, ciphertext, nonce, version: s.version }, 200, { "cache-control": "no-store" });
  });
}
