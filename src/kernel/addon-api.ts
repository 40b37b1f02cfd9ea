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
  /** Resolves with the ruleset generation after the commit (batches may carry an expected `genid`). */
  nftApply(batch: unknown): Promise<number>;
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

// ---- NAT traversal (native/binding_raw.cc, lifecycle.md §5.1) ----

/** Opaque handle of a raw UDP socket (an N-API External). */
export type RawUdpHandle = { readonly __rawUdpHandle: unique symbol };

/** One datagram received by `rawUdpRecv`. */
export interface RawUdpDatagram {
  srcIp: string;
  srcPort: number;
  /** UDP payload (a STUN message: the filter only passes cookie 0x2112A442). */
  payload: Uint8Array;
}

// Declaration merging: adds the raw-socket calls to NativeAddon without touching the block above.
export interface NativeAddon {
  /**
   * AF_INET/SOCK_RAW/IPPROTO_UDP socket with a BPF filter: UDP destination port = listenPort and
   * payload bytes 4–7 = STUN cookie. Rejects EPERM without CAP_NET_RAW.
   */
  rawUdpOpen(listenPort: number): Promise<RawUdpHandle>;
  /** Sends one datagram with a UDP header written by us: srcPort → dstIp:dstPort (IPv4). */
  rawUdpSend(handle: RawUdpHandle, srcPort: number, dstIp: string, dstPort: number, payload: Uint8Array): Promise<void>;
  /**
   * Waits up to timeoutMs (0–60000) for a datagram passing the filter; null on timeout. A
   * pending receive rejects ECANCELED when the handle is closed.
   */
  rawUdpRecv(handle: RawUdpHandle, timeoutMs: number): Promise<RawUdpDatagram | null>;
  /** Closes the handle (idempotent); the fd is released once no receive is pending. */
  rawUdpClose(handle: RawUdpHandle): void;
  /** Source address the kernel's route lookup picks towards dstIp (IPv4). */
  routeSource(dstIp: string): Promise<string>;
  /** Pure test hook: the UDP datagram (header + payload, checksum filled) rawUdpSend would send. */
  _rawUdpBuild(srcIp: string, srcPort: number, dstIp: string, dstPort: number, payload: Uint8Array): Uint8Array;
}

// ---- nftables notifications (native/binding_nftmon.cc, policy enforcement) ----

/**
 * One nf_tables notification. Object messages (`newtable` … `delsetelem`) carry the family
 * ("inet", "ip", …) and table; `newgen` ends each committed transaction and names the
 * committing thread (pid as the kernel sees it) and process; `overflow` means notifications
 * were lost (assume anything changed); `error` means the monitor stopped.
 */
export type NftMonitorEvent =
  | {
      type:
        | "newtable" | "deltable" | "newchain" | "delchain" | "newrule" | "delrule" | "newset" | "delset"
        | "newsetelem" | "delsetelem" | "newobj" | "delobj" | "newflowtable" | "delflowtable" | "other";
      family: string;
      table: string;
    }
  | { type: "newgen"; gen: number; pid: number; proc: string }
  | { type: "overflow" | "error"; code?: string };

/** A running monitor thread. close() stops and joins it (idempotent). */
export interface NftMonitorHandle {
  close(): void;
  /** Let the process exit although the monitor runs (unref) or not (ref, the default). */
  unref(): void;
  ref(): void;
}

// Declaration merging: adds the read-only nftables calls to NativeAddon.
export interface NativeAddon {
  /** Subscribes to NFNLGRP_NFTABLES on a dedicated thread; each recv() becomes one callback. */
  nftMonitor(callback: (events: NftMonitorEvent[]) => void): NftMonitorHandle;
  /** The current ruleset generation id (changes with every committed transaction). */
  nftGetGen(): Promise<number>;
  /** Every table of every family (read-only). */
  nftListTables(): Promise<Array<{ family: string; name: string }>>;
}
