/** Syntactic checks used by the config schema (no filesystem or network access). */

const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** RFC 1123 host name (one or more labels, ≤ 253 characters). */
export function isHostname(s: string): boolean {
  return s.length > 0 && s.length <= 253 && s.split(".").every((l) => LABEL.test(l));
}

/** Dotted-quad IPv4 address. */
export function isIPv4(s: string): boolean {
  return IPV4.test(s);
}

/** IPv6 address (delegates to the URL parser, which is strict about the syntax). */
export function isIPv6(s: string): boolean {
  if (!s.includes(":")) return false;
  try {
    return new URL(`http://[${s}]/`).hostname.length > 2;
  } catch {
    return false;
  }
}

/** Host name, IPv4 or bracketed IPv6 (as written before a `:port`). */
export function isHost(s: string): boolean {
  if (s.startsWith("[") && s.endsWith("]")) return isIPv6(s.slice(1, -1));
  return isIPv4(s) || isHostname(s);
}

function isPort(s: string): boolean {
  return /^\d{1,5}$/.test(s) && Number(s) >= 1 && Number(s) <= 65535;
}

/** Splits `host[:port]`; IPv6 hosts must be bracketed (an unbracketed one yields an invalid host). */
function splitHostPort(s: string): [string, string | undefined] {
  if (s.startsWith("[")) {
    const end = s.indexOf("]");
    if (end < 0) return [s, undefined];
    const rest = s.slice(end + 1);
    if (rest === "") return [s, undefined];
    return rest.startsWith(":") ? [s.slice(0, end + 1), rest.slice(1)] : [s, undefined];
  }
  const parts = s.split(":");
  return parts.length === 2 ? [parts[0]!, parts[1]!] : [s, undefined];
}

/** `host:port` with a mandatory port (IPv6 in brackets). */
export function isHostPort(s: string): boolean {
  const [h, p] = splitHostPort(s);
  return p !== undefined && isHost(h) && isPort(p);
}

/** `host[:port]` (IPv6 in brackets). */
export function isHostOptionalPort(s: string): boolean {
  const [h, p] = splitHostPort(s);
  return p === undefined ? isHost(h) : isHost(h) && isPort(p);
}

/** Host part of `host:port`, brackets removed. */
export function hostOf(hostPort: string): string {
  const [h] = splitHostPort(hostPort);
  return h.startsWith("[") ? h.slice(1, -1) : h;
}

/** Loopback host names and addresses (`localhost`, 127.0.0.0/8, ::1). */
export function isLoopbackHost(host: string): boolean {
  const h = host.startsWith("[") ? host.slice(1, -1) : host;
  return h === "localhost" || h.endsWith(".localhost") || /^127\./.test(h) && isIPv4(h) || h === "::1" || h === "0:0:0:0:0:0:0:1";
}

function parseUrl(s: string): URL | undefined {
  try {
    return new URL(s);
  } catch {
    return undefined;
  }
}

/** `http://` or `https://` URL with a host. */
export function isHttpUrl(s: string): boolean {
  const u = parseUrl(s);
  return u !== undefined && (u.protocol === "http:" || u.protocol === "https:") && u.hostname !== "";
}

/** Control-plane URL rule of §2.1: https, or http only for loopback hosts. */
export function apiUrlProblem(s: string): string | undefined {
  const u = parseUrl(s);
  if (!u || u.hostname === "") return "must be an absolute URL like https://cp.example.net";
  if (u.protocol === "https:") return undefined;
  if (u.protocol === "http:") return isLoopbackHost(u.hostname) ? undefined : "http:// is only allowed for loopback hosts; use https://";
  return `unsupported scheme ${u.protocol.replace(/:$/, "")}; use https://`;
}

/** Absolute file system path. */
export function isAbsPath(s: string): boolean {
  return s.startsWith("/") && !s.includes("\0");
}

/** IPv4 or IPv6 CIDR prefix. */
export function isCidr(s: string): boolean {
  const [addr, bits, extra] = s.split("/");
  if (addr === undefined || bits === undefined || extra !== undefined || !/^\d{1,3}$/.test(bits)) return false;
  if (isIPv4(addr)) return Number(bits) <= 32;
  return isIPv6(addr) && Number(bits) <= 128;
}

/** Environment variable name. */
export function isEnvName(s: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(s);
}

/** Linux capability names (without the `CAP_` prefix). */
export const CAPABILITIES: readonly string[] = [
  "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
  "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
  "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
  "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
  "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
  "CHECKPOINT_RESTORE",
];

/**
 * Why a log-signal `match` pattern is unacceptable, or `undefined`: ECMAScript syntax, ≤ 512
 * characters, and no group with an unbounded quantifier inside that is itself repeated without
 * bound (`(a+)+`, `(.*)*`, `(?:x*y)+`) — the classic catastrophic-backtracking shape.
 */
export function regexProblem(src: string): string | undefined {
  if (src.length === 0) return "must not be empty";
  if (src.length > 512) return "must be at most 512 characters";
  try {
    new RegExp(src);
  } catch (e) {
    return `invalid regular expression: ${(e as Error).message}`;
  }
  return hasNestedUnbounded(src) ? "nested unbounded quantifiers (e.g. (a+)+) are not allowed" : undefined;
}

function hasNestedUnbounded(src: string): boolean {
  const stack: boolean[] = []; // per open group: does it contain an unbounded quantifier?
  let groupJustClosed = false; // the previous atom was a group that contains one
  let inClass = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (inClass) {
      if (c === "\\") i++;
      else if (c === "]") inClass = false;
      continue;
    }
    const unbounded = c === "*" || c === "+" || (c === "{" && /^\{\d+,\}/.test(src.slice(i)));
    if (unbounded) {
      if (groupJustClosed) return true;
      if (stack.length > 0) stack[stack.length - 1] = true;
    }
    const closedNow = c === ")" ? (stack.pop() ?? false) : false;
    if (closedNow && stack.length > 0) stack[stack.length - 1] = true;
    if (c === "(") stack.push(false);
    else if (c === "[") inClass = true;
    else if (c === "\\") i++;
    else if (c === "{" && /^\{\d+(,\d*)?\}/.test(src.slice(i))) i = src.indexOf("}", i);
    groupJustClosed = closedNow;
  }
  return false;
}
