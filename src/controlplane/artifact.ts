/**
 * §6.17 artifact download: streamed to a file (never held in memory), hashed on the way,
 * bounded in size (512 MiB), in total time (10 min) and in silence (60 s without bytes).
 * A failed download leaves no partial file behind.
 */
import { open, unlink } from "node:fs/promises";
import { CpError } from "./errors.ts";
import { transportError, type HttpClient } from "./http.ts";
import { cpPath } from "./url.ts";

export const ARTIFACT_MAX_BYTES = 512 * 1024 * 1024;
export const ARTIFACT_TOTAL_TIMEOUT_MS = 10 * 60_000;
export const ARTIFACT_STALL_TIMEOUT_MS = 60_000;

/** What to download and where. */
export interface ArtifactRequest {
  readonly version: string;
  readonly os: string;
  readonly arch: string;
  /** Written with mode 0600 (replaced if present); removed again on failure. */
  readonly destPath: string;
  readonly maxBytes?: number;
  readonly totalTimeoutMs?: number;
  readonly stallTimeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** A finished download. */
export interface ArtifactDownload {
  readonly size: number;
  /** Lowercase hex SHA-256 of the bytes written. */
  readonly sha256: string;
  /** `X-Plexd-Artifact-Signature` when the CP sent one (base64 Ed25519). */
  readonly signature: string | undefined;
}

/** Downloads one artifact (single attempt; the Artifact retry class is the caller's). */
export async function downloadArtifact(
  http: HttpClient,
  req: ArtifactRequest,
): Promise<{ ok: true; status: number; value: ArtifactDownload } | { ok: false; error: CpError }> {
  const maxBytes = req.maxBytes ?? ARTIFACT_MAX_BYTES;
  const stallMs = req.stallTimeoutMs ?? ARTIFACT_STALL_TIMEOUT_MS;
  const sent = await http.send({
    method: "GET",
    path: cpPath`/v1/artifacts/plexd/${req.version}/${req.os}/${req.arch}`,
    accept: "application/octet-stream",
    timeoutMs: req.totalTimeoutMs ?? ARTIFACT_TOTAL_TIMEOUT_MS,
    ...(req.signal ? { signal: req.signal } : {}),
  });
  if (!sent.ok) return sent;
  const { response } = sent;
  const fail = async (error: CpError): Promise<{ ok: false; error: CpError }> => {
    await unlink(req.destPath).catch(() => {});
    return { ok: false, error };
  };
  const declared = Number(response.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > maxBytes) {
    await response.body?.cancel().catch(() => {});
    sent.done();
    return { ok: false, error: new CpError("too_large", `artifact is ${declared} bytes, limit ${maxBytes}`, { status: response.status }) };
  }
  const enc = (response.headers.get("content-encoding") ?? "").toLowerCase();
  let stream = response.body;
  if (stream !== null && (enc === "gzip" || enc === "x-gzip")) {
    stream = stream.pipeThrough(new DecompressionStream("gzip") as unknown as ReadableWritablePair<Uint8Array, Uint8Array>);
  }
  const hasher = new Bun.CryptoHasher("sha256");
  let size = 0;
  let stall: ReturnType<typeof setTimeout> | undefined;
  const arm = (): void => {
    clearTimeout(stall);
    stall = setTimeout(() => sent.abort(new CpError("timeout", `artifact download stalled: no bytes for ${stallMs} ms`)), stallMs);
  };
  let fh;
  try {
    fh = await open(req.destPath, "w", 0o600);
    await fh.chmod(0o600); // an existing file keeps its old mode on open
    if (stream !== null) {
      const reader = stream.getReader();
      arm();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        arm();
        size += value.byteLength;
        if (size > maxBytes) {
          await reader.cancel().catch(() => {});
          throw new CpError("too_large", `artifact exceeds ${maxBytes} bytes`, { status: response.status });
        }
        hasher.update(value);
        let off = 0;
        while (off < value.byteLength) off += (await fh.write(value, off, value.byteLength - off)).bytesWritten;
      }
    }
    await fh.sync();
    await fh.close();
    fh = undefined;
    return {
      ok: true,
      status: response.status,
      value: { size, sha256: hasher.digest("hex"), signature: response.headers.get("x-plexd-artifact-signature") ?? undefined },
    };
  } catch (err) {
    await fh?.close().catch(() => {});
    return fail(sent.abortReason() ?? (err instanceof CpError ? err : transportError(err, req.signal)));
  } finally {
    clearTimeout(stall);
    sent.done();
  }
}
