/**
 * Self-signed TLS material for the reference CP: a CA and a server certificate for
 * 127.0.0.1/::1/localhost (plus the listen host), created with the `openssl` CLI on first start
 * and reused afterwards. The agent trusts it via `api.ca_file`.
 */
import { existsSync, mkdirSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { isIP } from "node:net";

/** Paths of the generated files. */
export interface TlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  let proc;
  try {
    proc = Bun.spawn(["openssl", ...args], { cwd, stdout: "pipe", stderr: "pipe" });
  } catch (e) {
    throw new Error("openssl not found: install it or start the CP with --no-tls", { cause: e });
  }
  const [code, err] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
  if (code !== 0) throw new Error(`openssl ${args[0]} failed (${code}): ${err.trim()}`);
}

/** Ensures CA + server certificate exist in `dir`; `host` is added to the SAN list. */
export async function ensureTls(dir: string, host: string): Promise<TlsFiles> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const files = { caFile: join(dir, "ca.pem"), certFile: join(dir, "server.pem"), keyFile: join(dir, "server-key.pem") };
  if (existsSync(files.caFile) && existsSync(files.certFile) && existsSync(files.keyFile)) return files;

  const sans = new Set(["DNS:localhost", "IP:127.0.0.1", "IP:::1"]);
  if (isIP(host)) sans.add(`IP:${host}`);
  else if (host) sans.add(`DNS:${host}`);
  const ext = (extra: string) => ["-addext", extra];

  await openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca-key.pem"], dir);
  await openssl(
    ["req", "-x509", "-new", "-key", "ca-key.pem", "-sha256", "-days", "3650", "-subj", "/CN=plexd reference CP CA",
      ...ext("basicConstraints=critical,CA:TRUE"), ...ext("keyUsage=critical,keyCertSign,cRLSign"), "-out", "ca.pem"],
    dir,
  );
  await openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "server-key.pem"], dir);
  await openssl(["req", "-new", "-key", "server-key.pem", "-subj", "/CN=localhost", "-out", "server.csr"], dir);
  await Bun.write(
    join(dir, "server.ext"),
    `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${[...sans].join(",")}\n`,
  );
  await openssl(
    ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-days", "825",
      "-sha256", "-extfile", "server.ext", "-out", "server.pem"],
    dir,
  );
  for (const f of ["ca-key.pem", "server-key.pem"]) chmodSync(join(dir, f), 0o600);
  return files;
}
