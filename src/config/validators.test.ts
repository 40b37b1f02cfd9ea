import { describe, expect, test } from "bun:test";
import { apiUrlProblem, isCidr, isHostname, isHostOptionalPort, isHostPort, isLoopbackHost, regexProblem } from "./validators.ts";

describe("regexProblem", () => {
  test.each(["PHP Fatal error", "^ERROR: (\\w+) failed$", "a+b+", "(ab)+", "(a+){2}", "(a{1,3})+", "[(a+)]+", "\\(a+\\)+", "(?:x|y)*z", "(a+)?"])("accepts %p", (re) => {
    expect(regexProblem(re)).toBeUndefined();
  });
  test.each(["(a+)+", "(.*)*", "(?:x*y)+", "((ab)+)+", "(a+){2,}", "(\\d+)*$", "(a*)+?"])("rejects nested unbounded %p", (re) => {
    expect(regexProblem(re)).toMatch(/nested unbounded/);
  });
  test("rejects bad syntax, empty and over-long patterns", () => {
    expect(regexProblem("(a")).toMatch(/invalid regular expression/);
    expect(regexProblem("")).toMatch(/empty/);
    expect(regexProblem("a".repeat(513))).toMatch(/512/);
  });
});

describe("hosts and URLs", () => {
  test("host:port forms", () => {
    expect(isHostPort("127.0.0.1:9100")).toBe(true);
    expect(isHostPort("[::1]:9100")).toBe(true);
    expect(isHostPort("node.example:443")).toBe(true);
    expect(isHostPort("node.example")).toBe(false);
    expect(isHostPort("::1:9100")).toBe(false);
    expect(isHostPort("h:0")).toBe(false);
    expect(isHostPort("h:65536")).toBe(false);
    expect(isHostOptionalPort("stun.example")).toBe(true);
    expect(isHostOptionalPort("stun.example:3478")).toBe(true);
    expect(isHostOptionalPort("[2001:db8::1]")).toBe(true);
    expect(isHostOptionalPort("bad_host")).toBe(false);
  });
  test("hostname", () => {
    expect(isHostname("node-1.example.net")).toBe(true);
    expect(isHostname("-x")).toBe(false);
    expect(isHostname("a".repeat(64))).toBe(false);
    expect(isHostname(`${"a".repeat(60)}.`.repeat(5))).toBe(false);
  });
  test("loopback", () => {
    for (const h of ["localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]"]) expect(isLoopbackHost(h)).toBe(true);
    for (const h of ["10.0.0.1", "example.com", "127.0.0.1.nip.io", "0.0.0.0"]) expect(isLoopbackHost(h)).toBe(false);
  });
  test("api url rule", () => {
    expect(apiUrlProblem("https://cp.example.net")).toBeUndefined();
    expect(apiUrlProblem("http://127.0.0.1:8080")).toBeUndefined();
    expect(apiUrlProblem("http://127.0.0.1.nip.io")).toMatch(/loopback/);
    expect(apiUrlProblem("http://10.0.0.1")).toMatch(/loopback/);
  });
  test("cidr", () => {
    expect(isCidr("10.0.0.0/8")).toBe(true);
    expect(isCidr("2001:db8::/32")).toBe(true);
    expect(isCidr("10.0.0.0/33")).toBe(false);
    expect(isCidr("10.0.0.0")).toBe(false);
  });
});
