import { describe, expect, test } from "bun:test";
import { normaliseCidr, normaliseEndpoint, normaliseIp } from "./cidr.ts";
import { base64ToHex, clampPrivateKey, generateKeyPair, hexToBase64, publicKeyOf } from "./keys.ts";

describe("cidr", () => {
  test.each([
    ["10.1.2.3/24", "10.1.2.0/24"],
    ["10.100.0.5", "10.100.0.5/32"],
    ["0.0.0.0/0", "0.0.0.0/0"],
    ["FD00:0:0::5/64", "fd00::/64"],
    ["fd00::1", "fd00::1/128"],
    ["2001:db8:0:0:1:0:0:1/128", "2001:db8::1:0:0:1/128"],
    ["::ffff:192.0.2.1/128", "::ffff:c000:201/128"],
    ["::/0", "::/0"],
  ])("%s → %s", (i, o) => expect(normaliseCidr(i)).toBe(o));

  test.each(["10.0.0.256/8", "10.0.0.0/33", "fd00::/129", "1:2:3:4:5:6:7:8:9", "1::2::3", "", "abc", "10.0.0.0/"])("rejects %p", (s) =>
    expect(() => normaliseCidr(s)).toThrow(expect.objectContaining({ code: "EINVAL_CIDR" })),
  );

  test("ip and endpoint", () => {
    expect(normaliseIp("FD00::0001")).toBe("fd00::1");
    expect(normaliseEndpoint("[FD00:0::1]:51820")).toBe("[fd00::1]:51820");
    expect(normaliseEndpoint("192.0.2.1:1")).toBe("192.0.2.1:1");
    expect(normaliseEndpoint("vpn.example.test:51820")).toBe("vpn.example.test:51820");
  });
});

describe("keys", () => {
  test("hex ↔ base64, public key derivation (RFC 7748 test vector)", () => {
    const priv = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
    const pub = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
    expect(publicKeyOf(hexToBase64(priv))).toBe(hexToBase64(pub));
    expect(base64ToHex(hexToBase64(pub))).toBe(pub);
    expect(() => hexToBase64(pub.toUpperCase())).toThrow();
    expect(() => base64ToHex("AAAA")).toThrow();
  });

  test("generated private keys are clamped", () => {
    const k = Buffer.from(generateKeyPair().privateKey, "base64");
    expect(k[0]! & 7).toBe(0);
    expect(k[31]! & 0xc0).toBe(0x40);
    expect(clampPrivateKey(new Uint8Array(32).fill(255))[31]).toBe(0x7f);
  });
});
