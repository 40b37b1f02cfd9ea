/**
 * The identity files of `data_dir` (spec README "data_dir layout"), with the names and
 * encodings existing plexd nodes use. Written in the order of protocol.md §6.1 with
 * `identity.json` last: its presence marks a complete identity, so a crash mid-way leaves the
 * node "unregistered", never half-registered.
 */
import { chmodSync, statSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import type { Logger } from "../log/index.ts";
import { nullLogger } from "../log/index.ts";
import { ensurePrivateDir, readJsonFile, readTextFile, writeFileAtomic, writeJsonAtomic } from "../store/index.ts";
import { meshIpProblem } from "../controlplane/peers.ts";
import { key32, SigningKeysSchema, type SigningKeys } from "../controlplane/schemas.ts";
import { decodeKey, encodeKey, isClamped, publicKeyOf } from "./keys.ts";

/** File names inside data_dir. */
export const IdentityFiles = {
  identity: "identity.json",
  privateKey: "private_key",
  nodeSecretKey: "node_secret_key",
  signingPublicKey: "signing_public_key",
  signingKeys: "signing_keys.json",
} as const;

/** A complete node identity. Keys are base64 std. */
export interface Identity {
  readonly nodeId: string;
  readonly meshIp: string;
  readonly privateKey: string;
  readonly publicKey: string;
  /** NSK exactly as received; also the CP bearer token. */
  readonly nodeSecretKey: string;
  /** Current CP signing key (the `signing_public_key` file wins over identity.json). */
  readonly signingPublicKey: string;
  readonly signingKeys: SigningKeys;
}

/** What {@link persistIdentity} writes. */
export interface IdentityToPersist {
  readonly nodeId: string;
  readonly meshIp: string;
  readonly privateKey: string;
  readonly nodeSecretKey: string;
  readonly signingPublicKey: string;
}

/** identity.json on disk. */
export const IdentityJsonSchema = v.object({
  node_id: v.pipe(v.string(), v.minLength(1, "node_id missing")),
  mesh_ip: v.pipe(
    v.string(),
    v.check((s) => meshIpProblem(s) === undefined, "mesh_ip invalid"),
  ),
  signing_public_key: v.optional(key32),
});

/**
 * Persists a fresh identity: private_key, node_secret_key, signing_public_key,
 * signing_keys.json, then identity.json — each 0600 through the atomic writer.
 * @throws StoreError
 */
export function persistIdentity(dataDir: string, id: IdentityToPersist): void {
  ensurePrivateDir(dataDir);
  writeFileAtomic(join(dataDir, IdentityFiles.privateKey), id.privateKey);
  writeFileAtomic(join(dataDir, IdentityFiles.nodeSecretKey), id.nodeSecretKey);
  writeSigningKeys(dataDir, { current: id.signingPublicKey, previous: null, transition_expires: null });
  writeJsonAtomic(join(dataDir, IdentityFiles.identity), {
    node_id: id.nodeId,
    mesh_ip: id.meshIp,
    signing_public_key: id.signingPublicKey,
  });
}

/** Replaces the NSK file (key rotation extension, re-registration); commit before switching bearer. */
export function writeNodeSecretKey(dataDir: string, nsk: string): void {
  writeFileAtomic(join(dataDir, IdentityFiles.nodeSecretKey), nsk);
}

/** Persists the signing key set: `signing_public_key` (current) and `signing_keys.json`. */
export function writeSigningKeys(dataDir: string, keys: SigningKeys): void {
  writeFileAtomic(join(dataDir, IdentityFiles.signingPublicKey), keys.current);
  writeJsonAtomic(join(dataDir, IdentityFiles.signingKeys), {
    current: keys.current,
    previous: keys.previous,
    transition_expires: keys.transition_expires,
  });
}

/** Result of {@link loadIdentity}. */
export type LoadedIdentity =
  | { readonly registered: true; readonly identity: Identity }
  | { readonly registered: false; readonly reason: "missing" | "incomplete"; readonly detail: string };

/**
 * lifecycle.md §2 step 8. `identity.json` missing → unregistered. Present but another file
 * unreadable or invalid → `warn`, unregistered (a token is then required). The
 * `signing_public_key` file wins over the copy in identity.json; when that file is missing the
 * copy is used (**Decision:** with a warning — the copy is a CP key from the same registration).
 * Identity files with a mode wider than 0600 are tightened with a warning.
 */
export function loadIdentity(dataDir: string, logger: Logger = nullLogger): LoadedIdentity {
  const p = (name: string) => join(dataDir, name);
  const incomplete = (detail: string): LoadedIdentity => {
    logger.warn("identity incomplete; treating node as unregistered (a bootstrap token is required)", { detail });
    return { registered: false, reason: "incomplete", detail };
  };
  let ij: v.InferOutput<typeof IdentityJsonSchema> | undefined;
  try {
    ij = readJsonFile(p(IdentityFiles.identity), IdentityJsonSchema);
  } catch (err) {
    return incomplete((err as Error).message);
  }
  if (ij === undefined) return { registered: false, reason: "missing", detail: `${IdentityFiles.identity} not found` };

  for (const name of Object.values(IdentityFiles)) tightenMode(p(name), logger);

  let privateKey: string;
  let publicKey: string;
  try {
    const text = readTextFile(p(IdentityFiles.privateKey));
    if (text === undefined) return incomplete(`${IdentityFiles.privateKey} not found`);
    privateKey = text.trim();
    const raw = decodeKey(privateKey);
    if (!isClamped(raw)) logger.warn("private_key is not clamped; WireGuard clamps it on use");
    publicKey = encodeKey(publicKeyOf(raw));
  } catch (err) {
    return incomplete(`${IdentityFiles.privateKey}: ${(err as Error).message}`);
  }

  let nodeSecretKey: string;
  try {
    const text = readTextFile(p(IdentityFiles.nodeSecretKey));
    if (text === undefined) return incomplete(`${IdentityFiles.nodeSecretKey} not found`);
    // Stored verbatim; a trailing newline added by an editor is not part of the key.
    nodeSecretKey = text.replace(/[\r\n]+$/, "");
    if (!/^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(nodeSecretKey)) return incomplete(`${IdentityFiles.nodeSecretKey} is empty or not printable ASCII`);
  } catch (err) {
    return incomplete((err as Error).message);
  }

  let signingPublicKey: string;
  try {
    const text = readTextFile(p(IdentityFiles.signingPublicKey));
    if (text === undefined) {
      if (ij.signing_public_key === undefined) return incomplete(`${IdentityFiles.signingPublicKey} not found`);
      logger.warn("signing_public_key file missing; using the copy in identity.json");
      signingPublicKey = ij.signing_public_key;
    } else {
      signingPublicKey = text.trim();
      decodeKey(signingPublicKey);
    }
  } catch (err) {
    return incomplete(`${IdentityFiles.signingPublicKey}: ${(err as Error).message}`);
  }

  let signingKeys: SigningKeys = { current: signingPublicKey, previous: null, transition_expires: null };
  try {
    const sk = readJsonFile(p(IdentityFiles.signingKeys), SigningKeysSchema);
    // previous/transition only belong to the same current key.
    if (sk !== undefined && sk.current === signingPublicKey) signingKeys = sk;
  } catch (err) {
    logger.warn("signing_keys.json unreadable; trusting only the current signing key", { error: (err as Error).message });
  }

  return {
    registered: true,
    identity: { nodeId: ij.node_id, meshIp: ij.mesh_ip, privateKey, publicKey, nodeSecretKey, signingPublicKey, signingKeys },
  };
}

function tightenMode(path: string, logger: Logger): void {
  try {
    const mode = statSync(path).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      chmodSync(path, 0o600);
      logger.warn("identity file mode too wide; tightened to 0600", { path, mode: mode.toString(8) });
    }
  } catch {
    /* missing files are reported by the readers */
  }
}
