import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { BUILTIN_ACTIONS } from "../config/index.ts";
import { Capabilities as CpCapabilitiesSchema } from "../cp/schema.ts";
import type { ValidHook } from "../hooks/index.ts";
import { VERSION } from "../version.ts";
import { BUILTIN_ACTION_DEFS, buildCapabilities, parseCapabilitiesBody } from "./capabilities.ts";

const HEX = "ab".repeat(32);
const hook: ValidHook = {
  name: "backup",
  description: "nightly backup",
  path: "/etc/plexd/hooks.d/backup.sh",
  configuredPath: "/etc/plexd/hooks.d/backup.sh",
  checksum: "cd".repeat(32),
  parameters: [
    { name: "target", type: "string", required: true, description: "where" },
    { name: "dry", type: "bool", required: false, default: "false", description: "" },
  ],
  timeout: 90_000,
  sandbox: "namespaced",
};

describe("buildCapabilities", () => {
  test("standard profile: sha256: checksums, source script, Go duration, default omitted when none", () => {
    const c = buildCapabilities({ binaryChecksum: HEX, hooks: [hook], profile: "standard" });
    expect(c.binary).toEqual({ version: VERSION, checksum: `sha256:${HEX}` });
    expect(c.hooks).toEqual([
      {
        name: "backup",
        description: "nightly backup",
        source: "script",
        checksum: `sha256:${"cd".repeat(32)}`,
        parameters: [
          { name: "target", type: "string", required: true, description: "where" },
          { name: "dry", type: "bool", required: false, default: "false", description: "" },
        ],
        timeout: "1m30s",
        sandbox: "namespaced",
      },
    ]);
    expect("default" in c.hooks[0]!.parameters[0]!).toBe(false);
    // Key order on the wire follows protocol.md §5.
    expect(Object.keys(c.hooks[0]!)).toEqual(["name", "description", "source", "checksum", "parameters", "timeout", "sandbox"]);
    expect(Object.keys(c.hooks[0]!.parameters[1]!)).toEqual(["name", "type", "required", "default", "description"]);
  });

  test("legacy profile: bare hex checksums, source local; an already prefixed binary checksum is re-encoded", () => {
    const c = buildCapabilities({ binaryChecksum: `sha256:${HEX}`, hooks: [hook], profile: "legacy" });
    expect(c.binary.checksum).toBe(HEX);
    expect(c.hooks[0]).toMatchObject({ source: "local", checksum: "cd".repeat(32) });
    expect(buildCapabilities({ binaryChecksum: HEX, hooks: [], profile: "standard" }).hooks).toEqual([]);
    // Integrity off: no checksum to report.
    expect(buildCapabilities({ binaryChecksum: "", hooks: [], profile: "standard" }).binary.checksum).toBe("");
  });

  test("the 11 built-ins of actions.md §7 with their parameters, in spec order", () => {
    const c = buildCapabilities({ binaryChecksum: HEX, hooks: [], profile: "standard" });
    expect(c.builtin_actions.map((b) => b.name)).toEqual([...BUILTIN_ACTIONS]);
    expect(c.builtin_actions).toHaveLength(11);
    const params = Object.fromEntries(c.builtin_actions.map((b) => [b.name, b.parameters.map((p) => [p.name, p.type, p.required, p.default ?? null])]));
    expect(params).toEqual({
      "diagnostics.collect": [
        ["include_network", "bool", false, "true"],
        ["include_processes", "bool", false, "true"],
      ],
      "diagnostics.ping_peer": [
        ["peer_id", "string", true, null],
        ["count", "int", false, "4"],
      ],
      "diagnostics.traceroute_peer": [
        ["peer_id", "string", true, null],
        ["max_hops", "int", false, "10"],
      ],
      "service.restart": [],
      "service.reload_config": [],
      "service.upgrade": [
        ["version", "string", true, null],
        ["checksum", "string", true, null],
        ["signature", "string", false, null],
      ],
      "system.info": [],
      "health.check": [["include_peers", "bool", false, "false"]],
      "mesh.reconnect": [],
      "config.dump": [],
      "logs.snapshot": [
        ["lines", "int", false, "1000"],
        ["since", "string", false, null],
      ],
    });
    for (const b of c.builtin_actions) {
      expect(b.description.length).toBeGreaterThan(0);
      // Ranges stay internal (ActionParam has no such fields).
      for (const p of b.parameters) expect(Object.keys(p).sort()).toEqual(p.default === undefined ? ["description", "name", "required", "type"] : ["default", "description", "name", "required", "type"]);
    }
    expect(BUILTIN_ACTION_DEFS.find((b) => b.name === "logs.snapshot")!.parameters[0]).toMatchObject({ min: 1, max: 10000 });
  });

  test("accepted by the reference CP's schema; round-trips through the outbox body parser", () => {
    for (const profile of ["standard", "legacy"] as const) {
      const c = buildCapabilities({ binaryChecksum: HEX, hooks: [hook], profile });
      expect(v.safeParse(CpCapabilitiesSchema, c).success).toBe(true);
      expect(parseCapabilitiesBody(JSON.stringify(c))).toEqual(c);
    }
    expect(parseCapabilitiesBody("{")).toBeUndefined();
    expect(parseCapabilitiesBody(JSON.stringify({ binary: {} }))).toBeUndefined();
  });
});
