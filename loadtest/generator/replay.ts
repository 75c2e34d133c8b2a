/**
 * Replay mode: a pool of requests encoded once at start, then re-sent with
 * their ids and times rewritten in place, so the generator costs a copy and a
 * few XORs per span instead of building and encoding every trace.
 *
 * The pool is filled like the normal loop fills requests (traces in order,
 * cut into batches of `spans_per_request`), and ends at a trace boundary so
 * no trace wraps around. Each pass over the pool (a cycle) gets a key unique
 * to (worker, cycle); every trace id, span id and parent span id (and link
 * ids) has its first 4 bytes XORed with it, so all ids of a cycle are new
 * while parent links stay inside their trace. A trace's times are shifted
 * when its first request of the cycle is sent (its root ends then, as in the
 * normal loop); its later requests reuse that shift.
 *
 * Protobuf only: the offsets are byte positions in the encoded request.
 */
import { WireReader, WIRE_I64, WIRE_LEN } from '../../collector/pdata/wire.js';
import type { ProtoEncoder, BatchItem, SentTrace } from './encode.js';
import { placeTrace } from './encode.js';
import type { TraceGenerator } from './model.js';

export interface ReplayEntry {
  /** The encoded request as built (never sent as is: render() copies it). */
  body: Buffer;
  spans: number;
  /** Byte offsets of the 16 id bytes of every trace_id (spans and links). */
  traceIdOffs: Int32Array;
  /** Byte offsets of the 8 id bytes of every span_id / parent_span_id (spans and links). */
  spanIdOffs: Int32Array;
  /** Byte offsets of every fixed64 time (span start/end, event time) and the pool trace each belongs to. */
  timeOffs: Int32Array;
  timeTrace: Int32Array;
  /** Pairs (pool trace index, spans of it in this request), in order. */
  traces: Int32Array;
}

export interface ReplayTrace {
  /** The 16 trace id bytes as built. */
  id: Uint8Array;
  spans: number;
  classes: number;
  durationMs: number;
  /** The pool entry holding its first spans (where it starts each cycle). */
  firstEntry: number;
}

export interface ReplayPool {
  entries: ReplayEntry[];
  traces: ReplayTrace[];
  /** Wall-clock ms at which every pool trace's root ends, as built. */
  baseMs: number;
}

/**
 * Draws traces from `gen` and encodes them in batches of `spansPerRequest`
 * until `size` requests are full, then closes the last trace in one more
 * (partial) request. Same generator, same bytes.
 */
export function buildReplayPool(gen: TraceGenerator, enc: ProtoEncoder, spansPerRequest: number, size: number, baseMs: number): ReplayPool {
  const bodies: Array<{ body: Buffer; items: BatchItem[] }> = [];
  const traces: SentTrace[] = [];
  let pending: BatchItem[] = [];
  while (bodies.length < size) {
    const g = gen.next();
    // Every root ends at baseMs; render() shifts each trace to when it is sent.
    const t = placeTrace(g, baseMs - g.durationMs);
    traces.push(t);
    for (let i = 0; i < t.spans.length; i++) {
      pending.push({ trace: t, span: i });
      if (pending.length >= spansPerRequest) {
        bodies.push({ body: enc.encode(pending), items: pending });
        pending = [];
      }
    }
  }
  if (pending.length > 0) bodies.push({ body: enc.encode(pending), items: pending });

  const index = new Map<string, number>();
  const pool: ReplayPool = { entries: [], traces: [], baseMs };
  for (const t of traces) {
    index.set(t.traceIdHex, pool.traces.length);
    pool.traces.push({ id: t.ids.slice(0, 16), spans: t.spans.length, classes: t.classes, durationMs: t.durationMs, firstEntry: -1 });
  }
  bodies.forEach(({ body, items }, e) => {
    const pairs: number[] = [];
    let last: SentTrace | undefined;
    for (const it of items) {
      if (it.trace !== last) {
        last = it.trace;
        const ti = index.get(last.traceIdHex)!;
        if (pool.traces[ti].firstEntry < 0) pool.traces[ti].firstEntry = e;
        pairs.push(ti, 0);
      }
      pairs[pairs.length - 1]++;
    }
    pool.entries.push({ ...scanOffsets(body, index), body, spans: items.length, traces: Int32Array.from(pairs) });
  });
  return pool;
}

