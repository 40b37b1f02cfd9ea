import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { startCp, type CpProc } from "./cp-harness.ts";

let cp: CpProc;
beforeAll(async () => {
  cp = await startCp({ tls: true });
});
afterAll(async () => {
  await cp?.cleanup();
});

describe("TLS", () => {
  test("https URL and CA file in the ready line", () => {
    expect(cp.url).toStartWith("https://127.0.0.1:");
    expect(cp.caFile).toBeTruthy();
    expect(readFileSync(cp.caFile as string, "utf8")).toContain("BEGIN CERTIFICATE");
  });

  test("fetch with the generated CA succeeds, without it fails", async () => {
    const ca = readFileSync(cp.caFile as string, "utf8");
    const ok = await fetch(`${cp.url}/v1/ping`, { tls: { ca } } as RequestInit);
    expect(ok.status).toBe(401); // reached the server; no NSK given
    const viaName = await fetch(cp.url.replace("127.0.0.1", "localhost") + "/v1/ping", { tls: { ca } } as RequestInit);
    expect(viaName.status).toBe(401);
    let failed = false;
    try {
      await fetch(`${cp.url}/v1/ping`);
    } catch {
      failed = true;
    }
    expect(failed).toBe(true);
  });

  test("certificates are reused across restarts", async () => {
    const before = readFileSync(cp.caFile as string, "utf8");
    await cp.restart();
    expect(readFileSync(cp.caFile as string, "utf8")).toBe(before);
    const res = await fetch(`${cp.url}/v1/ping`, { tls: { ca: before } } as RequestInit);
    expect(res.status).toBe(401);
  });
});
