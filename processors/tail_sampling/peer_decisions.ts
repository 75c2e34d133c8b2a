/**
 * Shared decisions (`shared_decisions`): sidecars that each see part of a
 * trace agree on keeping it, through a store of keeps (decision_store.ts).
 *
 * The protocol, per sidecar:
 * - Keep: a trace this sidecar keeps is published (trace id -> policy and
 *   keep probability), once, in a pipelined write per tick; with SET NX the
 *   first keeper's policy stays. A span whose status alone makes a
 *   `status_code` policy keep the trace is published as soon as it arrives
 *   (the next tick), before the trace's own decision: peers that decide
 *   sooner already see it.
 * - Hold: a trace this sidecar would not keep is held (it stays in the
 *   buffer, so memory and the disk spill budgets apply) for up to `wait`.
 *   Its id is read twice at most: once in the tick after the local decision
 *   and once at the deadline, each time in one multi-key read with every other
 *   trace read that tick. A keep found keeps the trace with the peer's policy
 *   stamped; none at the deadline: dropped (sampled_out).
 * - No broadcast, nothing on the receive path: only ids this sidecar holds
 *   are read, and only from the tick.
 * - Failure: a failed or timed-out round trip marks the store unavailable for
 *   a back-off (1 s doubling to 5 s); meanwhile every trace is decided
 *   alone at once, the traces held at that moment too, each counted in
 *   decisions_without_store_total{reason}; the next round trip after the
 *   back-off tries again (the client reconnects by itself). One log line per
 *   interval at most.
 *
 * The processor calls resolve() with each local decision; it returns the
 * decision to apply, or a time to hold the trace until.
 */
import type { CreateSettings } from '../../collector/component.js';
import type { Counter, Gauge, Histogram } from '../../collector/telemetry/metrics.js';
import type { DecisionRecord } from './decide.js';
import { decodeKeep, encodeKeep, type DecisionStore, DecisionStoreError, type KeepWrite, type StoreErrorKind } from './decision_store.js';
import { BoundedLru } from './lru.js';
import { METRIC_PREFIX, type DecisionReason } from './metrics.js';
import { DROPPED, SAMPLED } from './policies.js';
import type { AnyPolicyConfig, TailSamplingConfig } from './config.js';
import { STATUS_CODE_NAMES } from './config.js';

export interface PeerDecisionsOptions {
  /** How long a trace this sidecar would not keep waits for a peer's keep. */
  waitMs: number;
  ttlSec: number;
  /** Longest wait for a round trip before the trace is decided alone. */
  timeoutMs: number;
  tickMs: number;
  /** At most one warning per this interval. */
  logIntervalMs?: number;
}

export type WithoutStoreReason = 'unavailable' | 'timeout' | 'error';

interface Hold {
  readonly since: number;
  until: number;
  /** The local decision and the span count it was made on (reused while no span arrives). */
  local: DecisionRecord;
  spans: number;
  bytes: number;
  reads: number;
  /** A read of this trace is queued or in flight. */
  pending: boolean;
  /** The deadline read was asked. */
  final: boolean;
  /** The deadline read answered: no keep. */
  absent: boolean;
  failed: WithoutStoreReason | undefined;
}

/** Most keeps queued for the next write; beyond, a keep is not published (counted). */
const MAX_QUEUED_WRITES = 100_000;
/** Most round trips in flight; more wait for a later tick. */
const MAX_IN_FLIGHT = 4;
/** Ids per multi-key read. */
const READ_CHUNK = 1000;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 5_000;

type C = ReturnType<Counter['labels']>;

/**
 * Status codes whose presence on one span makes the trace kept whatever
 * else arrives: a top-level status_code policy lists them and no policy can
 * turn a keep into a drop (`drop`, `not`, `invert_match`). Code -> policy name.
 */
