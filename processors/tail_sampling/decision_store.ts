/**
 * The shared decision store as the protocol sees it (peer_decisions.ts): a
 * key-value store of keeps, written and read in batches. redis_store.ts is the
 * Redis-protocol implementation (loaded only when shared_decisions is set);
 * MemoryDecisionStore is the test double.
 *
 * What is stored: key = key_prefix + trace id (hex), value = the keep, encoded
 * by encodeKeep: keep probability ("" when unknown), whether its randomness is
 * OTEP 235's R ("c") or an independent hash ("i"), the policy name and the
 * composite sub-policy name. No span content.
 */
import type { DecisionRecord } from './decide.js';
import { SAMPLED } from './policies.js';

export interface KeepWrite {
  readonly traceId: string;
  readonly value: string;
}

/** Kinds of store errors, the label of `..._shared_store_errors_total{kind}`. */
export type StoreErrorKind = 'timeout' | 'connection' | 'refused' | 'other';

export class DecisionStoreError extends Error {
  constructor(
    message: string,
    readonly kind: StoreErrorKind,
  ) {
    super(message);
    this.name = 'DecisionStoreError';
  }
}

export interface DecisionStore {
  /**
   * Writes keeps in one round trip (pipelined SET key value EX ttl NX: the
   * first keeper's policy stays). Rejects with a DecisionStoreError.
   */
  publish(keeps: readonly KeepWrite[], ttlSec: number): Promise<void>;
  /** Reads the keeps of many traces in as few round trips as the store allows (MGET); null where none. */
  read(traceIds: readonly string[]): Promise<Array<string | null>>;
  /** Round trips the last publish or read took (the load test counts commands with it). */
  readonly lastRoundTrips: number;
  close(): Promise<void>;
}

const SEP = '\u001f';

export function encodeKeep(rec: DecisionRecord): string {
  const p = Number.isNaN(rec.p) ? '' : String(rec.p);
  return p + SEP + (rec.consistent ? 'c' : 'i') + SEP + rec.policy + (rec.compositeSub !== undefined ? SEP + rec.compositeSub : '');
}

/** The decision record of a keep read from the store; undefined when the value is not one this code wrote. */
export function decodeKeep(value: string, now: number): DecisionRecord | undefined {
  const parts = value.split(SEP);
  if (parts.length < 3 || parts.length > 4) return undefined;
  const p = parts[0] === '' ? NaN : Number(parts[0]);
  if (!Number.isNaN(p) && !(p > 0 && p <= 1)) return undefined;
  if (parts[0] !== '' && Number.isNaN(p)) return undefined;
  return { decision: SAMPLED, policy: parts[2], compositeSub: parts[3], p, consistent: parts[1] === 'c', decidedAt: now };
}

/**
 * In-memory store for tests: optional latency through an injected
 * scheduler, failure switch, and counts of what was asked.
 */
export class MemoryDecisionStore implements DecisionStore {
  /** `data`: share one map between several stores to stand for one server seen by several sidecars. */
  constructor(readonly data = new Map<string, string>()) {}
  failWith: DecisionStoreError | undefined;
  publishes = 0;
  reads = 0;
  keysRead = 0;
  readonly readsPerTrace = new Map<string, number>();
  lastRoundTrips = 0;
  /** Called before answering; tests use it to hold an answer back. */
  gate: (() => Promise<void>) | undefined;

  async publish(keeps: readonly KeepWrite[]): Promise<void> {
    if (this.gate) await this.gate();
    if (this.failWith) throw this.failWith;
    this.publishes++;
    this.lastRoundTrips = 1;
    for (const k of keeps) if (!this.data.has(k.traceId)) this.data.set(k.traceId, k.value);
  }

  async read(traceIds: readonly string[]): Promise<Array<string | null>> {
    if (this.gate) await this.gate();
    if (this.failWith) throw this.failWith;
    this.reads++;
    this.lastRoundTrips = 1;
    this.keysRead += traceIds.length;
    for (const id of traceIds) this.readsPerTrace.set(id, (this.readsPerTrace.get(id) ?? 0) + 1);
    return traceIds.map((id) => this.data.get(id) ?? null);
  }

  async close(): Promise<void> {}
}
