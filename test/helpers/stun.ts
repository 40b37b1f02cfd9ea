/**
 * A tiny in-process STUN binding responder (RFC 5389 §7, success response with
 * XOR-MAPPED-ADDRESS only) for the mesh lab. The reference CP learns a node's WireGuard endpoint
 * only from `PUT …/endpoint`, which the agent sends after STUN discovery (lifecycle.md §5.4), so
 * the lab needs a STUN server on the bridge: nodes then discover `nat_type: none` and report
 * `<veth ip>:<listen_port>`. Running it in the lab process keeps every socket tied to the lab's
 * lifetime (no extra PID to track) and lets tests count requests.
 */

const MAGIC = 0x2112a442;

/** One listening responder; `close()` releases the socket. */
export interface StunServer {
  readonly address: string;
  readonly port: number;
  /** Binding requests answered so far. */
  readonly answered: number;
  close(): void;
}

/** Builds the binding success response for `request` as seen from `ip:port`; null if not a request. */
export function bindingResponse(request: Uint8Array, ip: string, port: number): Uint8Array | null {
  if (request.length < 20) return null;
  const req = new DataView(request.buffer, request.byteOffset, request.byteLength);
  if (req.getUint16(0) !== 0x0001 || req.getUint32(4) !== MAGIC) return null;
  const octets = ip.split(".").map(Number);
  if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) return null;
  const out = new Uint8Array(32);
  const v = new DataView(out.buffer);
  v.setUint16(0, 0x0101);
  v.setUint16(2, 12);
  v.setUint32(4, MAGIC);
  out.set(request.subarray(8, 20), 8);
  v.setUint16(20, 0x0020); // XOR-MAPPED-ADDRESS
  v.setUint16(22, 8);
  v.setUint8(25, 0x01); // IPv4
  v.setUint16(26, port ^ (MAGIC >>> 16));
  const addr = ((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0;
  v.setUint32(28, (addr ^ MAGIC) >>> 0);
  return out;
}

/** Starts a responder on `address:port` (UDP). */
export async function startStun(address: string, port = 3478): Promise<StunServer> {
  let answered = 0;
  const sock = await Bun.udpSocket({
    hostname: address,
    port,
    socket: {
      data(s, data, rport, raddr) {
        const res = bindingResponse(data, raddr, rport);
        if (!res) return;
        answered++;
        s.send(res, rport, raddr);
      },
      // An ICMP port-unreachable for an earlier answer (the node's WireGuard port closed, e.g.
      // wireguard-go restarting) surfaces here as ECONNREFUSED; it is not a lab failure.
      error() {},
    },
  });
  return {
    address,
    port: sock.port,
    get answered() {
      return answered;
    },
    close: () => sock.close(),
  };
}
