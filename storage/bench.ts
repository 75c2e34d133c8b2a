/**
 * Storage benchmark: spill write / read-back throughput for sync normal and full,
 * durable queue enqueue / lease+ack throughput, and the longest single blocking
 * storage call. Prints one JSON line.
 *
 *   npx tsc -p . && node dist/storage/bench.js [--spans 200000] [--trace-spans 10] [--batch-bytes 524288] [--queue-mb 64]
 *
 * Spans are ~450 bytes each (an OTLP span with a handful of attributes), grouped
 * in traces; each spill() call writes about --batch-bytes in one transaction.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { Telemetry } from '../collector/telemetry/metrics.js';
import { jsonToProtobuf } from '../collector/pdata/otlp-json.js';
import { scanExportRequest, type Span } from '../collector/pdata/spans.js';
import { TraceSpillStore, type SpillTrace } from './spill.js';
import { DurableQueue } from './queue.js';
import type { SyncMode } from './db.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

const TOTAL_SPANS = arg('spans', 200_000);
const TRACE_SPANS = arg('trace-spans', 10);
const BATCH_BYTES = arg('batch-bytes', 512 * 1024);
const QUEUE_MB = arg('queue-mb', 64);
const logger = pino({ level: 'silent' });

/** `traces` traces of TRACE_SPANS spans of about 450 bytes, from one request. */
function makeTraces(traces: number): Span[][] {
  const spans = [];
  for (let t = 0; t < traces; t++) {
    const traceId = (0x10000000 + t).toString(16).padStart(32, 'a');
    for (let i = 0; i < TRACE_SPANS; i++) {
      spans.push({
        traceId,
        spanId: (0x20000000 + t * 64 + i).toString(16).padStart(16, 'b'),
        parentSpanId: i === 0 ? '' : (0x20000000 + t * 64).toString(16).padStart(16, 'b'),
        name: `GET /api/v1/items/{id} ${i}`,
        kind: 2,
        startTimeUnixNano: String(1_700_000_000_000_000_000n + BigInt(t * 1_000_000 + i)),
        endTimeUnixNano: String(1_700_000_000_000_000_000n + BigInt(t * 1_000_000 + i + 12_345_678)),
        attributes: [
          { key: 'http.request.method', value: { stringValue: 'GET' } },
          { key: 'http.route', value: { stringValue: '/api/v1/items/{id}' } },
          { key: 'url.full', value: { stringValue: `https://shop.example.com/api/v1/items/${t}-${i}?expand=details,prices,stock&locale=en-US` } },
          { key: 'http.response.status_code', value: { intValue: '200' } },
          { key: 'server.address', value: { stringValue: 'shop.example.com' } },
          { key: 'user_agent.original', value: { stringValue: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36' } },
          { key: 'app.request.id', value: { stringValue: `req-${t}-${i}-0123456789abcdef0123456789` } },
        ],
        status: { code: 0 },
      });
    }
  }
  const req = {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'checkout' } }, { key: 'k8s.pod.name', value: { stringValue: 'checkout-7d9f-abcde' } }] },
        scopeSpans: [{ scope: { name: '@opentelemetry/instrumentation-http', version: '0.52.0' }, spans }],
      },
    ],
  };
  const all = scanExportRequest(jsonToProtobuf(JSON.stringify(req))).spans;
  const out: Span[][] = [];
  for (let i = 0; i < all.length; i += TRACE_SPANS) out.push(all.slice(i, i + TRACE_SPANS));
  return out;
}

function mb(bytes: number): number {
  return Math.round((bytes / 1e6) * 10) / 10;
}