export function earlyKeepCodes(cfg: TailSamplingConfig): Array<string | undefined> | undefined {
  const json = JSON.stringify(cfg.policies);
  if (json.includes('"invert_match":true')) return undefined;
  const anyType = (ps: readonly AnyPolicyConfig[], types: string[]): boolean =>
    ps.some((p) => types.includes(p.type) || anyType([...((p as { and?: { and_sub_policy?: AnyPolicyConfig[] } }).and?.and_sub_policy ?? [])], types));
  if (anyType(cfg.policies, ['drop', 'not'])) return undefined;
  const codes: Array<string | undefined> = [];
  let any = false;
  // sample_on_first_match stamps the first sampling policy; a status_code policy after a probabilistic one is still certain to keep.
  for (const p of cfg.policies) {
    if (p.type !== 'status_code') continue;
    for (const name of p.status_code?.status_codes ?? []) {
      const c = STATUS_CODE_NAMES[name];
      if (c !== undefined && codes[c] === undefined) {
        codes[c] = p.name;
        any = true;
      }
    }
  }
  return any ? codes : undefined;
}

export class PeerDecisions {
  private store: DecisionStore | undefined;
  private readonly held = new Map<string, Hold>();
  private heldBytes = 0;
  /** Peer keeps read for held traces, applied at their next resolve. */
  private readonly learned = new Map<string, DecisionRecord>();
  /** Held traces whose answer (keep, none at the deadline, failure) is in: the processor decides them next tick. */
  private ready: string[] = [];
  private writes: KeepWrite[] = [];
  private readonly reads = new Set<string>();
  /**
   * Ids whose keep this sidecar published (or learned): written once. It only
   * has to span an early publish and the trace's decision (decision_wait):
   * 16k ids is 30 s of 500 kept traces/s; an evicted id costs one more SET NX.
   * (lru-cache allocates its arrays for `max` at the first write.)
   */
  private readonly published = new BoundedLru<string, true>(16_384);
  private inFlight = 0;
  private readonly inFlightWork = new Set<Promise<void>>();
  private downUntil = 0;
  private backoffMs = BACKOFF_MIN_MS;
  private lastLog = -Infinity;
  private suppressed = 0;
  private readonly logIntervalMs: number;

  private readonly m: {
    published: C;
    unpublished: C;
    learned: C;
    traces: ReturnType<Gauge['labels']>;
    bytes: ReturnType<Gauge['labels']>;
    roundTrips: Record<'read' | 'write', C>;
    keys: Record<'read' | 'write', C>;
    latency: Record<'read' | 'write', ReturnType<Histogram['labels']>>;
    errors: Record<StoreErrorKind, C>;
    alone: Record<WithoutStoreReason, C>;
    peerWait: ReturnType<Histogram['labels']>;
  };

