// Child process for storage/crash.test.ts: writes queue items and spills under
// steady load until it is killed with SIGKILL. Every line on stdout is written
// synchronously, so a line the parent reads happened before the kill:
//   E <from> <to>      enqueue called for seqs from..to
//   Q <seq> <id>       enqueue resolved (durable per the sync mode)
//   X <seq> <code>     enqueue rejected
//   S <traceId> <seq>  spill() returned (durable per the sync mode)
//   T <traceId>        take() returned (the trace was handed on)
// Usage: node crash-child.mjs <dir> <normal|full>
import fs from 'node:fs';
import pino from 'pino';
import { DurableQueue } from '../../dist/storage/queue.js';
import { TraceSpillStore } from '../../dist/storage/spill.js';
import { Telemetry } from '../../dist/collector/telemetry/metrics.js';
import { jsonToProtobuf } from '../../dist/collector/pdata/otlp-json.js';
import { scanExportRequest } from '../../dist/collector/pdata/spans.js';

const [dir, sync] = process.argv.slice(2);
const logger = pino({ level: 'silent' });
const telemetry = new Telemetry();
const q = DurableQueue.open({ directory: dir, sync, maxBytes: 1 << 30, whenFull: 'refuse', logger, telemetry, component: 'crash' });
const s = TraceSpillStore.open({ directory: dir, sync, maxBytes: 1 << 30, logger, telemetry, component: 'crash', deleteFlushMs: 50 });

// Blocking write of one line (stdout is a non-blocking pipe: retry on EAGAIN).
const pause = new Int32Array(new SharedArrayBuffer(4));
function out(line) {
  let b = Buffer.from(line + '\n');
  while (b.length > 0) {
    try {
      b = b.subarray(fs.writeSync(1, b));
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}

export function queueBody(seq) {
  const b = Buffer.alloc(2048, seq & 0xff);
  b.writeUInt32BE(seq, 0);
  return b;
}

function traceSpans(seq) {
  const traceId = (0xa0000000 + seq).toString(16).padStart(32, '0');
  const spans = [];
  for (let i = 0; i < 10; i++) {
    spans.push({
      traceId,
      spanId: (0xb0000000 + seq * 16 + i).toString(16).padStart(16, '0'),
      name: `op-${i}`,
      kind: 2,
      startTimeUnixNano: String(1_700_000_000_000_000_000n + BigInt(seq * 1000 + i)),
      endTimeUnixNano: String(1_700_000_000_000_000_000n + BigInt(seq * 1000 + i + 500)),
      attributes: [
        { key: 'seq', value: { intValue: String(seq) } },
        { key: 'pad', value: { stringValue: 'p'.repeat(300) } },
      ],
    });
  }
  const req = { resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'crash' } }] }, scopeSpans: [{ scope: { name: 's' }, spans }] }] };
  return { traceId, spans: scanExportRequest(jsonToProtobuf(JSON.stringify(req))).spans };
}

// Lines for resolved enqueues are written together, once per commit.
let lines = [];
function resolved(line) {
  if (lines.length === 0) queueMicrotask(() => { const l = lines; lines = []; out(l.join('\n')); });
  lines.push(line);
}

let qseq = 0;
let tseq = 0;
const spilled = [];
function tick() {
  out(`E ${qseq} ${qseq + 19}`);
  for (let i = 0; i < 20; i++) {
    const n = qseq++;
    q.enqueue(queueBody(n), 1).then(
      (id) => resolved(`Q ${n} ${id}`),
      (e) => resolved(`X ${n} ${e.code}`),
    );
  }
  // A consumer acks the oldest items, as an exporter would after a send.
  for (const item of q.lease(10)) q.ack(item.id);
  const batch = [];
  for (let i = 0; i < 5; i++) {
    const n = tseq++;
    const t = traceSpans(n);
    batch.push({ traceId: t.traceId, firstSeenMs: Date.now(), dueMs: Date.now() + 30_000, spans: t.spans, seq: n });
  }
  s.spill(batch);
  for (const t of batch) {
    out(`S ${t.traceId} ${t.seq}`);
    spilled.push(t.traceId);
  }
  // Decisions: the trace spilled 100 traces ago is read back.
  while (spilled.length > 100) {
    const id = spilled.shift();
    s.take(id);
    out(`T ${id}`);
  }
  setImmediate(tick);
}
out('READY');
tick();
