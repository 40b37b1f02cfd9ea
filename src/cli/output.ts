/** Output conventions of config.md §4.3: one JSON document with schemaVersion, or human text. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
}

export const processIo: Io = {
  out: (t) => process.stdout.write(t.endsWith("\n") ? t : t + "\n"),
  err: (t) => process.stderr.write(t.endsWith("\n") ? t : t + "\n"),
};

export function jsonData(data: unknown): string {
  return JSON.stringify({ schemaVersion: 1, data }, null, 2);
}

export function jsonError(code: string, message: string, extra?: Record<string, unknown>): string {
  return JSON.stringify({ schemaVersion: 1, error: { code, message, ...extra } }, null, 2);
}

/** Aligned columns for human tables. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: readonly string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ");
  return [line(header), ...rows.map(line)].join("\n");
}