/** Finds the id and time fields of an encoded ExportTraceServiceRequest. */
export function scanOffsets(body: Buffer, index: Map<string, number>): Pick<ReplayEntry, 'traceIdOffs' | 'spanIdOffs' | 'timeOffs' | 'timeTrace'> {
  const traceIdOffs: number[] = [];
  const spanIdOffs: number[] = [];
  const timeOffs: number[] = [];
  const timeTrace: number[] = [];
  // Calls fn on every length-delimited field `field` of the message r reads.
  const each = (r: WireReader, field: number, fn: (start: number, end: number) => void) => {
    while (!r.done()) {
      const tag = r.uint32();
      if (tag >>> 3 === field && (tag & 7) === WIRE_LEN) {
        const end = r.lenEnd();
        fn(r.pos, end);
        r.pos = end;
      } else r.skip(tag & 7);
    }
  };
  const idField = (r: WireReader, size: number, into: number[]): number => {
    const end = r.lenEnd();
    const at = r.pos;
    if (end - at === size) into.push(at);
    else if (end !== at) throw new Error(`replay: id field of ${end - at} bytes`);
    r.pos = end;
    return at;
  };
  const span = (start: number, end: number) => {
    const r = new WireReader(body, start, end);
    const times: number[] = [];
    let ti = -1;
    while (!r.done()) {
      const tag = r.uint32();
      const f = tag >>> 3;
      const wt = tag & 7;
      if (f === 1 && wt === WIRE_LEN) {
        const at = idField(r, 16, traceIdOffs);
        ti = index.get(body.toString('hex', at, at + 16)) ?? -1;
      } else if ((f === 2 || f === 4) && wt === WIRE_LEN) idField(r, 8, spanIdOffs);
      else if ((f === 7 || f === 8) && wt === WIRE_I64) {
        times.push(r.pos);
        r.pos += 8;
      } else if (f === 11 && wt === WIRE_LEN) {
        // event: time_unix_nano is field 1 (fixed64)
        const evEnd = r.lenEnd();
        const ev = new WireReader(body, r.pos, evEnd);
        while (!ev.done()) {
          const t = ev.uint32();
          if (t >>> 3 === 1 && (t & 7) === WIRE_I64) {
            times.push(ev.pos);
            ev.pos += 8;
          } else ev.skip(t & 7);
        }
        r.pos = evEnd;
      } else if (f === 13 && wt === WIRE_LEN) {
        // link: trace_id 1, span_id 2
        const lkEnd = r.lenEnd();
        const lk = new WireReader(body, r.pos, lkEnd);
        while (!lk.done()) {
          const t = lk.uint32();
          if (t >>> 3 === 1 && (t & 7) === WIRE_LEN) idField(lk, 16, traceIdOffs);
          else if (t >>> 3 === 2 && (t & 7) === WIRE_LEN) idField(lk, 8, spanIdOffs);
          else lk.skip(t & 7);
        }
        r.pos = lkEnd;
      } else r.skip(wt);
    }
    if (ti < 0) throw new Error('replay: span with an unknown trace id');
    for (const o of times) {
      timeOffs.push(o);
      timeTrace.push(ti);
    }
  };
  each(new WireReader(body), 1, (rs0, rs1) =>
    each(new WireReader(body, rs0, rs1), 2, (ss0, ss1) => each(new WireReader(body, ss0, ss1), 2, span)),
  );
  return {
    traceIdOffs: Int32Array.from(traceIdOffs),
    spanIdOffs: Int32Array.from(spanIdOffs),
    timeOffs: Int32Array.from(timeOffs),
    timeTrace: Int32Array.from(timeTrace),
  };
}

const TWO32 = 4294967296;

/** Renders pool entries with a cycle key and per-trace time shifts. */
export class ReplayRewriter {
  readonly pool: ReplayPool;
  private k0 = 0;
  private k1 = 0;
  private k2 = 0;
  private k3 = 0;
  /** Per pool trace: the current cycle's time shift in ns, split in 32-bit halves. */
  private readonly dHi: Float64Array;
  private readonly dLo: Float64Array;

  constructor(pool: ReplayPool) {
    this.pool = pool;
    this.dHi = new Float64Array(pool.traces.length);
    this.dLo = new Float64Array(pool.traces.length);
  }

  /** Key for the cycle that starts now (unique per worker and cycle). */
  setKey(key: number): void {
    this.k0 = (key >>> 24) & 0xff;
    this.k1 = (key >>> 16) & 0xff;
    this.k2 = (key >>> 8) & 0xff;
    this.k3 = key & 0xff;
  }

  /** A trace starts this cycle with its root ending at `rootEndMs` (integer ms). */
  startTrace(ti: number, rootEndMs: number): void {
    const ns = Math.max(0, rootEndMs - this.pool.baseMs) * 1e6;
    const hi = Math.floor(ns / TWO32);
    this.dHi[ti] = hi;
    this.dLo[ti] = ns - hi * TWO32;
  }

  /** The trace id a pool trace is sent with this cycle, into `out` at `at`. */
  traceId(ti: number, out: Uint8Array, at = 0): void {
    out.set(this.pool.traces[ti].id, at);
    out[at] ^= this.k0;
    out[at + 1] ^= this.k1;
    out[at + 2] ^= this.k2;
    out[at + 3] ^= this.k3;
  }

  /** A fresh copy of the entry with this cycle's ids and times. */
  render(e: ReplayEntry): Buffer {
    const b = Buffer.allocUnsafe(e.body.length);
    e.body.copy(b);
    const { k0, k1, k2, k3 } = this;
    const ids = e.traceIdOffs;
    for (let i = 0; i < ids.length; i++) {
      const o = ids[i];
      b[o] ^= k0;
      b[o + 1] ^= k1;
      b[o + 2] ^= k2;
      b[o + 3] ^= k3;
    }
    const sids = e.spanIdOffs;
    for (let i = 0; i < sids.length; i++) {
      const o = sids[i];
      b[o] ^= k0;
      b[o + 1] ^= k1;
      b[o + 2] ^= k2;
      b[o + 3] ^= k3;
    }
    const to = e.timeOffs;
    const tt = e.timeTrace;
    const dHi = this.dHi;
    const dLo = this.dLo;
    for (let i = 0; i < to.length; i++) {
      const o = to[i];
      const ti = tt[i];
      let lo = b.readUInt32LE(o) + dLo[ti];
      let carry = 0;
      if (lo >= TWO32) {
        lo -= TWO32;
        carry = 1;
      }
      b.writeUInt32LE(lo, o);
      b.writeUInt32LE((b.readUInt32LE(o + 4) + dHi[ti] + carry) >>> 0, o + 4);
    }
    return b;
  }
}
