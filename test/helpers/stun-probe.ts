/**
 * One STUN binding request from inside a lab namespace (used by the lab's self-test):
 *   bun test/helpers/stun-probe.ts <server ip> <server port> [local port]
 * Prints the XOR-mapped `ip:port` the server saw, or `timeout` after 2 s.
 */
export {};

const [host, port, lport] = [process.argv[2]!, Number(process.argv[3]), Number(process.argv[4] ?? 0)];
const req = new Uint8Array(20);
const v = new DataView(req.buffer);
v.setUint16(0, 0x0001);
v.setUint32(4, 0x2112a442);
crypto.getRandomValues(req.subarray(8));
const mapped = new Promise<string>((resolve) => {
  void Bun.udpSocket({
    port: lport,
    socket: {
      data(_s, d) {
        const r = new DataView(d.buffer, d.byteOffset, d.byteLength);
        const p = r.getUint16(26) ^ 0x2112;
        const a = (r.getUint32(28) ^ 0x2112a442) >>> 0;
        resolve(`${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}:${p}`);
      },
    },
  }).then((s) => s.send(req, port, host));
});
console.log(await Promise.race([mapped, Bun.sleep(2000).then(() => "timeout")]));
process.exit(0);
