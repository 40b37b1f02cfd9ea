/** HTTP helpers shared by every route: JSON responses and bounded, gzip-aware body reading. */
import { gunzipSync } from "node:zlib";
import * as v from "valibot";
import { HttpError, badRequest } from "./errors.ts";

/** Limit for ordinary JSON request bodies (after decompression). */
export const JSON_LIMIT = 1024 * 1024;
/** Limit for telemetry bodies (metrics/logs/audit), after decompression. */
export const TELEMETRY_LIMIT = 16 * 1024 * 1024;
/** Limit for artifact uploads through the admin API. */
export const ARTIFACT_LIMIT = 512 * 1024 * 1024;

/** A JSON response with the given status. */
export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/** The standard JSON error body for an HttpError. */
export function errorResponse(err: HttpError): Response {
  return json({ error: err.code, message: err.message, ...err.extra }, err.status, err.headers);
}

const tooLarge = (limit: number) =>
  new HttpError(413, "payload_too_large", `request body exceeds ${limit} bytes`, { limit });

/** Reads the raw body, at most `limit` bytes on the wire and after gzip decoding. */
export async function readBody(req: Request, limit: number): Promise<Uint8Array> {
  const declared = Number(req.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (req.body) {
    const reader = req.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > limit) {
        await reader.cancel().catch(() => {});
        throw tooLarge(limit);
      }
      chunks.push(value);
    }
  }
  const raw = concat(chunks, size);
  const encoding = (req.headers.get("content-encoding") ?? "identity").trim().toLowerCase();
  if (encoding === "identity" || encoding === "") return raw;
  if (encoding !== "gzip") throw new HttpError(415, "unsupported_encoding", `content-encoding ${encoding}`);
  try {
    // maxOutputLength makes zlib stop (and throw) as soon as the limit is crossed: no zip bomb.
    return new Uint8Array(gunzipSync(raw, { maxOutputLength: limit }));
  } catch (e) {
    if ((e as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") throw tooLarge(limit);
    throw badRequest("invalid gzip body");
  }
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/** Decodes UTF-8 and parses JSON; 400 on either failure. */
export function parseJsonText(bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw badRequest("body is not valid UTF-8");
  }
  try {
    return JSON.parse(text);
  } catch {
    throw badRequest("malformed JSON");
  }
}

/** Validates a value against a valibot schema; 400 with the issues on failure. */
export function validate<S extends v.GenericSchema>(schema: S, value: unknown): v.InferOutput<S> {
  const r = v.safeParse(schema, value);
  if (!r.success) {
    throw badRequest("schema validation failed", {
      issues: r.issues.slice(0, 10).map((i) => ({ path: v.getDotPath(i) ?? "", message: i.message })),
    });
  }
  return r.output;
}

/** Reads, decodes, parses and validates a JSON body in one go. */
export async function readJson<S extends v.GenericSchema>(
  req: Request,
  schema: S,
  limit = JSON_LIMIT,
): Promise<v.InferOutput<S>> {
  return validate(schema, parseJsonText(await readBody(req, limit)));
}

/** The bearer token of a request, or undefined. */
export function bearer(req: Request): string | undefined {
  const h = req.headers.get("authorization");
  if (!h) return undefined;
  const m = /^Bearer\s+(.+)$/i.exec(h.trim());
  return m?.[1]?.trim();
}
