/**
 * The native addon's JavaScript surface (native/binding*.cc), declared once so the loader,
 * the native backend and the fake agree. Pinned up front; extend it, do not break it.
 *
 * Conventions: everything that talks to the kernel returns a Promise and runs off the JS
 * thread (N-API AsyncWorker); pure builders/parsers and trivial syscalls are synchronous.
 * Failures reject with a NativeError (see errors.ts) carrying op, object and errno name.
 * Keys are raw 32-byte Uint8Arrays; addresses are strings ("10.100.0.1", "fd00::1").
 */

export interface NativeLink {
  index: number;
  name: string;
  /** IFLA_INFO_KIND, e.g. "wireguard", "veth", "tun"; "" when none. */
  kind: string;
  mtu: number;
  up: boolean;
}

export interface NativeAddr {
  ifindex: number;
  family: 4 | 6;
  address: string;
  prefixlen: number;
}

export interface NativeRoute {
  family: 4 | 6;
  dst: string;
  prefixlen: number;
  ifindex: number;
  src?: string;
  gateway?: string;
  table: number;
}

export interface WgPeerNative {
  publicKey: Uint8Array;
  /** Absent = leave alone; all-zero 32 bytes = remove the PSK. */
  presharedKey?: Uint8Array;
  /** "ip:port" or "[v6]:port"; absent = leave alone. */
  endpoint?: string;
  /** Seconds; 0 disables; absent = leave alone. */
  persistentKeepalive?: number;
  /** CIDR strings. With replaceAllowedIps the list replaces the peer's; else it is added. */
  allowedIps?: string[];
  replaceAllowedIps?: boolean;
  remove?: boolean;
  updateOnly?: boolean;
  /** Read-back only. */
  lastHandshakeSec?: number;
  rxBytes?: number;
  txBytes?: number;
}

export interface WgDeviceNative {
  ifname: string;
  privateKey?: Uint8Array;
  publicKey?: Uint8Array;
  listenPort?: number;
  fwmark?: number;
  replacePeers?: boolean;
  peers: WgPeerNative[];
}

export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

export interface NativeAddon {
  version(): string;

  // rtnetlink
  linkList(): Promise<NativeLink[]>;
  linkAdd(name: string, kind: string): Promise<void>;
  linkDel(name: string): Promise<void>;
  linkSet(name: string, opts: { up?: boolean; mtu?: number }): Promise<void>;
  addrList(ifindex?: number): Promise<NativeAddr[]>;
  addrAdd(ifname: string, address: string, prefixlen: number): Promise<void>;
  addrDel(ifname: string, address: string, prefixlen: number): Promise<void>;
  routeList(table?: number): Promise<NativeRoute[]>;
  routeAdd(r: { dst: string; prefixlen: number; ifname: string; src?: string; table?: number }): Promise<void>;
  routeDel(r: { dst: string; prefixlen: number; ifname: string; table?: number }): Promise<void>;

  // WireGuard generic netlink (kernel backend)
  wgGetDevice(ifname: string): Promise<WgDeviceNative>;
  wgSetDevice(dev: WgDeviceNative): Promise<void>;
  /** Pure: the SET_DEVICE messages (one Uint8Array each) exactly as they would be sent. */
  wgBuildSet(dev: WgDeviceNative, familyId: number, seq: number): Uint8Array[];
  /** Pure: merge GET_DEVICE multipart replies (raw netlink messages) into one device. */
  wgParseGet(messages: Uint8Array[]): WgDeviceNative;

  // nftables (nfnetlink): see firewall-api.ts for the batch/dump shapes
  nftApply(batch: unknown): Promise<void>;
  nftDump(family: string, table: string): Promise<unknown>;
  nftBuildBatch(batch: unknown, seq: number): Uint8Array[];
  /** Pure: parse raw nf_tables dump messages (fuzz tests). */
  nftParseDump(messages: Uint8Array[]): unknown;

  // sockets / process
  peerCred(fd: number): PeerCred;
  execve(path: string, argv: string[], env: string[]): never;
  /** sd_notify over $NOTIFY_SOCKET (datagram); false when no socket is set. */
  sdNotify(state: string): boolean;
}