  constructor(
    private readonly settings: CreateSettings,
    private readonly opts: PeerDecisionsOptions,
    store?: DecisionStore,
  ) {
    this.store = store;
    this.logIntervalMs = opts.logIntervalMs ?? 30_000;
    const t = settings.telemetry;
    const id = settings.id;
    const P = METRIC_PREFIX + 'shared_';
    const rt = t.counter(P + 'store_round_trips_total', 'Round trips to the shared decision store, by operation (read: multi-key reads; write: pipelined keep writes).', ['processor', 'op']);
    const keys = t.counter(P + 'store_keys_total', 'Keys read from or written to the shared decision store.', ['processor', 'op']);
    const lat = t.histogram(P + 'store_latency_seconds', 'Duration of one round trip to the shared decision store.', ['processor', 'op'], [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]);
    const errors = t.counter(P + 'store_errors_total', 'Failed round trips to the shared decision store, by kind (timeout, connection, refused, other).', ['processor', 'kind']);
    const alone = t.counter(
      P + 'decisions_without_store_total',
      'Traces this sidecar would not keep that it decided alone because the store could not be asked (unavailable: in back-off; timeout; error).',
      ['processor', 'reason'],
    );
    this.m = {
      published: t.counter(P + 'keeps_published_total', 'Keeps this sidecar wrote to the shared decision store.', ['processor']).labels(id),
      unpublished: t.counter(P + 'keeps_unpublished_total', 'Keeps that could not be written (store unavailable, or too many queued).', ['processor']).labels(id),
      learned: t.counter(P + 'keeps_learned_total', 'Traces this sidecar would not have kept, kept because a peer kept them.', ['processor']).labels(id),
      traces: t.gauge(P + 'traces_held', 'Traces held waiting for a peer\'s keep.', ['processor']).labels(id),
      bytes: t.gauge(P + 'bytes_held', 'Accounted bytes of the traces held for a peer\'s keep (part of the buffer).', ['processor']).labels(id),
      roundTrips: { read: rt.labels(id, 'read'), write: rt.labels(id, 'write') },
      keys: { read: keys.labels(id, 'read'), write: keys.labels(id, 'write') },
      latency: { read: lat.labels(id, 'read'), write: lat.labels(id, 'write') },
      errors: { timeout: errors.labels(id, 'timeout'), connection: errors.labels(id, 'connection'), refused: errors.labels(id, 'refused'), other: errors.labels(id, 'other') },
      alone: { unavailable: alone.labels(id, 'unavailable'), timeout: alone.labels(id, 'timeout'), error: alone.labels(id, 'error') },
      peerWait: t
        .histogram(P + 'peer_wait_seconds', 'Time a held trace waited until a peer\'s keep was learned.', ['processor'], [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60])
        .labels(id),
    };
  }

  /** The store, once connected (start). */
  attach(store: DecisionStore): void {
    this.store = store;
  }

  get hasStore(): boolean {
    return this.store !== undefined;
  }

  get heldTraces(): number {
    return this.held.size;
  }

  /** A span arrived whose status makes its trace certain to be kept by `policy`: publish now. */
  earlyKeep(traceId: string, policy: string): void {
    if (this.published.has(traceId)) return;
    this.queueWrite(traceId, { decision: SAMPLED, policy, compositeSub: undefined, p: 1, consistent: false, decidedAt: 0 });
  }

  /** The local decision of a held trace when no span arrived since it was made (no re-evaluation). */
  heldLocal(traceId: string, spans: number): DecisionRecord | undefined {
    const h = this.held.get(traceId);
    return h !== undefined && h.spans === spans ? h.local : undefined;
  }

  /**
   * A trace's local decision: returns the decision to apply, or the time
   * (ms) to hold the trace until (the processor keeps it buffered and calls
   * again then, or sooner when takeReady names it).
   */
  resolve(traceId: string, spans: number, bytes: number, local: DecisionRecord, reason: DecisionReason, now: number): DecisionRecord | number {
    const h = this.held.get(traceId);
    if (local.decision === SAMPLED) {
      if (h !== undefined) this.unhold(traceId, h);
      this.learned.delete(traceId);
      if (!this.published.has(traceId)) this.queueWrite(traceId, local);
      return local;
    }
    if (local.decision === DROPPED) {
      if (h !== undefined) this.unhold(traceId, h);
      this.learned.delete(traceId);
      return local;
    }
    const peer = this.learned.get(traceId);
    if (peer !== undefined) {
      this.learned.delete(traceId);
      if (h !== undefined) {
        this.m.peerWait.observe((now - h.since) / 1000);
        this.unhold(traceId, h);
      }
      this.published.set(traceId, true);
      this.m.learned.inc();
      return peer;
    }
    // Decided early (buffer full, too large, shutdown): no holding.
    const final = reason === 'buffer_full' || reason === 'too_large' || reason === 'shutdown';
    if (h === undefined) {
      if (final) return local;
      if (!this.available(now)) {
        this.m.alone.unavailable.inc();
        return local;
      }
      const nh: Hold = { since: now, until: now + this.opts.waitMs, local, spans, bytes, reads: 0, pending: false, final: false, absent: false, failed: undefined };
      this.held.set(traceId, nh);
      this.heldBytes += bytes;
      this.queueRead(traceId, nh);
      return nh.until;
    }
    this.heldBytes += bytes - h.bytes;
    h.bytes = bytes;
    h.local = local;
    h.spans = spans;
    if (h.failed !== undefined) {
      this.m.alone[h.failed].inc();
      this.unhold(traceId, h);
      return local;
    }
    if (final || h.absent) {
      this.unhold(traceId, h);
      return local;
    }
    if (now < h.until) return h.until;
    if (!h.final) {
      if (!this.available(now)) {
        this.m.alone.unavailable.inc();
        this.unhold(traceId, h);
        return local;
      }
      h.final = true;
      this.queueRead(traceId, h);
      // The answer names the trace in takeReady; this bound only matters when no answer comes.
      h.until = now + this.opts.timeoutMs + 2 * this.opts.tickMs;
      return h.until;
    }
    // The deadline read did not answer in time.
    this.m.alone.timeout.inc();
    this.unhold(traceId, h);
    return local;
  }

