import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Telemetry } from '../collector/telemetry/metrics.js';
import { FakeClock } from '../collector/consumertest.js';
import { encodeExportRequest } from '../collector/pdata/encode.js';
import { spanAttribute } from '../collector/pdata/attributes.js';
import type { Span } from '../collector/pdata/spans.js';
import { makeSpans, traceIdHex, spanIdHex } from '../test/otlp.js';
import { logsRequest } from '../test/signals.js';
import { scanLogsRequest, type LogRecord } from '../collector/pdata/logs.js';
import { TraceSpillStore, type TraceSpillStoreOptions } from './spill.js';
import { DiskFullError, InjectedFault } from './db.js';
import { tempDir, removeDir, silentLogger, mountTmpfs, unmount, canMountTmpfs } from './testdata/helpers.js';

let dir: string;
let telemetry: Telemetry;
let clock: FakeClock;
const open: TraceSpillStore[] = [];

function openStore(over: Partial<TraceSpillStoreOptions> = {}): TraceSpillStore {
  const s = TraceSpillStore.open({
    directory: dir,
    sync: 'normal',
    maxBytes: 64 * 1024 * 1024,
    logger: silentLogger,
    telemetry,
    component: 'tail_sampling',
    clock,
    deleteFlushMs: 0,
    ...over,
  });
  open.push(s);
  return s;
}

/** One trace of `n` spans (a root and children) with attributes, as a receiver would scan it. */
function trace(n: number, resource: Record<string, string> = { 'service.name': 'checkout', 'host.name': 'pod-1' }, traceId = traceIdHex()): Span[] {
  const root = spanIdHex();
  return makeSpans(
    Array.from({ length: n }, (_, i) => ({
      traceId,
      spanId: i === 0 ? root : spanIdHex(),
      parentSpanId: i === 0 ? undefined : root,
      name: `op-${i}`,
      kind: (i % 5) + 1,
      startMs: 1_700_000_000_000 + i,
      durationMs: 3.5 + i,
      status: i === n - 1 ? 2 : 0,
      attributes: { 'http.route': `/r/${i}`, 'seq': i, 'ok': i % 2 === 0, ratio: i + 0.25 },
      traceState: i === 1 ? 'vendor=1' : undefined,
    })),
    resource,
  );
}

function indexOf(s: Span) {
  return [s.traceId, s.spanId, s.hasParent, s.startNs, s.endNs, s.statusCode, s.kind, s.flags, s.len];
}

function expectSameSpans(got: Span[], want: Span[]) {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    expect(Buffer.from(got[i].bytes()).equals(Buffer.from(want[i].bytes()))).toBe(true);
    expect(indexOf(got[i])).toEqual(indexOf(want[i]));
    expect(Buffer.from(got[i].scope.header).equals(Buffer.from(want[i].scope.header))).toBe(true);
    expect(Buffer.from(got[i].resource.header).equals(Buffer.from(want[i].resource.header))).toBe(true);
  }
}

beforeEach(() => {
  dir = tempDir();
  telemetry = new Telemetry();
  clock = new FakeClock();
});

afterEach(() => {
  for (const s of open.splice(0)) s.close();
  removeDir(dir);
});

