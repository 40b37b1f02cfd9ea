/** Version negotiation helpers (protocol.md §3). */

/** Paths that must never answer 426: SSE, heartbeat, ACK/result, artifact download. */
export function exemptFrom426(path: string): boolean {
  return (
    /^\/v1\/nodes\/[^/]+\/(events|heartbeat)$/.test(path) ||
    /^\/v1\/nodes\/[^/]+\/executions\/[^/]+\/(ack|result)$/.test(path) ||
    path.startsWith("/v1/artifacts/")
  );
}

function parts(v: string): number[] {
  return v
    .replace(/^v/, "")
    .split(/[-+]/)[0]!
    .split(".")
    .map((x) => Number(x) || 0);
}

/** True when semver `a` < `b` (pre-release and build parts ignored). */
export function belowMinVersion(a: string, b: string): boolean {
  const x = parts(a);
  const y = parts(b);
  for (let i = 0; i < 3; i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d < 0;
  }
  return false;
}
