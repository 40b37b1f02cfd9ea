import { describe, expect, test } from "bun:test";
import { createSocket } from "node:dgram";
import { FakeClock, FakeTransport, txidOf } from "./fake-transport.test-util.ts";
import { bindingTransaction, parseStunServer, resolveV4 } from "./stun-client.ts";
import { encodeBindingSuccess, newTransactionId, parseBindingResponse, STUN_BINDING_REQUEST } from "./stun-codec.ts";
import { DgramTransport } from "./transport.ts";

describe("parseStunServer", () => {
  test("host:port, default port, bad input", () => {
    expect(parseStunServer("stun.l.google.com:19302")).toEqual({ text: "stun.l.google.com:19302", host: "stun.l.google.com", port: 19302 });
    expect(parseStunServer("198.51.100.7")).toEqual({ text: "198.51.100.7", host: "198.51.100.7", port: 3478 });
    for (const bad of ["", "host:0", "host:70000", "host:x", "[::1]:3478", "::1", "a b:1"]) expect(parseStunServer(bad)).toHaveProperty("error");
  });
  test("literal IPv4 resolves to itself without DNS", async () => {
    expect(await resolveV4("203.0.113.4")).toBe("203.0.113.4");
  });
});

describe("bindingTransaction (fake clock)", () => {
  test("no answer: sends at 0, 500, 1500 ms, gives up at the timeout", async () => {
    const clock = new FakeClock();
    const t = new FakeTransport(clock, () => []);
    const start = clock.t;
    const r = await bindingTransaction(t, "203.0.113.10", 3478, { timeoutMs: 5000, now: clock.now });
    expect(r).toMatchObject({ ok: false, reason: "timeout" });
    expect(t.sent.map((s) => s.at - start)).toEqual([0, 500, 1500]);
    expect(clock.t - start).toBe(5000);
    // Same request each time (same transaction id), a binding request.
    expect(new Set(t.sent.map((s) => Buffer.from(s.payload).toString("hex"))).size).toBe(1);
    expect(new DataView(t.sent[0]!.payload.buffer).getUint16(0)).toBe(STUN_BINDING_REQUEST);
  });

  test("answer to the 2nd retransmission is accepted; rtt measured from the start", async () => {
    const clock = new FakeClock();
    const t = new FakeTransport(clock, (s, n) =>
      n === 2 ? [{ delayMs: 100, d: { srcIp: s.dstIp, srcPort: s.dstPort, payload: encodeBindingSuccess(txidOf(s), "198.51.100.11", 51820) } }] : [],
    );
    const r = await bindingTransaction(t, "203.0.113.10", 3478, { timeoutMs: 5000, now: clock.now });
    expect(r).toEqual({ ok: true, mapped: { family: 4, ip: "198.51.100.11", port: 51820, source: "xor" }, rttMs: 600 });
    expect(t.sent).toHaveLength(2);
  });

  test("answers from another address/port or for another transaction are ignored", async () => {
    const clock = new FakeClock();
    const t = new FakeTransport(clock, (s, n) =>
      n === 1
        ? [
            { delayMs: 10, d: { srcIp: "203.0.113.99", srcPort: 3478, payload: encodeBindingSuccess(txidOf(s), "6.6.6.6", 1) } },
            { delayMs: 20, d: { srcIp: s.dstIp, srcPort: 3479, payload: encodeBindingSuccess(txidOf(s), "6.6.6.6", 2) } },
            { delayMs: 30, d: { srcIp: s.dstIp, srcPort: s.dstPort, payload: encodeBindingSuccess(newTransactionId(), "6.6.6.6", 3) } },
            { delayMs: 40, d: { srcIp: s.dstIp, srcPort: s.dstPort, payload: new Uint8Array([1, 2, 3]) } },
            { delayMs: 50, d: { srcIp: s.dstIp, srcPort: s.dstPort, payload: encodeBindingSuccess(txidOf(s), "198.51.100.11", 4444) } },
          ]
        : [],
    );
    const r = await bindingTransaction(t, "203.0.113.10", 3478, { timeoutMs: 5000, now: clock.now });
    expect(r).toMatchObject({ ok: true, mapped: { ip: "198.51.100.11", port: 4444 } });
  });

  test("error response ends the transaction with error_response", async () => {
    const clock = new FakeClock();
    const t = new FakeTransport(clock, (s) => {
      const m = encodeBindingSuccess(txidOf(s), "1.2.3.4", 1, { extra: [[0x0009, new Uint8Array([0, 0, 5, 0, 0x58])]] });
      new DataView(m.buffer).setUint16(0, 0x0111);
      return [{ delayMs: 5, d: { srcIp: s.dstIp, srcPort: s.dstPort, payload: m } }];
    });
    expect(await bindingTransaction(t, "203.0.113.10", 3478, { timeoutMs: 5000, now: clock.now })).toMatchObject({
      ok: false,
      reason: "error_response",
      detail: "STUN error 500 X",
    });
  });

  test("send failing every time: send_failed", async () => {
    const clock = new FakeClock();
    const t = new FakeTransport(clock, () => []);
    t.send = async () => {
      throw new Error("ENETUNREACH");
    };
    expect(await bindingTransaction(t, "203.0.113.10", 3478, { timeoutMs: 2000, now: clock.now })).toMatchObject({ ok: false, reason: "send_failed" });
  });

  test("abort signal stops waiting", async () => {
    const clock = new FakeClock();
    const t = new FakeTransport(clock, () => []);
    const ac = new AbortController();
    ac.abort();
    expect(await bindingTransaction(t, "203.0.113.10", 3478, { timeoutMs: 5000, now: clock.now, signal: ac.signal })).toMatchObject({ ok: false, detail: "aborted" });
  });
});

describe("DgramTransport against a loopback STUN responder", () => {
  test("real sockets: transaction succeeds and reports the loopback mapping", async () => {
    const srv = createSocket("udp4");
    srv.on("message", (m, r) => {
      const txid = new Uint8Array(m).slice(8, 20);
      // Ignore anything that is not a request; answer with the source the server saw.
      if (m.length >= 20 && m[0] === 0 && m[1] === 1) srv.send(encodeBindingSuccess(txid, r.address, r.port), r.port, r.address);
    });
    await new Promise<void>((r) => srv.bind(0, "127.0.0.1", () => r()));
    const port = srv.address().port;
    const t = await DgramTransport.open("127.0.0.1");
    try {
      const r = await bindingTransaction(t, "127.0.0.1", port, { timeoutMs: 2000 });
      expect(r.ok).toBe(true);
      if (r.ok) {
        expect(r.mapped.ip).toBe("127.0.0.1");
        expect(r.mapped.port).toBeGreaterThan(0);
      }
      expect(t.mode).toBe("fallback");
    } finally {
      await t.close();
      srv.close();
    }
    expect(await t.recv(10)).toBeNull();
    expect(parseBindingResponse(new Uint8Array(0), newTransactionId()).kind).toBe("ignore");
  });
});
