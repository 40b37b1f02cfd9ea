/** The loader: error class hand-over, one object per path, sync and async failures typed. */
import { describe, expect, test } from "bun:test";
import { BUILD_ADDON_PATH, loadAddon, openAddon } from "./addon.ts";
import { NativeError, isNativeError } from "./errors.ts";

describe("addon loader", () => {
  test("loadAddon opens the build output once; openAddon(same path) returns the same object", () => {
    const a = loadAddon();
    expect(openAddon(BUILD_ADDON_PATH)).toBe(a);
    expect(a.version()).toMatch(/^\d+\.\d+\.\d+/);
    for (const fn of ["linkList", "linkAdd", "addrAdd", "routeAdd", "wgGetDevice", "wgSetDevice", "wgBuildSet", "wgParseGet", "peerCred", "execve", "sdNotify"]) {
      expect(typeof (a as unknown as Record<string, unknown>)[fn]).toBe("function");
    }
  });

  test("synchronous failures throw NativeError instances (class handed in at load)", () => {
    const a = loadAddon();
    let caught: unknown;
    try {
      a.peerCred(-1);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(NativeError);
    expect(caught).toBeInstanceOf(Error);
    const e = caught as NativeError;
    expect(e.name).toBe("NativeError");
    expect(e.code).toBe("EBADF");
    expect(e.errno).toBe(9);
    expect(e.op).toBe("sock.peer_cred");
    expect(e.object).toBe("fd -1");
    expect(e.message).toContain("Bad file descriptor");
    expect(typeof e.stack).toBe("string");
    expect(isNativeError(e, "EBADF")).toBe(true);
    expect(isNativeError(e, "ENOENT")).toBe(false);
  });

  test("kernel calls return Promises that reject with NativeError (off-thread worker)", async () => {
    const a = loadAddon();
    const p = a.wgGetDevice("plexd-nonexist");
    expect(p).toBeInstanceOf(Promise);
    const e = await p.then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(NativeError);
    // No WireGuard here (ENOENT on the family); with it, ENODEV for the missing link.
    expect(["ENOENT", "ENODEV"]).toContain((e as NativeError).code);
    const links = await a.linkList();
    expect(links.some((l) => l.name === "lo" && l.index === 1)).toBe(true);
  });

  test("argument errors: Promise-returning calls reject, pure ones throw; both NativeError EINVAL", async () => {
    const a = loadAddon();
    await expect(a.linkSet("", {})).rejects.toBeInstanceOf(NativeError);
    await expect((a.linkAdd as unknown as (x: number) => Promise<void>)(5)).rejects.toMatchObject({ code: "EINVAL", op: "rtnl.link_add" });
    await expect(a.routeAdd({ dst: "10.0.0.0", prefixlen: 40, ifname: "lo" })).rejects.toMatchObject({ code: "EINVAL", op: "rtnl.route_add" });
    expect(() => a.wgBuildSet({ ifname: "", peers: [] }, 1, 1)).toThrow(expect.objectContaining({ code: "EINVAL", op: "wg.build_set" }));
  });
});
