/** Test helpers for the agent: a scripted fetch behind a real CpApi, fake identities. */
import { CpApi } from "../controlplane/api.ts";
import { HttpClient } from "../controlplane/http.ts";
import { generateKeyPair } from "../identity/keys.ts";
import type { Identity } from "../identity/index.ts";

/** One recorded request. */
export interface Recorded {
  method: string;
  path: string;
  body: unknown;
}

/** Route → answer; a function gets the parsed body. */
export type FakeRoute = (body: unknown, req: Recorded) => { status: number; body?: unknown } | Promise<{ status: number; body?: unknown }>;

/** A CpApi whose HTTP layer is a scripted fetch; `requests` records everything sent. */
export function fakeApi(routes: Record<string, FakeRoute>): { api: CpApi; requests: Recorded[] } {
  const requests: Recorded[] = [];
  const fetch = async (input: string, init: { method?: string; body?: unknown; headers?: unknown }) => {
    const url = new URL(input);
    let body: unknown;
    if (typeof init.body === "string") body = JSON.parse(init.body);
    else if (init.body instanceof Uint8Array) {
      const b = init.body;
      const raw = b[0] === 0x1f && b[1] === 0x8b ? Bun.gunzipSync(b as Uint8Array<ArrayBuffer>) : b;
      body = JSON.parse(new TextDecoder().decode(raw));
    }
    const rec = { method: init.method ?? "GET", path: url.pathname, body };
    requests.push(rec);
    const key = `${rec.method} ${rec.path}`;
    const route = routes[key] ?? Object.entries(routes).find(([k]) => new RegExp(`^${k}$`).test(key))?.[1];
    if (!route) return new Response(JSON.stringify({ error: "not_found" }), { status: 404 });
    const r = await route(body, rec);
    return new Response(r.body === undefined ? "" : JSON.stringify(r.body), { status: r.status, headers: { "content-type": "application/json" } });
  };
  const http = new HttpClient({ baseUrl: "http://127.0.0.1:9", auth: () => "nsk", fetch: fetch as never });
  return { api: new CpApi({ http }), requests };
}

/** A complete fake identity. */
export function fakeIdentity(nodeId = "n_self", meshIp = "10.100.0.1"): Identity {
  const k = generateKeyPair();
  const signing = "ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=";
  return {
    nodeId,
    meshIp,
    privateKey: k.privateKey,
    publicKey: k.publicKey,
    nodeSecretKey: "nsk",
    signingPublicKey: signing,
    signingKeys: { current: signing, previous: null, transition_expires: null },
  };
}
