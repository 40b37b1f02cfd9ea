/**
 * Binary checksum at start (lifecycle.md §2 step 6): SHA-256 of the running executable,
 * compared with the baseline in `checksums.json`. No baseline → store it; a mismatch without a
 * pending upgrade → an integrity violation, queued by the supervisor through the durable outbox
 * (POST …/integrity/violations). The periodic check and the upgrade path belong to the
 * integrity / upgrade subsystems.
 */
import { join } from "node:path";
import * as v from "valibot";
import type { CpApi } from "../controlplane/api.ts";
import type { CpError } from "../controlplane/errors.ts";
import type { IntegrityViolation } from "../controlplane/types.ts";
import type { OutboxItem, SendOutcome } from "../journal/index.ts";
import { formatRfc3339Ms } from "../util/duration.ts";
import { readJsonFile, writeJsonAtomic } from "../store/index.ts";
import { sha256FileSync } from "../util/checksum.ts";
import { CAPABILITIES_OUTBOX_KIND, parseCapabilitiesBody } from "./capabilities.ts";

/** Outcome of {@link checkBinaryBaseline}. */
export interface BaselineResult {
  readonly path: string;
  /** Lowercase hex. */
  readonly actual: string;
  readonly status: "stored" | "match" | "mismatch";
  readonly expected?: string;
}

const BaselinesSchema = v.record(v.string(), v.string());

/**
 * The integrity baselines in `data_dir/checksums.json` (`{ "<path>": "<sha256 hex>" }`): the
 * binary and every valid hook share this one file. Missing file → `{}`.
 * @throws StoreError when the file is corrupt
 */
export function readBaselines(dataDir: string): Record<string, string> {
  return readJsonFile(join(dataDir, "checksums.json"), BaselinesSchema) ?? {};
}

/**
 * The one writer of `checksums.json`: applies `change` to the current baselines and writes the
 * result atomically (0600) when it differs. Returns whether the file was written.
 * @throws StoreError when the file is corrupt or cannot be written
 */
export function updateBaselines(dataDir: string, change: (current: Readonly<Record<string, string>>) => Record<string, string>): boolean {
  const current = readBaselines(dataDir);
  const next = change(current);
  const sorted = (o: Record<string, string>) => JSON.stringify(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  if (sorted(next) === sorted(current)) return false;
  writeJsonAtomic(join(dataDir, "checksums.json"), next);
  return true;
}

/**
 * Hashes `binaryPath` (default: target of /proc/self/exe) and compares it with the baseline.
 * @throws StoreError when checksums.json is corrupt
 */
export function checkBinaryBaseline(dataDir: string, binaryPath = "/proc/self/exe", hash: (p: string) => string = sha256FileSync): BaselineResult {
  const actual = hash(binaryPath);
  // /proc/self/exe is a link; record under the real path so an upgrade helper finds it.
  const key = binaryPath === "/proc/self/exe" ? process.execPath : binaryPath;
  const expected = readBaselines(dataDir)[key];
  if (expected === undefined) {
    updateBaselines(dataDir, (b) => ({ ...b, [key]: actual }));
    return { path: key, actual, status: "stored" };
  }
  if (expected.toLowerCase() === actual) return { path: key, actual, status: "match" };
  return { path: key, actual, status: "mismatch", expected };
}

/** Outbox kind of integrity violations. */
export const INTEGRITY_OUTBOX_KIND = "integrity_violation";

/**
 * The durable outbox entry for a binary mismatch (protocol.md §6.19 body). Deduplicated by the
 * actual checksum, so a restart that finds the same foreign binary does not queue it twice.
 */
export function binaryViolationEntry(
  r: BaselineResult,
  nowMs: number,
  nodeId: string,
  format: (hex: string) => string,
): { kind: string; dedupKey: string; method: string; path: string; body: string } {
  const body: IntegrityViolation = {
    type: "binary",
    path: r.path,
    expected_checksum: format(r.expected ?? ""),
    actual_checksum: format(r.actual),
    detail: "running binary differs from the recorded baseline and no upgrade is pending",
    timestamp: formatRfc3339Ms(nowMs),
  };
  return {
    kind: INTEGRITY_OUTBOX_KIND,
    dedupKey: `binary:${r.actual}`,
    method: "POST",
    path: `/v1/nodes/${encodeURIComponent(nodeId)}/integrity/violations`,
    body: JSON.stringify(body),
  };
}

/**
 * The outbox's `send` for the kinds the agent core queues. protocol.md §4 mapping: 2xx (and a
 * 404 = endpoint absent, tolerated for auxiliary endpoints) delivered; 401 pauses until re-auth;
 * other 4xx except 408/429 permanent; the rest retried (Retry-After honoured).
 */
export function outboxSender(api: CpApi, nodeId: () => string, extra: OutboxSenderExtras = {}): (item: OutboxItem) => Promise<SendOutcome> {
  return async (item) => {
    if (item.kind === CAPABILITIES_OUTBOX_KIND) {
      const caps = parseCapabilitiesBody(item.body);
      if (!caps) return { outcome: "permanent", error: "malformed capabilities body" };
      const r = await api.putCapabilities(nodeId(), caps);
      if (r.ok) {
        extra.onCapabilitiesDelivered?.(item.body ?? "");
        return "delivered";
      }
      return failure(r.error);
    }
    if (item.kind !== INTEGRITY_OUTBOX_KIND) return { outcome: "permanent", error: `unknown outbox kind ${item.kind}` };
    const parsed = v.safeParse(ViolationBody, JSON.parse(item.body ?? "null"));
    if (!parsed.success) return { outcome: "permanent", error: "malformed integrity violation body" };
    const r = await api.postIntegrityViolation(nodeId(), parsed.output);
    if (r.ok) return r.value.supported ? "delivered" : "delivered_unknown";
    return failure(r.error);
  };
}

/** Callbacks of {@link outboxSender} for kinds whose delivery changes agent state. */
export interface OutboxSenderExtras {
  /** A capabilities PUT was acknowledged (2xx): `body` is now the announced payload. */
  readonly onCapabilitiesDelivered?: (body: string) => void;
}

function failure(e: CpError): SendOutcome {
  if (e.status === 401) return "pause";
  if (!e.transient && e.kind === "http") return { outcome: "permanent", error: `HTTP ${e.status}` };
  return { outcome: "retry", ...(e.retryAfterMs !== undefined ? { retryAfterMs: e.retryAfterMs } : {}), error: e.status !== undefined ? `HTTP ${e.status}` : e.kind };
}

const ViolationBody = v.object({
  type: v.picklist(["binary", "hook"]),
  path: v.string(),
  expected_checksum: v.string(),
  actual_checksum: v.string(),
  detail: v.string(),
  timestamp: v.string(),
});
