/** A tiny method + path-pattern router. Path parameters are single percent-decoded segments. */
import { HttpError, badRequest } from "./errors.ts";

/** What a handler receives. */
export interface Ctx {
  req: Request;
  url: URL;
  params: Record<string, string>;
}

export type Handler = (ctx: Ctx) => Response | Promise<Response>;

interface Route {
  method: string;
  parts: string[];
  handler: Handler;
}

export class Router {
  private readonly routes: Route[] = [];

  /** Registers `METHOD /a/{b}/c`. */
  on(method: string, path: string, handler: Handler): this {
    this.routes.push({ method, parts: path.split("/").slice(1), handler });
    return this;
  }

  /** Finds the handler; 404 for an unknown path, 405 for a known path with another method. */
  match(req: Request, url: URL): { handler: Handler; params: Record<string, string> } {
    const segs = url.pathname.split("/").slice(1);
    let pathKnown = false;
    for (const r of this.routes) {
      if (r.parts.length !== segs.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < segs.length; i++) {
        const p = r.parts[i] as string;
        const s = segs[i] as string;
        if (p.startsWith("{")) {
          if (s === "") {
            ok = false;
            break;
          }
          try {
            params[p.slice(1, -1)] = decodeURIComponent(s);
          } catch {
            throw badRequest("bad percent-encoding in path");
          }
        } else if (p !== s) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      pathKnown = true;
      if (r.method === req.method || (r.method === "GET" && req.method === "HEAD")) return { handler: r.handler, params };
    }
    if (pathKnown) throw new HttpError(405, "method_not_allowed", `${req.method} not allowed here`);
    throw new HttpError(404, "not_found", "no such endpoint");
  }
}
