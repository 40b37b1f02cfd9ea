/** Effective tracing switch (config.md §2.20, operations.md §6). */
import type { OtelEnv } from "./env.ts";
import type { Config } from "./schema.ts";

/**
 * Whether tracing runs: `telemetry.tracing.enabled` true/false wins (`OTEL_SDK_DISABLED=true`
 * has already set it to false); `auto` means on iff an endpoint is configured, either
 * `telemetry.tracing.endpoint` (incl. `OTEL_EXPORTER_OTLP_ENDPOINT`) or
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`.
 */
export function tracingEnabled(config: Config, otel: OtelEnv = {}): boolean {
  const t = config.telemetry.tracing;
  if (t.enabled !== "auto") return t.enabled;
  return t.endpoint !== "" || (otel.tracesEndpoint ?? "") !== "";
}

/** OTLP/HTTP traces URL: the `…_TRACES_ENDPOINT` verbatim, else `<endpoint>/v1/traces`, else `""`. */
export function tracesUrl(config: Config, otel: OtelEnv = {}): string {
  if (otel.tracesEndpoint) return otel.tracesEndpoint;
  const base = config.telemetry.tracing.endpoint;
  return base === "" ? "" : `${base.replace(/\/+$/, "")}/v1/traces`;
}
