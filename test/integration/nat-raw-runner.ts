/**
 * Socket chores for nat-raw.test.ts, run inside a namespace (`ip netns exec`):
 *   raw-listen <port> <ms>                      raw socket + BPF filter; prints each datagram
 *   raw-send <srcPort> <dstIp> <dstPort> <hex>  one datagram with our own UDP header
 *   udp-listen <port> <ms>                      plain UDP socket; prints each datagram
 *   udp-send <dstIp> <dstPort> <hex> [srcPort]  plain UDP datagram
 *   open-raw <port>                             prints the transport mode openStunTransport picks
 * Listeners print "ready" once bound, then one JSON line per datagram, then "done".
 */
import { createSocket } from "node:dgram";
import { loadAddon } from "../../src/kernel/addon.ts";
import { openStunTransport } from "../../src/nat/transport.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

if (import.meta.main) {
  const [cmd, ...a] = process.argv.slice(2);
  if (cmd === "raw-listen") {
    const addon = loadAddon();
    const h = await addon.rawUdpOpen(Number(a[0]));
    console.log("ready");
    const end = Date.now() + Number(a[1]);
    while (Date.now() < end) {
      const d = await addon.rawUdpRecv(h, Math.max(1, end - Date.now()));
      if (d) console.log(JSON.stringify({ srcIp: d.srcIp, srcPort: d.srcPort, payload: hex(d.payload) }));
    }
    addon.rawUdpClose(h);
    console.log("done");
  } else if (cmd === "raw-send") {
    const addon = loadAddon();
    const h = await addon.rawUdpOpen(9);
    await addon.rawUdpSend(h, Number(a[0]), a[1]!, Number(a[2]), new Uint8Array(Buffer.from(a[3]!, "hex")));
    addon.rawUdpClose(h);
  } else if (cmd === "udp-listen") {
    const s = createSocket("udp4");
    const lines: string[] = [];
    s.on("message", (m, r) => lines.push(JSON.stringify({ srcIp: r.address, srcPort: r.port, payload: hex(m) })));
    await new Promise<void>((r) => s.bind(Number(a[0]), "0.0.0.0", () => r()));
    console.log("ready");
    await Bun.sleep(Number(a[1]));
    for (const l of lines) console.log(l);
    s.close();
    console.log("done");
  } else if (cmd === "udp-send") {
    const s = createSocket("udp4");
    if (a[3]) await new Promise<void>((r) => s.bind(Number(a[3]), "0.0.0.0", () => r()));
    await new Promise<void>((res, rej) => s.send(Buffer.from(a[2]!, "hex"), Number(a[1]), a[0]!, (e) => (e ? rej(e) : res())));
    s.close();
  } else if (cmd === "open-raw") {
    let addon = null;
    try {
      addon = loadAddon();
    } catch (e) {
      console.log(JSON.stringify({ loadError: (e as Error).message }));
    }
    const t = await openStunTransport(addon, Number(a[0]));
    console.log(JSON.stringify({ mode: t.transport.mode, fallbackReason: t.fallbackReason ?? null }));
    await t.transport.close();
  } else {
    console.error(`unknown command ${cmd}`);
    process.exit(2);
  }
}
