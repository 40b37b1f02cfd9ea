/**
 * Per-node event log: every event gets a monotonic sequence number, is signed, stored with its
 * exact SSE data text (so replays are byte-identical) and then handed to live SSE streams.
 */
import { randomBytes, type KeyObject } from "node:crypto";
import type { Db } from "./db.ts";
import { compactPayload, payloadText } from "./canonical.ts";
import { envelopeText, signEnvelope, type KeyRing, type EnvelopeFields } from "./sign.ts";

/** One stored event. */
export interface StoredEvent {
  readonly seq: number;
  readonly eventId: string;
  readonly eventType: string;
  /** The SSE `data` text (one line). */
  readonly data: string;
}

/** Something that wants to hear about new events of one node (an SSE stream). */
export interface Subscriber {
  wake(): void;
  close(): void;
}

/** Options for one published event; the defaults produce a correct, fresh, signed event. */
export interface PublishOptions {
  /** Raw JSON payload text; compacted (not re-serialised) before signing. */
  payloadText?: string;
  issuedAt?: string;
  nonce?: string;
  /** Sign with this key instead of the current one (signing key rotation uses the old key). */
  key?: KeyObject;
  /** Corrupt the signature after signing (fault injection). */
  forge?: boolean;
}

/** The SSE id / event_id for a sequence number. */
export const eventIdFor = (seq: number) => `evt_${String(seq).padStart(10, "0")}`;

/** Parses a Last-Event-ID (`evt_0000000012` or `12`) into a sequence number; 0 when unusable. */
export function seqFromLastEventId(text: string | null): number {
  if (!text) return 0;
  const m = /^(?:evt_)?(\d{1,15})$/.exec(text.trim());
  return m ? Number(m[1]) : 0;
}

export class EventLog {
  private readonly subs = new Map<string, Set<Subscriber>>();

  constructor(
    private readonly db: Db,
    private readonly keys: KeyRing,
    private readonly now: () => number = Date.now,
  ) {}

  /** Signs and appends an event for `nodeId`, then wakes its streams. */
  publish(nodeId: string, eventType: string, payload: unknown, opts: PublishOptions = {}): StoredEvent {
    return this.append(nodeId, eventType, (eventId) => {
      const f: EnvelopeFields = {
        eventType,
        eventId,
        issuedAt: opts.issuedAt ?? new Date(this.now()).toISOString(),
        nonce: opts.nonce ?? randomBytes(16).toString("base64"),
        payloadText: opts.payloadText !== undefined ? compactPayload(opts.payloadText) : payloadText(payload),
      };
      let sig = signEnvelope(opts.key ?? this.keys.current().privateKey, f);
      if (opts.forge) {
        const b = Buffer.from(sig, "base64");
        b[0] = (b[0] as number) ^ 0x01;
        sig = b.toString("base64");
      }
      return envelopeText(f, sig);
    });
  }

  /** Appends pre-built data text (fault injection: malformed events). */
  appendRaw(nodeId: string, eventType: string, build: (eventId: string) => string): StoredEvent {
    return this.append(nodeId, eventType, build);
  }

  private append(nodeId: string, eventType: string, build: (eventId: string) => string): StoredEvent {
    const ev = this.db.transaction((): StoredEvent => {
      const row = this.db.query("SELECT next_seq FROM nodes WHERE id = ?").get(nodeId) as
        | { next_seq: number }
        | null;
      if (!row) throw new Error(`unknown node ${nodeId}`);
      const seq = row.next_seq;
      const eventId = eventIdFor(seq);
      const data = build(eventId);
      this.db.query("UPDATE nodes SET next_seq = ? WHERE id = ?").run(seq + 1, nodeId);
      this.db
        .query("INSERT INTO events (node_id, seq, event_id, event_type, data, created_at) VALUES (?, ?, ?, ?, ?, ?)")
        .run(nodeId, seq, eventId, eventType, data, this.now());
      return { seq, eventId, eventType, data };
    })();
    for (const s of this.subs.get(nodeId) ?? []) s.wake();
    return ev;
  }

  /** Events of `nodeId` with seq > `afterSeq`, oldest first. */
  after(nodeId: string, afterSeq: number, limit = 500): StoredEvent[] {
    const rows = this.db
      .query(
        "SELECT seq, event_id, event_type, data FROM events WHERE node_id = ? AND seq > ? ORDER BY seq LIMIT ?",
      )
      .all(nodeId, afterSeq, limit) as { seq: number; event_id: string; event_type: string; data: string }[];
    return rows.map((r) => ({ seq: r.seq, eventId: r.event_id, eventType: r.event_type, data: r.data }));
  }

  /** The last stored event of a node (used to forge replays), or undefined. */
  last(nodeId: string): StoredEvent | undefined {
    const r = this.db
      .query("SELECT seq, event_id, event_type, data FROM events WHERE node_id = ? ORDER BY seq DESC LIMIT 1")
      .get(nodeId) as { seq: number; event_id: string; event_type: string; data: string } | null;
    return r ? { seq: r.seq, eventId: r.event_id, eventType: r.event_type, data: r.data } : undefined;
  }

  subscribe(nodeId: string, s: Subscriber): void {
    let set = this.subs.get(nodeId);
    if (!set) this.subs.set(nodeId, (set = new Set()));
    set.add(s);
  }

  unsubscribe(nodeId: string, s: Subscriber): void {
    const set = this.subs.get(nodeId);
    set?.delete(s);
    if (set?.size === 0) this.subs.delete(nodeId);
  }

  /** Closes every live stream of a node (node removed, or fault injection). */
  closeStreams(nodeId: string): number {
    const set = [...(this.subs.get(nodeId) ?? [])];
    for (const s of set) s.close();
    return set.length;
  }

  /** Makes every live stream of a node deliver what is pending (after a stall ends). */
  wake(nodeId: string): void {
    for (const s of this.subs.get(nodeId) ?? []) s.wake();
  }

  /** Number of live streams of a node. */
  streamCount(nodeId: string): number {
    return this.subs.get(nodeId)?.size ?? 0;
  }
}
