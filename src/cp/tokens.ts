/** One-time bootstrap tokens with a TTL. Only the SHA-256 of a token is stored. */
import { randomBytes } from "node:crypto";
import type { Db } from "./db.ts";
import { sha256Hex } from "./secrets-crypto.ts";

/** Why a token was refused. */
export type TokenProblem = "unknown" | "expired" | "used";

export class TokenStore {
  constructor(private readonly db: Db, private readonly now: () => number = Date.now) {}

  /** Creates a token valid for `ttlMs`; the plaintext is returned once and never stored. */
  create(ttlMs: number): { token: string; expires_at: string } {
    // Printable ASCII only (protocol.md §2 validation on the agent side).
    const token = `plxb_${randomBytes(24).toString("base64url")}`;
    const now = this.now();
    this.db
      .query("INSERT INTO bootstrap_tokens (token_hash, created_at, expires_at) VALUES (?, ?, ?)")
      .run(sha256Hex(token), now, now + ttlMs);
    return { token, expires_at: new Date(now + ttlMs).toISOString() };
  }

  /** Checks a token without consuming it. */
  check(token: string): TokenProblem | undefined {
    const row = this.db
      .query("SELECT expires_at, used_at FROM bootstrap_tokens WHERE token_hash = ?")
      .get(sha256Hex(token)) as { expires_at: number; used_at: number | null } | null;
    if (!row) return "unknown";
    if (row.used_at !== null) return "used";
    if (row.expires_at <= this.now()) return "expired";
    return undefined;
  }

  /** Marks a token used; call inside the registration transaction after check(). */
  consume(token: string, nodeId: string): void {
    this.db
      .query("UPDATE bootstrap_tokens SET used_at = ?, used_by = ? WHERE token_hash = ? AND used_at IS NULL")
      .run(this.now(), nodeId, sha256Hex(token));
  }
}
