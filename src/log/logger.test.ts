import { describe, expect, test } from "bun:test";
import { createLogger } from "./logger.ts";

const fixed = () => new Date("2026-01-02T03:04:05.000Z");

describe("logger", () => {
  test("journal format: syslog prefix, no timestamp", () => {
    const lines: string[] = [];
    const log = createLogger({ format: "auto", env: { JOURNAL_STREAM: "8:1" }, write: (l) => lines.push(l) });
    log.warn("peer gone", { peer: "n_1" });
    expect(lines).toEqual(["<4>warn peer gone peer=n_1"]);
  });

  test("text format with timestamp and quoting", () => {
    const lines: string[] = [];
    const log = createLogger({ format: "auto", env: {}, write: (l) => lines.push(l), now: fixed });
    log.info("hello", { why: "two words" });
    expect(lines).toEqual(['2026-01-02T03:04:05.000Z info hello why="two words"']);
  });

  test("json format, level filter and redaction of secrets", () => {
    const lines: string[] = [];
    const log = createLogger({ format: "json", level: "info", write: (l) => lines.push(l), now: fixed });
    log.debug("dropped");
    log.with({ node_id: "n_1" }).error("boom", { bootstrap_token: "abc", node_secret_key: "k", err: new Error("x") });
    expect(lines.length).toBe(1);
    const obj = JSON.parse(lines[0]!);
    expect(obj).toEqual({
      time: "2026-01-02T03:04:05.000Z",
      level: "error",
      msg: "boom",
      node_id: "n_1",
      bootstrap_token: "[redacted]",
      node_secret_key: "[redacted]",
      err: "x",
    });
    expect(lines[0]).not.toContain("abc");
  });
});
