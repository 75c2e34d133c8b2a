/**
 * Micro-benchmark of the normalize processor alone: the recommended preset on
 * realistic spans (10 attributes each, about 20% needing a change), against a
 * pass-through baseline (no rules) measured in the same run.
 *
 *   npx tsc -p . && node dist/processors/normalize/bench.js [seconds]
 *
 * Prints one JSON line.
 */
import { jsonToProtobuf } from '../../collector/pdata/otlp-json.js';
import { scanExportRequest, type Span } from '../../collector/pdata/spans.js';
import { Telemetry } from '../../collector/telemetry/metrics.js';
import { silentLogger } from '../../collector/telemetry/logger.js';
import { withDefaults } from '../../config/defaults.js';
import type { TracesConsumer } from '../../collector/consumer.js';
import { NormalizeConfig } from './config.js';
import { NormalizeProcessor } from './processor.js';

const SPANS_PER_REQUEST = 100;
const REQUESTS = 50;

type V = string | number;
const kv = (o: Record<string, V>) =>
  Object.entries(o).map(([key, v]) => ({ key, value: typeof v === 'string' ? { stringValue: v } : { intValue: String(v) } }));

const UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36';

/** A current-conventions server span: nothing to change. */
function cleanServer(i: number): { name: string; kind: number; attrs: Record<string, V> } {
  return {
    name: 'GET /api/users/:id',
    kind: 2,
    attrs: {
      'http.request.method': 'GET',
      'http.route': '/api/users/:id',
      'url.path': '/api/users/me',
      'url.scheme': 'https',
      'http.response.status_code': 200,
      'server.address': 'shop.example.com',
      'server.port': 443,
      'network.protocol.version': '1.1',
      'user_agent.original': UA,
      'client.address': `client-${i % 7}.example.net`,
    },
  };
}

/** A current-conventions client / db span: nothing to change. */
function cleanClient(i: number): { name: string; kind: number; attrs: Record<string, V> } {
  return {
    name: 'SELECT shop.orders',
    kind: 3,
    attrs: {
      'db.system': 'postgresql',
      'db.namespace': 'shop',
      'db.collection.name': 'orders',
      'db.operation.name': 'SELECT',
      'db.query.text': 'SELECT id, total FROM orders WHERE customer_id = $1 LIMIT 50',
      'server.address': 'db.internal',
      'server.port': 5432,
      'network.peer.address': 'db.internal',
      'code.function': 'listOrders',
      'thread.name': `worker-${i % 4}`,
    },
  };
}

/** Spans that need a change: old conventions, an id in the path, an e-mail. */
function dirty(i: number): { name: string; kind: number; attrs: Record<string, V> } {
  switch (i % 3) {
    case 0:
      return {
        name: 'GET',
        kind: 2,
        attrs: {
          'http.method': 'GET',
          'http.target': `/api/orders/${100000 + i}?page=2`,
          'http.status_code': 200,
          'http.flavor': '1.1',
          'http.user_agent': UA,
          'net.host.name': 'shop.example.com',
          'net.host.port': 8080,
          'net.peer.ip': '10.9.8.7',
          'http.route': '/api/orders/:id',
          'http.scheme': 'http',
        },
      };
    case 1:
      return {
        name: `GET /api/users/${i}`,
        kind: 2,
        attrs: { ...cleanServer(i).attrs, 'url.path': `/api/users/${i}` },
      };
    default:
      return {
        name: 'SELECT shop.users',
        kind: 3,
        attrs: { ...cleanClient(i).attrs, 'db.query.text': `SELECT id FROM users WHERE email = 'user${i}@example.com'` },
      };
  }
}

function buildRequest(r: number): Uint8Array {
  const spans = [];
  for (let i = 0; i < SPANS_PER_REQUEST; i++) {
    const n = r * SPANS_PER_REQUEST + i;
    const s = i % 5 === 0 ? dirty(n) : i % 2 === 0 ? cleanServer(n) : cleanClient(n);
    spans.push({
      traceId: (0xa0000000 + r).toString(16).padStart(32, '0'),
      spanId: (0xb0000000 + i + 1).toString(16).padStart(16, '0'),
      parentSpanId: '',
      name: s.name,
      kind: s.kind,
      startTimeUnixNano: '1700000000000000000',
      endTimeUnixNano: '1700000000012000000',
      attributes: kv(s.attrs),
      status: { code: 0 },
    });
  }
  const req = {
    resourceSpans: [
      {
        resource: { attributes: kv({ 'service.name': 'shop-api', 'service.version': '1.4.2', 'deployment.environment': 'prod' }) },
        scopeSpans: [{ scope: { name: '@opentelemetry/instrumentation-http', version: '0.41.2' }, spans }],
      },
    ],
  };
  return jsonToProtobuf(JSON.stringify(req));
}

const sink: TracesConsumer = { consume: async () => {} };

function make(preset: 'none' | 'recommended'): NormalizeProcessor {
  return new NormalizeProcessor(
    { id: 'normalize', logger: silentLogger(), telemetry: new Telemetry(), clock: { now: () => Date.now() } },
    withDefaults(NormalizeConfig, { preset }),
    sink,
    { env: {} },
  );
}

async function measure(proc: NormalizeProcessor, requests: Uint8Array[], seconds: number): Promise<{ ns: number; changed: number }> {
  let spans = 0;
  let ns = 0n;
  let changed = 0;
  const until = Date.now() + seconds * 1000;
  while (Date.now() < until) {
    for (const req of requests) {
      const batch: Span[] = scanExportRequest(req).spans; // not timed
      const bufs = batch.map((s) => s.buf);
      const t0 = process.hrtime.bigint();
      await proc.consume(batch);
      ns += process.hrtime.bigint() - t0;
      spans += batch.length;
      for (let i = 0; i < batch.length; i++) if (batch[i].buf !== bufs[i]) changed++;
    }
  }
  return { ns: Number(ns) / spans, changed: changed / spans };
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 3);
  const requests = Array.from({ length: REQUESTS }, (_, r) => buildRequest(r));
  const base = make('none');
  const preset = make('recommended');
  // Warm up both (JIT, key tables).
  await measure(base, requests, 0.5);
  await measure(preset, requests, 0.5);
  const b = await measure(base, requests, seconds / 2);
  const p = await measure(preset, requests, seconds);
  console.log(
    JSON.stringify({
      bench: 'normalize',
      preset: 'recommended',
      attributes_per_span: 10,
      changed_fraction: Number(p.changed.toFixed(3)),
      ns_per_span: Math.round(p.ns),
      spans_per_sec: Math.round(1e9 / p.ns),
      baseline_ns_per_span: Math.round(b.ns),
      node: process.version,
    }),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