  /** Held traces whose answer is in, to decide now. */
  takeReady(): string[] {
    if (this.ready.length === 0) return this.ready;
    const r = this.ready;
    this.ready = [];
    return r;
  }

  /**
   * One tick's store traffic: the queued keeps in one pipelined write, the
   * queued reads in multi-key reads. Does not wait for the answers (they are
   * applied when they come); the returned promise settles when they have.
   */
  flush(now: number): Promise<void> {
    const store = this.store;
    const work: Array<Promise<void>> = [];
    if (store === undefined || !this.available(now)) {
      this.dropWrites();
      this.decideAlone(this.reads, 'unavailable');
      this.reads.clear();
      return Promise.resolve();
    }
    if (this.writes.length > 0 && this.inFlight < MAX_IN_FLIGHT) {
      const batch = this.writes;
      this.writes = [];
      work.push(this.track(this.writeBatch(store, batch)));
    }
    while (this.reads.size > 0 && this.inFlight < MAX_IN_FLIGHT) {
      const ids: string[] = [];
      for (const id of this.reads) {
        ids.push(id);
        this.reads.delete(id);
        if (ids.length >= READ_CHUNK) break;
      }
      work.push(this.track(this.readBatch(store, ids)));
    }
    return Promise.all(work).then(() => undefined);
  }

