/** Node-scoped endpoints without their own module: heartbeat, deregister, keys, capabilities,
 * endpoint, state, drift, ping (protocol.md §6.3–§6.9, §6.18). */
import type { Cp } from "../context.ts";
import { authNode } from "../context.ts";
import type { Router } from "../router.ts";
import { json, readJson } from "../http.ts";
import { Capabilities, Drift, Endpoint, Heartbeat, KeyRotate } from "../schema.ts";
import { badRequest } from "../errors.ts";

export function nodeRoutes(cp: Cp, r: Router): void {
  r.on("POST", "/v1/nodes/{node_id}/heartbeat", async ({ req, params }) => {
    const node = authNode(cp, req, params.node_id);
    const body = await readJson(req, Heartbeat);
    if (body.node_id !== node.id) throw badRequest("node_id in body does not match the path");
    return json(cp.nodes.heartbeat(node.id, body));
  });

  r.on("POST", "/v1/nodes/{node_id}/deregister", ({ req, params }) => {
    const node = authNode(cp, req, params.node_id);
    cp.nodes.remove(node.id);
    return json({ deregistered: true, node_id: node.id });
  });

  r.on("POST", "/v1/keys/rotate", async ({ req }) => {
    const self = authNode(cp, req, undefined);
    const body = await readJson(req, KeyRotate);
    // Same order as node paths: the NSK must belong to the named node.
    authNode(cp, req, body.node_id);
    return json({ updated_peers: cp.nodes.rotateKey(self.id, body.new_public_key) });
  });

  r.on("PUT", "/v1/nodes/{node_id}/capabilities", async ({ req, params }) => {
    const node = authNode(cp, req, params.node_id);
    cp.nodes.setCapabilities(node.id, await readJson(req, Capabilities));
    return json({ updated: true });
  });

  r.on("PUT", "/v1/nodes/{node_id}/endpoint", async ({ req, params }) => {
    const node = authNode(cp, req, params.node_id);
    const body = await readJson(req, Endpoint);
    return json({ peer_endpoints: cp.nodes.setEndpoint(node.id, body.public_endpoint, body.nat_type) });
  });

  r.on("GET", "/v1/nodes/{node_id}/state", ({ req, params }) => {
    const node = authNode(cp, req, params.node_id);
    return json({
      peers: cp.nodes.peersOf(node.id),
      policies: cp.policies.list(),
      signing_keys: cp.keys.state(),
      metadata: cp.desired.metadata(node.id),
      data: cp.desired.data(node.id),
      secret_refs: cp.desired.secretRefs(node.id),
    });
  });

  r.on("POST", "/v1/nodes/{node_id}/drift", async ({ req, params }) => {
    const node = authNode(cp, req, params.node_id);
    cp.records.add(node.id, "drift", await readJson(req, Drift));
    return json({ received: true }, 202);
  });

  r.on("GET", "/v1/ping", ({ req }) => {
    const node = authNode(cp, req, undefined);
    return json({ ok: true, node_id: node.id, time: new Date().toISOString() });
  });
}