describe('TraceSpillStore', () => {
  it('round-trips spans byte for byte, including through encodeExportRequest', () => {
    const store = openStore();
    const a = trace(7);
    const b = trace(3, { 'service.name': 'cart', 'k8s.pod.name': 'cart-0' });
    const now = clock.now();
    store.spill([
      { traceId: a[0].traceId, firstSeenMs: now, dueMs: now + 30_000, spans: a },
      { traceId: b[0].traceId, firstSeenMs: now + 1, dueMs: now + 30_001, spans: b },
    ]);
    const gotA = store.take(a[0].traceId);
    const gotB = store.take(b[0].traceId);
    expectSameSpans(gotA, a);
    expectSameSpans(gotB, b);
    expect(Buffer.from(encodeExportRequest(gotA)).equals(Buffer.from(encodeExportRequest(a)))).toBe(true);
    expect(Buffer.from(encodeExportRequest(gotB)).equals(Buffer.from(encodeExportRequest(b)))).toBe(true);
    // Lazily decoded fields work on the rebuilt objects.
    expect(gotB[0].resource.serviceName()).toBe('cart');
    expect(spanAttribute(gotA[2], 'http.route')).toBe('/r/2');
    // Spans of one trace share rebuilt scope objects, as the originals did.
    expect(new Set(gotA.map((s) => s.scope)).size).toBe(1);
    // Gone after take.
    expect(store.take(a[0].traceId)).toEqual([]);
    expect(store.traceCount).toBe(0);
  });

  it('keeps spill order when a trace is spilled in several parts, and mixes scopes', () => {
    const store = openStore();
    const tid = traceIdHex();
    const p1 = trace(4, undefined, tid);
    const p2 = trace(2, { 'service.name': 'other' }, tid);
    const p3 = trace(3, undefined, tid);
    const now = clock.now();
    store.spill([{ traceId: tid, firstSeenMs: now, dueMs: now + 10, spans: p1 }]);
    store.spill([{ traceId: tid, firstSeenMs: now + 5, dueMs: now + 10, spans: [...p2, ...p3] }]);
    const idx = store.pendingIndex();
    expect(idx).toHaveLength(1);
    expect(idx[0]).toMatchObject({ traceId: tid, firstSeenMs: now, dueMs: now + 10, spanCount: 9 });
    expect(store.traceCount).toBe(1);
    expectSameSpans(store.take(tid), [...p1, ...p2, ...p3]);
  });

  it('finds a trace from the seq of its last spill (what the caller keeps), without a scan', () => {
    const store = openStore();
    const tid = traceIdHex();
    const other = trace(2);
    const p1 = trace(3, undefined, tid);
    const p2 = trace(2, undefined, tid);
    const now = clock.now();
    const [s1, so] = store.spill([
      { traceId: tid, firstSeenMs: now, dueMs: now + 10, spans: p1, prevSeq: 0 },
      { traceId: other[0].traceId, firstSeenMs: now, dueMs: now + 10, spans: other, prevSeq: 0 },
    ]);
    const [s2] = store.spill([{ traceId: tid, firstSeenMs: now + 1, dueMs: now + 10, spans: p2, prevSeq: s1 }]);
    expect(s2).toBeGreaterThan(s1);
    expect(store.traceCount).toBe(2);
    // Rows are appended in seq order: no index on the trace id.
    const indexes = store.sdb.db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'spills' AND sql IS NOT NULL").pluck().all();
    expect(indexes).toEqual(['spills_due']);
    expect(store.pendingIndex().find((p) => p.traceId === tid)).toMatchObject({ spanCount: 5, lastSeq: s2 });
    // A wrong seq (another trace's row) finds nothing rather than the wrong spans.
    expect(store.take(tid, so)).toEqual([]);
    expectSameSpans(store.take(tid, s2), [...p1, ...p2]);
    expect(store.delete(other[0].traceId, so)).toBe(true);
    expect(store.traceCount).toBe(0);
  });

  it('deduplicates resource and scope headers by content', () => {
    const store = openStore();
    const now = clock.now();
    // Ten traces from ten separate requests: the same header bytes in distinct objects.
    const traces = Array.from({ length: 10 }, () => trace(2));
    store.spill(traces.map((t) => ({ traceId: t[0].traceId, firstSeenMs: now, dueMs: now, spans: t })));
    const headers = store.sdb.db.prepare('SELECT count(*) FROM headers').pluck().get();
    expect(headers).toBe(2); // one resource header, one scope header
    for (const t of traces) expectSameSpans(store.take(t[0].traceId), t);
  });

  it('keeps pending traces across close and reopen, with arrival and due times', () => {
    let store = openStore();
    const t0 = clock.now();
    const traces = [trace(5), trace(1), trace(8)];
    store.spill(traces.map((t, i) => ({ traceId: t[0].traceId, firstSeenMs: t0 + i, dueMs: t0 + 30_000 - i * 1000, spans: t })));
    store.take(traces[1][0].traceId);
    store.close();

    store = openStore();
    expect(store.traceCount).toBe(2);
    const idx = store.pendingIndex().sort((x, y) => x.firstSeenMs - y.firstSeenMs);
    expect(idx.map((p) => [p.traceId, p.firstSeenMs, p.dueMs, p.spanCount])).toEqual([
      [traces[0][0].traceId, t0, t0 + 30_000, 5],
      [traces[2][0].traceId, t0 + 2, t0 + 28_000, 8],
    ]);
    expect(idx.reduce((n, p) => n + p.bytes, 0)).toBeGreaterThan(13 * 100);
    // Earliest due first, bounded by limit and time.
    expect(store.dueBefore(t0 + 29_000, 10)).toEqual([traces[2][0].traceId]);
    expect(store.dueBefore(t0 + 40_000, 1)).toEqual([traces[2][0].traceId]);
    expect(store.dueBefore(t0 + 40_000, 10)).toEqual([traces[2][0].traceId, traces[0][0].traceId]);
    expectSameSpans(store.take(traces[0][0].traceId), traces[0]);
    expectSameSpans(store.take(traces[2][0].traceId), traces[2]);
  });

  it('a take not yet flushed when the process dies comes back (decided again, never lost)', () => {
    let store = openStore();
    const t = trace(3);
    store.spill([{ traceId: t[0].traceId, firstSeenMs: 1, dueMs: 2, spans: t }]);
    expect(store.take(t[0].traceId)).toHaveLength(3);
    expect(store.dueBefore(10, 10)).toEqual([]); // hidden while the delete is pending
    store.sdb.close(); // "crash": the batched delete was never committed
    open.pop();
    store = openStore();
    expectSameSpans(store.take(t[0].traceId), t);
  });

  it('delete() releases a trace and its bytes; the file reuses the space', () => {
    const store = openStore();
    const t = trace(4);
    store.spill([{ traceId: t[0].traceId, firstSeenMs: 1, dueMs: 2, spans: t }]);
    const used = store.bytesUsed();
    expect(used).toBeGreaterThan(4 * 100);
    expect(store.delete(t[0].traceId)).toBe(true);
    expect(store.delete(t[0].traceId)).toBe(false);
    store.flush();
    expect(store.traceCount).toBe(0);
    expect(store.bytesUsed()).toBe(0); // headers are released too once nothing is held
    expect(store.sdb.db.prepare('SELECT count(*) FROM spills').pluck().get()).toBe(0);
  });

  it('refuses a spill beyond max_bytes with a typed error and writes nothing', async () => {
    const a = trace(6);
    const probe = openStore();
    probe.spill([{ traceId: a[0].traceId, firstSeenMs: 1, dueMs: 2, spans: a }]);
    const oneTrace = probe.bytesUsed(); // one trace of 6 spans plus its two headers
    probe.close();
    removeDir(dir);
    dir = tempDir();
    // Room for about three such traces.
    const store = openStore({ maxBytes: oneTrace * 3 });
    store.spill([{ traceId: a[0].traceId, firstSeenMs: 1, dueMs: 2, spans: a }]);
    const before = store.bytesUsed();
    expect(before).toBe(oneTrace);
    const big = Array.from({ length: 4 }, () => trace(6));
    let err: unknown;
    try {
      store.spill(big.map((t) => ({ traceId: t[0].traceId, firstSeenMs: 1, dueMs: 2, spans: t })));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DiskFullError);
    expect((err as DiskFullError).reason).toBe('max_bytes');
    expect((err as DiskFullError).retryable).toBe(true);
    expect(store.bytesUsed()).toBe(before);
    expect(store.traceCount).toBe(1);
    expect(store.pendingIndex()).toHaveLength(1);
    expect(await telemetry.total('sidecar_spill_refused_spans_total', { reason: 'max_bytes' })).toBe(24);
    // Room comes back once traces are taken.
    store.take(a[0].traceId);
    store.spill(big.slice(0, 2).map((t) => ({ traceId: t[0].traceId, firstSeenMs: 1, dueMs: 2, spans: t })));
    expect(store.traceCount).toBe(2);
  });

  it('a write failing for lack of space is a DiskFullError; spills pause, then recover', async () => {
    const store = openStore({ diskFullRetryMs: 1000 });
    const a = trace(2);
    let calls = 0;
    store.sdb.faultHook = () => {
      calls++;
      return new InjectedFault('SQLITE_FULL');
    };
    expect(() => store.spill([{ traceId: a[0].traceId, firstSeenMs: 1, dueMs: 2, spans: a }])).toThrow(DiskFullError);
    expect(calls).toBe(1);
    // Within the pause, no SQLite call is made.
    expect(() => store.spill([{ traceId: a[0].traceId, firstSeenMs: 1, dueMs: 2, spans: a }])).toThrow(/disk full/);
    expect(calls).toBe(1);
    expect(store.traceCount).toBe(0);
    expect(await telemetry.total('sidecar_storage_disk_full_total')).toBe(1);
    expect(await telemetry.total('sidecar_spill_refused_spans_total', { reason: 'enospc' })).toBe(4);
    store.sdb.faultHook = undefined;
    clock.advance(1000);
    store.spill([{ traceId: a[0].traceId, firstSeenMs: 1, dueMs: 2, spans: a }]);
    expectSameSpans(store.take(a[0].traceId), a);
  });

  const tmpfsOk = canMountTmpfs();
  describe.skipIf(!tmpfsOk)('on a real full disk (6 MiB tmpfs)', () => {
    it('ENOSPC becomes DiskFullError, nothing is half-written, and spilling recovers when space returns', () => {
      const fsDir = mountTmpfs('6m')!;
      const opened: TraceSpillStore[] = [];
      const openOn = () => {
        const st = TraceSpillStore.open({ directory: fsDir, sync: 'normal', maxBytes: 1 << 30, logger: silentLogger, telemetry, component: 'tail_sampling', clock, deleteFlushMs: 0 });
        opened.push(st);
        return st;
      };
      try {
        const store = openOn();
        // Something else on the volume takes all but ~1 MiB.
        const filler = path.join(fsDir, 'filler');
        const free = fs.statfsSync(fsDir).bavail * fs.statfsSync(fsDir).bsize;
        fs.writeFileSync(filler, Buffer.alloc(free - 1024 * 1024));
        const kept: Span[][] = [];
        let err: unknown;
        for (let i = 0; i < 2000 && err === undefined; i++) {
          const t = trace(10);
          try {
            store.spill([{ traceId: t[0].traceId, firstSeenMs: i, dueMs: i, spans: t }]);
            kept.push(t);
          } catch (e) {
            err = e;
          }
        }
        expect(err).toBeInstanceOf(DiskFullError);
        expect((err as DiskFullError).reason).toBe('enospc');
        expect(kept.length).toBeGreaterThan(10);
        expect(store.traceCount).toBe(kept.length);
        // Reads still work on a full disk.
        expectSameSpans(store.take(kept[0][0].traceId), kept.shift()!);
        // Space returns.
        fs.rmSync(filler);
        clock.advance(5000);
        const t = trace(10);
        store.spill([{ traceId: t[0].traceId, firstSeenMs: 1, dueMs: 1, spans: t }]);
        kept.push(t);
        store.close();
        const again = openOn();
        expect(again.traceCount).toBe(kept.length);
        for (const k of kept) expectSameSpans(again.take(k[0].traceId), k);
      } finally {
        for (const st of opened) st.close();
        unmount(fsDir);
      }
    });
  });
  if (!tmpfsOk) {
    it.skip('real full disk: cannot mount a tmpfs here (not root); covered by the injected SQLITE_FULL test', () => {});
  }

  it('writes its file under the directory and nothing else but the WAL', () => {
    const store = openStore();
    const t = trace(1);
    store.spill([{ traceId: t[0].traceId, firstSeenMs: 1, dueMs: 2, spans: t }]);
    const files = fs.readdirSync(dir).sort();
    expect(files.filter((f) => !f.startsWith('spill.sqlite'))).toEqual([]);
    expect(path.basename(store.sdb.path)).toBe('spill.sqlite');
  });

  it('spills log records with their trace, in the same budget, across a reopen; bodies without them stay version 1', () => {
    let store = openStore();
    const a = trace(3);
    const b = trace(2);
    const tid = a[0].traceId;
    const recs = (service: string, n: number): LogRecord[] =>
      scanLogsRequest(logsRequest(Array.from({ length: n }, (_, i) => ({ traceId: tid, body: { stringValue: `${service}-${i}` } })), service)).items;
    const logs = [...recs('checkout', 2), ...recs('cart', 1)];
    const later = recs('checkout', 1);
    store.spill([
      { traceId: tid, firstSeenMs: 5, dueMs: 10, spans: a, logs },
      { traceId: b[0].traceId, firstSeenMs: 5, dueMs: 10, spans: b },
    ]);
    const before = store.bytesUsed();
    // Records only, added to the trace's rows (as the processor writes those that arrive after its spans went to disk).
    store.spill([{ traceId: tid, firstSeenMs: Number.MAX_SAFE_INTEGER, dueMs: Number.MAX_SAFE_INTEGER, spans: [], logs: later, prevSeq: 1 }]);
    expect(store.bytesUsed()).toBeGreaterThan(before + later[0].len);
    const versions = store.sdb.db.prepare('SELECT s.trace_id, substr(b.body, 1, 1) FROM spills s JOIN bodies b ON b.seq = s.seq ORDER BY s.seq').raw().all() as Array<[Buffer, Buffer]>;
    expect(versions.map((v) => [v[0].toString('hex'), v[1][0]])).toEqual([
      [tid, 2],
      [b[0].traceId, 1],
      [tid, 2],
    ]);
    store.close();
    store = openStore();
    expect(store.pendingIndex().find((p) => p.traceId === tid)).toMatchObject({ firstSeenMs: 5, dueMs: 10, spanCount: 3 });
    expect(store.dueBefore(10, 10).sort()).toEqual([tid, b[0].traceId].sort());
    expectSameSpans(store.take(tid), a);
    const got = store.lastLogs;
    const want = [...logs, ...later];
    expect(got.map((r) => Buffer.from(r.bytes()).toString('hex'))).toEqual(want.map((r) => Buffer.from(r.bytes()).toString('hex')));
    expect(got.map((r) => r.traceId)).toEqual(want.map(() => tid));
    expect(got.map((r) => Buffer.from(r.scope.resource.header).toString('hex'))).toEqual(want.map((r) => Buffer.from(r.scope.resource.header).toString('hex')));
    expect(store.lastLogsLost).toBe(0);
    expect(store.lastFirstSeenMs).toBe(5);
    expectSameSpans(store.take(b[0].traceId), b);
    expect(store.lastLogs).toEqual([]);
    store.flush();
    expect(store.bytesUsed()).toBe(0);
  });

  it('log records of a damaged body are counted as lost', () => {
    const store = openStore();
    const a = trace(2);
    const tid = a[0].traceId;
    const logs = scanLogsRequest(logsRequest([0, 1, 2].map((i) => ({ traceId: tid, body: { stringValue: `r-${i}` } })))).items;
    store.spill([{ traceId: tid, firstSeenMs: 1, dueMs: 2, spans: a, logs }]);
    // Cut the body inside its last record.
    store.sdb.db.prepare('UPDATE bodies SET body = substr(body, 1, length(body) - 3)').run();
    expectSameSpans(store.take(tid), a);
    expect(store.lastLogs).toHaveLength(2);
    expect(store.lastLogsLost).toBe(1);
  });
});
