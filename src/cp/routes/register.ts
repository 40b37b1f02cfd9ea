/** POST /v1/register (protocol.md §6.1). */
import type { Cp } from "../context.ts";
import type { Router } from "../router.ts";
import { bearer, json, readJson } from "../http.ts";
import { Register } from "../schema.ts";
import { unauthorized } from "../errors.ts";

export function registerRoutes(cp: Cp, r: Router): void {
  r.on("POST", "/v1/register", async ({ req }) => {
    const token = bearer(req);
    if (!token) throw unauthorized("bootstrap token required");
    const body = await readJson(req, Register);
    if (body.token.trim() !== token) throw unauthorized("bootstrap token in body and header differ");
    return json(cp.nodes.register({ ...body, token }), 201);
  });
}