function rate(n: number, ms: number): number {
  return Math.round(n / (ms / 1000));
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

function benchSpill(sync: SyncMode, pool: Span[][]) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sidecar-bench-spill-'));
  const store = TraceSpillStore.open({ directory: dir, sync, maxBytes: 64 * 1024 * 1024 * 1024, logger, telemetry: new Telemetry(), component: 'bench', deleteFlushMs: 0 });
  try {
    const spanBytes = pool[0].reduce((n, s) => n + s.len, 0);
    const traceCount = Math.ceil(TOTAL_SPANS / TRACE_SPANS);
    const perBatch = Math.max(1, Math.floor(BATCH_BYTES / spanBytes));
    let maxCall = 0;
    const calls: number[] = [];
    // The caller's index: trace id -> seq of its last spill (the processor keeps it in SpillIndex).
    const seqOf = new Map<string, number>();
    let bytes = 0;
    let spans = 0;
    const t0 = performance.now();
    for (let t = 0; t < traceCount; t += perBatch) {
      const batch: SpillTrace[] = [];
      for (let k = t; k < Math.min(traceCount, t + perBatch); k++) {
        const s = pool[k % pool.length];
        batch.push({ traceId: k.toString(16).padStart(32, '0'), firstSeenMs: k, dueMs: k, spans: s, prevSeq: 0 });
        bytes += spanBytes;
        spans += s.length;
      }
      const c0 = performance.now();
      const seqs = store.spill(batch);
      const d = performance.now() - c0;
      for (let i = 0; i < batch.length; i++) seqOf.set(batch[i].traceId, seqs[i]);
      calls.push(d);
      maxCall = Math.max(maxCall, d);
    }
    const writeMs = performance.now() - t0;
    const fileBytes = store.sdb.fileBytes();

    // Read back in due order, as the sampler would: dueBefore, take each, flush deletes per batch.
    let read = 0;
    let readBytes = 0;
    let maxRead = 0;
    const r0 = performance.now();
    for (;;) {
      const c0 = performance.now();
      const ids = store.dueBefore(Number.MAX_SAFE_INTEGER, perBatch);
      maxRead = Math.max(maxRead, performance.now() - c0);
      if (ids.length === 0) break;
      for (const id of ids) {
        const c1 = performance.now();
        const got = store.take(id, seqOf.get(id));
        maxRead = Math.max(maxRead, performance.now() - c1);
        read += got.length;
        for (const s of got) readBytes += s.len;
      }
      const c2 = performance.now();
      store.flush();
      maxCall = Math.max(maxCall, performance.now() - c2);
    }
    const readMs = performance.now() - r0;
    if (read !== spans) throw new Error(`read back ${read} spans, wrote ${spans}`);
    return {
      sync,
      spans,
      span_bytes_avg: Math.round(spanBytes / pool[0].length),
      txn_bytes: perBatch * spanBytes,
      write_spans_per_s: rate(spans, writeMs),
      write_mb_per_s: mb(bytes / (writeMs / 1000)),
      read_spans_per_s: rate(read, readMs),
      read_mb_per_s: mb(readBytes / (readMs / 1000)),
      file_mb_at_peak: mb(fileBytes),
      spill_call_p50_ms: Math.round(pct(calls, 0.5) * 100) / 100,
      spill_call_p99_ms: Math.round(pct(calls, 0.99) * 100) / 100,
      spill_calls_over_20ms: calls.filter((c) => c > 20).length,
      spill_calls: calls.length,
      longest_write_call_ms: Math.round(maxCall * 100) / 100,
      longest_read_call_ms: Math.round(maxRead * 100) / 100,
      // Every storage call (spill, dueBefore, take, flush; main-thread checkpoints when the worker is off).
      calls_p999_ms: store.sdb.callTimes.quantile(0.999),
      calls_max_ms: Math.round(store.sdb.callTimes.maxMs * 100) / 100,
    };
  } finally {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function benchQueue(sync: SyncMode) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sidecar-bench-queue-'));
  const q = DurableQueue.open({ directory: dir, sync, maxBytes: 64 * 1024 * 1024 * 1024, whenFull: 'refuse', logger, telemetry: new Telemetry(), component: 'bench' });
  try {
    const itemBytes = 256 * 1024; // a request of ~580 spans
    const body = Buffer.alloc(itemBytes, 7);
    const items = Math.max(16, Math.floor((QUEUE_MB * 1024 * 1024) / itemBytes));
    const t0 = performance.now();
    // Producers: 8 enqueues in flight at a time.
    for (let i = 0; i < items; i += 8) {
      const ps: Promise<number>[] = [];
      for (let k = i; k < Math.min(items, i + 8); k++) ps.push(q.enqueue(body, 580));
      await Promise.all(ps);
    }
    const enqMs = performance.now() - t0;
    const t1 = performance.now();
    let got = 0;
    for (;;) {
      const batch = q.lease(8);
      if (batch.length === 0) break;
      for (const it of batch) {
        got++;
        q.ack(it.id);
      }
      await q.flush();
    }
    const drainMs = performance.now() - t1;
    if (got !== items) throw new Error(`leased ${got} of ${items}`);
    return {
      sync,
      items,
      item_bytes: itemBytes,
      enqueue_items_per_s: rate(items, enqMs),
      enqueue_mb_per_s: mb((items * itemBytes) / (enqMs / 1000)),
      lease_ack_items_per_s: rate(items, drainMs),
      lease_ack_mb_per_s: mb((items * itemBytes) / (drainMs / 1000)),
      longest_write_call_ms: Math.round(q.sdb.longestWriteMs * 100) / 100,
      longest_read_call_ms: Math.round(q.sdb.longestReadMs * 100) / 100,
    };
  } finally {
    await q.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  const pool = makeTraces(1000);
  const spill = [benchSpill('normal', pool), benchSpill('full', pool)];
  const queue = [await benchQueue('normal'), await benchQueue('full')];
  const longest = Math.max(...spill.map((s) => Math.max(s.longest_write_call_ms, s.longest_read_call_ms)), ...queue.map((s) => Math.max(s.longest_write_call_ms, s.longest_read_call_ms)));
  process.stdout.write(
    JSON.stringify({
      bench: 'storage',
      node: process.version,
      cpus: os.cpus().length,
      spill,
      queue,
      longest_single_storage_call_ms: longest,
      rss_mb_at_end: mb(process.memoryUsage().rss),
    }) + '\n',
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