  /** Waits for the round trips in flight, at most `limitMs` (shutdown: a store that hangs must not hold it up). */
  async settle(limitMs = Infinity): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<void>((r) => {
      if (limitMs !== Infinity) timer = setTimeout(r, limitMs);
    });
    const all = (async () => {
      while (this.inFlightWork.size > 0) await Promise.all([...this.inFlightWork]);
    })();
    await Promise.race([all, limit]);
    if (timer !== undefined) clearTimeout(timer);
  }

  async close(): Promise<void> {
    const s = this.store;
    this.store = undefined;
    if (s !== undefined) await s.close().catch(() => undefined);
  }

  updateGauges(): void {
    this.m.traces.set(this.held.size);
    this.m.bytes.set(this.heldBytes);
  }

  // ------------------------------------------------------------------ internals

  private available(now: number): boolean {
    return this.store !== undefined && now >= this.downUntil;
  }

  private queueWrite(traceId: string, rec: DecisionRecord): void {
    this.published.set(traceId, true);
    if (this.writes.length >= MAX_QUEUED_WRITES) {
      this.m.unpublished.inc();
      return;
    }
    this.writes.push({ traceId, value: encodeKeep(rec) });
  }

  private queueRead(traceId: string, h: Hold): void {
    if (h.pending) return;
    h.pending = true;
    h.reads++;
    this.reads.add(traceId);
  }

  private unhold(traceId: string, h: Hold): void {
    this.held.delete(traceId);
    this.heldBytes -= h.bytes;
    if (h.pending) this.reads.delete(traceId);
  }

  private dropWrites(): void {
    if (this.writes.length === 0) return;
    this.m.unpublished.inc(this.writes.length);
    this.writes = [];
  }

  private track(p: Promise<void>): Promise<void> {
    this.inFlight++;
    const tracked = p.finally(() => {
      this.inFlight--;
      this.inFlightWork.delete(tracked);
    });
    this.inFlightWork.add(tracked);
    return tracked;
  }

  private async writeBatch(store: DecisionStore, batch: KeepWrite[]): Promise<void> {
    const t0 = performance.now();
    try {
      await store.publish(batch, this.opts.ttlSec);
    } catch (err) {
      this.m.unpublished.inc(batch.length);
      this.failed(err);
      return;
    }
    this.m.latency.write.observe((performance.now() - t0) / 1000);
    this.m.roundTrips.write.inc(store.lastRoundTrips);
    this.m.keys.write.inc(batch.length);
    this.m.published.inc(batch.length);
    this.succeeded();
  }

  private async readBatch(store: DecisionStore, ids: string[]): Promise<void> {
    const t0 = performance.now();
    let values: Array<string | null>;
    try {
      values = await store.read(ids);
    } catch (err) {
      const kind = this.failed(err);
      this.decideAlone(ids, kind === 'timeout' ? 'timeout' : 'error');
      return;
    }
    this.m.latency.read.observe((performance.now() - t0) / 1000);
    this.m.roundTrips.read.inc(store.lastRoundTrips);
    this.m.keys.read.inc(ids.length);
    this.succeeded();
    const now = this.settings.clock.now();
    for (let i = 0; i < ids.length; i++) {
      const h = this.held.get(ids[i]);
      if (h === undefined) continue;
      h.pending = false;
      const v = values[i];
      const rec = v === null || v === undefined ? undefined : decodeKeep(v, now);
      if (rec !== undefined) {
        this.learned.set(ids[i], rec);
        this.ready.push(ids[i]);
      } else if (h.final) {
        h.absent = true;
        this.ready.push(ids[i]);
      }
    }
  }

  /** Held traces whose read failed or cannot be made: decided alone at the next tick (counted then, with the reason). */
  private decideAlone(ids: Iterable<string>, reason: WithoutStoreReason): void {
    for (const id of ids) {
      const h = this.held.get(id);
      if (h === undefined) continue;
      h.pending = false;
      if (h.failed === undefined) {
        h.failed = reason;
        this.ready.push(id);
      }
    }
  }

  private failed(err: unknown): StoreErrorKind {
    const kind: StoreErrorKind = err instanceof DecisionStoreError ? err.kind : 'other';
    this.m.errors[kind].inc();
    const now = this.settings.clock.now();
    const wasUp = now >= this.downUntil;
    this.downUntil = now + this.backoffMs;
    this.backoffMs = Math.min(BACKOFF_MAX_MS, this.backoffMs * 2);
    if (wasUp) {
      // Every trace held now is decided alone at the next tick; none waits for a store that went away.
      this.decideAlone(this.held.keys(), kind === 'timeout' ? 'timeout' : 'error');
      this.reads.clear();
    }
    if (now - this.lastLog >= this.logIntervalMs) {
      this.settings.logger.warn(
        { component: this.settings.id, kind, err: err instanceof Error ? err.message : String(err), suppressed: this.suppressed, retryInMs: this.downUntil - now },
        'tail_sampling: shared decision store failed; deciding alone until it answers again',
      );
      this.lastLog = now;
      this.suppressed = 0;
    } else this.suppressed++;
    return kind;
  }

  private succeeded(): void {
    if (this.backoffMs !== BACKOFF_MIN_MS) {
      this.backoffMs = BACKOFF_MIN_MS;
      this.settings.logger.info({ component: this.settings.id }, 'tail_sampling: shared decision store answers again');
    }
  }
}
