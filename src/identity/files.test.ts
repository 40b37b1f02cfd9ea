import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../log/index.ts";
import { IdentityFiles, loadIdentity, persistIdentity, writeSigningKeys } from "./files.ts";
import { generateKeyPair } from "./keys.ts";

const SK = "ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=";
const SK2 = "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=";
let dir: string;
let lines: string[];
const logger = () => createLogger({ write: (l) => lines.push(l), format: "text", level: "debug" });

beforeEach(() => {
  dir = join(mkdtempSync(join(tmpdir(), "plexd-identity-")), "data");
  lines = [];
});
afterEach(() => {
  rmSync(join(dir, ".."), { recursive: true, force: true });
});

function sample() {
  const kp = generateKeyPair();
  return { nodeId: "n_0123456789abcdef", meshIp: "10.100.0.7", privateKey: kp.privateKey, publicKey: kp.publicKey, nodeSecretKey: "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=", signingPublicKey: SK };
}

describe("persistIdentity", () => {
  test("writes every file 0600 in a 0700 dir with the documented encodings", () => {
    const s = sample();
    persistIdentity(dir, s);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    for (const f of Object.values(IdentityFiles)) expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
    const ij = readFileSync(join(dir, "identity.json"), "utf8");
    expect(ij).toBe(JSON.stringify({ node_id: s.nodeId, mesh_ip: s.meshIp, signing_public_key: SK }, null, 2) + "\n");
    expect(readFileSync(join(dir, "private_key"), "utf8")).toBe(s.privateKey);
    expect(readFileSync(join(dir, "node_secret_key"), "utf8")).toBe(s.nodeSecretKey);
    expect(readFileSync(join(dir, "signing_public_key"), "utf8")).toBe(SK);
    expect(JSON.parse(readFileSync(join(dir, "signing_keys.json"), "utf8"))).toEqual({ current: SK, previous: null, transition_expires: null });
    expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  test("identity.json is written last: a failure before it leaves the node unregistered", () => {
    // Make the final rename impossible: identity.json is a non-empty directory.
    mkdirSync(join(dir, "identity.json", "x"), { recursive: true });
    expect(() => persistIdentity(dir, sample())).toThrow();
    for (const f of ["private_key", "node_secret_key", "signing_public_key", "signing_keys.json"]) expect(existsSync(join(dir, f))).toBe(true);
    rmSync(join(dir, "identity.json"), { recursive: true });
    expect(loadIdentity(dir).registered).toBe(false);
  });

  test("a failure on the first file writes nothing else", () => {
    mkdirSync(join(dir, "private_key", "x"), { recursive: true });
    expect(() => persistIdentity(dir, sample())).toThrow();
    expect(existsSync(join(dir, "identity.json"))).toBe(false);
    expect(existsSync(join(dir, "node_secret_key"))).toBe(false);
  });
});

describe("loadIdentity", () => {
  test("round trip", () => {
    const s = sample();
    persistIdentity(dir, s);
    const r = loadIdentity(dir, logger());
    expect(r.registered).toBe(true);
    if (r.registered) {
      expect(r.identity).toEqual({ ...s, signingKeys: { current: SK, previous: null, transition_expires: null } });
    }
    expect(lines).toEqual([]);
  });

  test("missing identity.json → unregistered without warning", () => {
    const r = loadIdentity(dir, logger());
    expect(r).toMatchObject({ registered: false, reason: "missing" });
    expect(lines).toEqual([]);
  });

  const corruptions: [string, () => void][] = [
    ["identity.json not JSON", () => writeFileSync(join(dir, "identity.json"), '{"node_id": "n_')],
    ["identity.json mesh_ip invalid", () => writeFileSync(join(dir, "identity.json"), JSON.stringify({ node_id: "n", mesh_ip: "10.100.0.0" }))],
    ["private_key missing", () => unlinkSync(join(dir, "private_key"))],
    ["private_key garbage", () => writeFileSync(join(dir, "private_key"), "not a key")],
    ["node_secret_key missing", () => unlinkSync(join(dir, "node_secret_key"))],
    ["node_secret_key empty", () => writeFileSync(join(dir, "node_secret_key"), "")],
    ["signing_public_key garbage", () => writeFileSync(join(dir, "signing_public_key"), "zzz")],
  ];
  test.each(corruptions)("%s → warn + unregistered", (_name, corrupt) => {
    persistIdentity(dir, sample());
    corrupt();
    const r = loadIdentity(dir, logger());
    expect(r).toMatchObject({ registered: false, reason: "incomplete" });
    expect(lines.some((l) => l.includes("warn") && l.includes("unregistered"))).toBe(true);
    // the NSK never reaches the log
    expect(lines.join("\n")).not.toContain("QEFCQ0RF");
  });

  test("signing_public_key file wins over identity.json; missing file falls back to the copy", () => {
    persistIdentity(dir, sample());
    writeSigningKeys(dir, { current: SK2, previous: SK, transition_expires: "2030-01-01T00:00:00Z" });
    let r = loadIdentity(dir);
    expect(r.registered && r.identity.signingPublicKey).toBe(SK2);
    expect(r.registered && r.identity.signingKeys).toEqual({ current: SK2, previous: SK, transition_expires: "2030-01-01T00:00:00Z" });
    unlinkSync(join(dir, "signing_public_key"));
    r = loadIdentity(dir, logger());
    expect(r.registered && r.identity.signingPublicKey).toBe(SK);
    // signing_keys.json belongs to another current key → only the current key is trusted
    expect(r.registered && r.identity.signingKeys).toEqual({ current: SK, previous: null, transition_expires: null });
    expect(lines.some((l) => l.includes("signing_public_key file missing"))).toBe(true);
  });

  test("trailing newline on key files tolerated; wide modes tightened with a warning", () => {
    const s = sample();
    persistIdentity(dir, s);
    writeFileSync(join(dir, "private_key"), s.privateKey + "\n");
    writeFileSync(join(dir, "node_secret_key"), s.nodeSecretKey + "\n");
    chmodSync(join(dir, "private_key"), 0o644);
    const r = loadIdentity(dir, logger());
    expect(r.registered && r.identity.privateKey).toBe(s.privateKey);
    expect(r.registered && r.identity.nodeSecretKey).toBe(s.nodeSecretKey);
    expect(statSync(join(dir, "private_key")).mode & 0o777).toBe(0o600);
    expect(lines.some((l) => l.includes("tightened"))).toBe(true);
  });
});
