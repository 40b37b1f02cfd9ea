import { describe, expect, test } from "bun:test";
import { KernelError } from "./kernel-error.ts";
import { hexToBase64, publicKeyOf } from "./keys.ts";
import { buildGet, buildSet, parseGet, parseSetReply, UapiError } from "./uapi-codec.ts";
import { GET_REPLY, PEER1_HEX, PEER2_HEX, PRIV_HEX, PSK_HEX, ZERO } from "./uapi-fixture.test-util.ts";

const PRIV = hexToBase64(PRIV_HEX);
const PEER1 = hexToBase64(PEER1_HEX);
const PEER2 = hexToBase64(PEER2_HEX);
const PSK = hexToBase64(PSK_HEX);


describe("parseGet", () => {
  test("device and two peers, keys converted hex → base64", () => {
    const d = parseGet(GET_REPLY, "wg0");
    expect(d.ifname).toBe("wg0");
    expect(d.privateKey).toBe(PRIV);
    expect(d.publicKey).toBe(publicKeyOf(PRIV));
    expect(d.listenPort).toBe(51999);
    expect(d.fwmark).toBe(0);
    expect(d.peers).toEqual([
      {
        publicKey: PEER1,
        presharedKey: null,
        endpoint: "[fd00::1]:51820",
        allowedIps: ["10.100.0.2/32", "fd00::/64", "10.1.2.0/24"],
        persistentKeepalive: 25,
        lastHandshakeMs: null,
        rxBytes: 0,
        txBytes: 0,
      },
      {
        publicKey: PEER2,
        presharedKey: PSK,
        endpoint: "192.0.2.7:51820",
        allowedIps: [],
        persistentKeepalive: 0,
        lastHandshakeMs: 1764144000250,
        rxBytes: 92,
        txBytes: 1184,
      },
    ]);
  });

  test("empty device (no private key yet)", () => {
    expect(parseGet("errno=0\n\n", "wg0")).toEqual({
      ifname: "wg0",
      privateKey: null,
      publicKey: null,
      listenPort: 0,
      fwmark: 0,
      peers: [],
    });
  });

  test("fwmark and unknown keys (forward compatible)", () => {
    const d = parseGet("listen_port=1\nfwmark=51820\nfuture_key=x\nerrno=0\n\n", "wg0");
    expect(d.fwmark).toBe(51820);
  });

  test("errno != 0 → UapiError with code", () => {
    const e = (() => {
      try {
        parseGet("errno=-22\n\n", "wg0");
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(UapiError);
    expect((e as UapiError).code).toBe("EINVAL");
    expect((e as UapiError).errno).toBe(22);
  });

  test.each([
    ["no trailer", "listen_port=1\n"],
    ["no errno", "listen_port=1\n\n"],
    ["uppercase key", `public_key=${PEER1_HEX.toUpperCase()}\nerrno=0\n\n`],
    ["short key", "public_key=abcd\nerrno=0\n\n"],
    ["bad number", "listen_port=-1\nerrno=0\n\n"],
    ["bad allowed ip", `public_key=${PEER1_HEX}\nallowed_ip=10.0.0.0/33\nerrno=0\n\n`],
    ["line without =", "garbage\nerrno=0\n\n"],
    ["bad endpoint", `public_key=${PEER1_HEX}\nendpoint=a b:1\nerrno=0\n\n`],
  ])("malformed: %s → EPROTO", (_name, text) => {
    expect(() => parseGet(text, "wg0")).toThrow(expect.objectContaining({ name: "UapiError", code: "EPROTO" }));
  });
});

describe("parseSetReply", () => {
  test("errno=0 ok", () => expect(() => parseSetReply("errno=0\n\n")).not.toThrow());
  test("-98 → EADDRINUSE", () =>
    expect(() => parseSetReply("errno=-98\n\n")).toThrow(expect.objectContaining({ code: "EADDRINUSE", errno: 98, op: "set" })));
  test("unknown errno keeps number", () => expect(() => parseSetReply("errno=-4242\n\n")).toThrow(expect.objectContaining({ code: "E4242" })));
  test("garbage", () => expect(() => parseSetReply("errno=0\n")).toThrow(expect.objectContaining({ code: "EPROTO" })));
});

describe("buildSet", () => {
  test("golden: device fields, remove, update, add in given order", () => {
    const text = buildSet({
      privateKey: PRIV,
      listenPort: 51820,
      fwmark: 0x1234,
      replacePeers: true,
      peers: [
        { publicKey: PEER1, remove: true, endpoint: "192.0.2.1:1" },
        { publicKey: PEER2, updateOnly: true, presharedKey: null, endpoint: "[FD00::0:1]:51820", persistentKeepalive: 0 },
        { publicKey: PEER1, presharedKey: PSK, persistentKeepalive: 25, replaceAllowedIps: true, allowedIps: ["10.100.0.2", "10.1.2.3/24"] },
      ],
    });
    expect(text).toBe(
      [
        "set=1",
        `private_key=${PRIV_HEX}`,
        "listen_port=51820",
        "fwmark=4660",
        "replace_peers=true",
        `public_key=${PEER1_HEX}`,
        "remove=true",
        `public_key=${PEER2_HEX}`,
        "update_only=true",
        `preshared_key=${ZERO}`,
        "endpoint=[FD00::0:1]:51820",
        "persistent_keepalive_interval=0",
        `public_key=${PEER1_HEX}`,
        `preshared_key=${PSK_HEX}`,
        "persistent_keepalive_interval=25",
        "replace_allowed_ips=true",
        "allowed_ip=10.100.0.2/32",
        "allowed_ip=10.1.2.0/24",
        "",
        "",
      ].join("\n"),
    );
  });

  test("empty set and cleared private key", () => {
    expect(buildSet({ peers: [] })).toBe("set=1\n\n");
    expect(buildSet({ privateKey: null, peers: [] })).toBe(`set=1\nprivate_key=${ZERO}\n\n`);
  });

  test("get request", () => expect(buildGet()).toBe("get=1\n\n"));

  test.each([
    ["newline in endpoint", { peers: [{ publicKey: PEER1, endpoint: "1.2.3.4:5\nremove=true" }] }],
    ["port out of range", { listenPort: 70000, peers: [] }],
    ["keepalive negative", { peers: [{ publicKey: PEER1, persistentKeepalive: -1 }] }],
  ])("rejects %s", (_n, set) => {
    expect(() => buildSet(set)).toThrow(KernelError);
  });

  test("rejects a non-key", () => {
    expect(() => buildSet({ peers: [{ publicKey: "nope" }] })).toThrow(expect.objectContaining({ code: "EINVAL_KEY" }));
  });

  test("round trip: what buildSet writes, parseGet reads the same", () => {
    // Simulate wireguard-go echoing a fresh device configured by one set.
    const set = buildSet({ privateKey: PRIV, listenPort: 1, peers: [{ publicKey: PEER1, allowedIps: ["fd00:0::1/128"] }] });
    const echoed = set
      .replace("set=1\n", "")
      .replace(/\n\n$/, "\n")
      .replace("allowed_ip=", "preshared_key=" + ZERO + "\nallowed_ip=");
    const d = parseGet(`${echoed}errno=0\n\n`, "x");
    expect(d.peers[0]?.allowedIps).toEqual(["fd00::1/128"]);
    expect(d.privateKey).toBe(PRIV);
  });
});
