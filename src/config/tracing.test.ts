import { expect, test } from "bun:test";
import { buildConfig } from "./load.ts";
import { tracesUrl, tracingEnabled } from "./tracing.ts";

const load = (yaml: string, env: Record<string, string> = {}) => buildConfig({ text: `api: https://cp.example.net\n${yaml}`, path: "c", env });

test("auto is on iff an endpoint is configured; explicit values and OTEL_SDK_DISABLED win", () => {
  const none = load("");
  expect(tracingEnabled(none.config, none.otel)).toBe(false);
  const file = load("telemetry: {tracing: {endpoint: 'https://otel.example/'}}");
  expect(tracingEnabled(file.config, file.otel)).toBe(true);
  expect(tracesUrl(file.config, file.otel)).toBe("https://otel.example/v1/traces");
  const traces = load("", { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://t.example/x" });
  expect(tracingEnabled(traces.config, traces.otel)).toBe(true);
  expect(tracesUrl(traces.config, traces.otel)).toBe("https://t.example/x");
  const off = load("telemetry: {tracing: {endpoint: 'https://otel.example'}}", { OTEL_SDK_DISABLED: "true" });
  expect(tracingEnabled(off.config, off.otel)).toBe(false);
  const forced = load("telemetry: {tracing: {enabled: true}}");
  expect(tracingEnabled(forced.config, forced.otel)).toBe(true);
});
