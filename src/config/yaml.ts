/**
 * YAML 1.2 reading with positions: the `yaml` package (Bun.YAML gives no positions and lets
 * duplicate keys win silently). Produces the plain value plus a map from dotted path to the
 * (line, col) of the key, so later validation errors can point into the file.
 */
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from "yaml";
import { ConfigError, type ConfigIssue } from "./errors.ts";

/** 1-based line and column. */
export interface Position {
  line: number;
  col: number;
}

/** Parsed file: plain JS value and key positions (`a.b`, `list[0].name`). */
export interface ParsedYaml {
  value: unknown;
  positions: Map<string, Position>;
}

/** Appends a key or index to a dotted path. */
export function joinPath(base: string, key: string | number): string {
  if (typeof key === "number") return `${base}[${key}]`;
  return base === "" ? key : `${base}.${key}`;
}

/**
 * Parses YAML text. Syntax errors, duplicate keys and unresolved tags throw a `ConfigError`
 * whose issues carry `path` = `file` and the line/column of the problem.
 */
export function parseYaml(text: string, file: string): ParsedYaml {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true, version: "1.2", strict: true });
  // Warnings (e.g. unknown tags) are errors too: a config that means something else than it
  // says must not start.
  const problems = [...doc.errors, ...doc.warnings];
  if (problems.length > 0) {
    const issues: ConfigIssue[] = problems.map((e) => {
      const p = lc.linePos(e.pos[0]);
      const problem = e.code === "DUPLICATE_KEY" ? "duplicate key" : e.message.split("\n")[0]!.replace(/ at line \d+, column \d+.*$/, "");
      return { path: file, problem, line: p.line, col: p.col };
    });
    throw new ConfigError(issues);
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw new ConfigError([{ path: file, problem: (e as Error).message }], { cause: e });
  }
  const positions = new Map<string, Position>();
  if (doc.contents) walk(doc.contents as Node, "", positions, lc);
  return { value, positions };
}

function walk(node: Node, path: string, out: Map<string, Position>, lc: LineCounter): void {
  if (isMap(node)) {
    for (const pair of node.items) {
      const keyNode = pair.key as Node | null;
      const key = isScalar(keyNode) ? String(keyNode.value) : String(keyNode);
      const p = joinPath(path, key);
      const start = keyNode?.range?.[0];
      if (start !== undefined) out.set(p, lc.linePos(start));
      if (pair.value) walk(pair.value as Node, p, out, lc);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => {
      const p = joinPath(path, i);
      const start = (item as Node | null)?.range?.[0];
      if (start !== undefined) out.set(p, lc.linePos(start));
      if (item) walk(item as Node, p, out, lc);
    });
  }
}
