import { describe, expect, test } from "bun:test";
import { ConfigError } from "./errors.ts";
import { parseYaml } from "./yaml.ts";

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

describe("parseYaml", () => {
  test("records key and list item positions", () => {
    const { value, positions } = parseYaml("api: https://x\nmesh:\n  listen_port: 1\nlogs:\n  signals:\n    - name: a\n", "c.yaml");
    expect(value).toEqual({ api: "https://x", mesh: { listen_port: 1 }, logs: { signals: [{ name: "a" }] } });
    expect(positions.get("mesh.listen_port")).toEqual({ line: 3, col: 3 });
    expect(positions.get("logs.signals[0]")).toEqual({ line: 6, col: 7 });
    expect(positions.get("logs.signals[0].name")).toEqual({ line: 6, col: 7 });
  });

  test("YAML 1.2: yes/on stay strings, 1.10 is a number", () => {
    const { value } = parseYaml("a: yes\nb: on\nc: 1.10\nd: '1.10'\n", "c.yaml");
    expect(value).toEqual({ a: "yes", b: "on", c: 1.1, d: "1.10" });
  });

  test("syntax error carries line and col", () => {
    const e = errorOf(() => parseYaml("a: 1\nb: [1, 2\nc: 3\n", "/etc/plexd/config.yaml"));
    expect(e.issues.length).toBeGreaterThan(0);
    const i = e.issues[0]!;
    expect(i.path).toBe("/etc/plexd/config.yaml");
    expect(i.line).toBeGreaterThanOrEqual(2);
    expect(i.col).toBeGreaterThanOrEqual(1);
    expect(e.format()).toMatch(/^config: \/etc\/plexd\/config\.yaml: .+ \(line \d+, col \d+\)$/m);
  });

  test("duplicate key is an error with its line", () => {
    const e = errorOf(() => parseYaml("mesh:\n  mtu: 1400\n  mtu: 1500\n", "c.yaml"));
    expect(e.issues).toEqual([{ path: "c.yaml", problem: "duplicate key", line: 3, col: 3 }]);
    expect(e.format()).toBe("config: c.yaml: duplicate key (line 3, col 3)");
  });

  test("unknown tags are errors", () => {
    const e = errorOf(() => parseYaml("a: !vault xyz\n", "c.yaml"));
    expect(e.issues[0]!.line).toBe(1);
  });

  test("bad indentation is an error", () => {
    expect(() => parseYaml("a:\n  b: 1\n c: 2\n", "c.yaml")).toThrow(ConfigError);
  });
});
