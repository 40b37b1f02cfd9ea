import { describe, expect, test } from "bun:test";
import { parseArgs, UsageError } from "./args.ts";

const specs = {
  json: { kind: "bool", description: "" },
  config: { kind: "string", description: "" },
  param: { kind: "list", description: "" },
  help: { kind: "bool", short: "h", description: "" },
} as const;

describe("parseArgs", () => {
  test("forms of flags and positionals", () => {
    const p = parseArgs(["a", "--json", "--config", "x.yaml", "--param=k=v", "--param", "z=1", "-h", "--", "--json"], specs);
    expect(p.flags).toEqual({ json: true, config: "x.yaml", param: ["k=v", "z=1"], help: true });
    expect(p.positionals).toEqual(["a", "--json"]);
  });
  test("unknown flags and missing values are usage errors", () => {
    expect(() => parseArgs(["--nope"], specs)).toThrow(UsageError);
    expect(() => parseArgs(["--config"], specs)).toThrow(/needs a value/);
    expect(() => parseArgs(["-x"], specs)).toThrow(/unknown flag -x/);
    expect(() => parseArgs(["--json=maybe"], specs)).toThrow(/takes no value/);
  });
});
