/**
 * Micro-benchmarks of the span model: scan (receive path), re-frame (export
 * path), and the memory a buffered span costs relative to its encoded size.
 *
 *   node --expose-gc dist/collector/pdata/bench.js [--spans 1000000]
 *
 * Prints one JSON line per measurement.
 */
import { scanExportRequest, type Span } from './spans.js';
import { encodeExportRequest } from './encode.js';
import { jsonToProtobuf } from './otlp-json.js';
import { isUtf8 } from 'node:buffer';
import { isValidUtf8 } from './validate.js';

function hex(n: number, len: number): string {
  return n.toString(16).padStart(len, '0');
}

/** A realistic request: spans of an HTTP service with ~10 attributes, ~450 encoded bytes each. */
export function realisticRequest(spans: number, seed = 1): Uint8Array {
  const out = [];
  const base = 1_700_000_000_000_000_000n;
  for (let i = 0; i < spans; i++) {
    const t = seed * 1_000_003 + Math.floor(i / 8);
    const start = base + BigInt(i) * 1_000_000n;
    out.push({
      traceId: 'a' + hex(t, 31),
      spanId: 'b' + hex(seed * 100_000 + i, 15),
      parentSpanId: i % 8 === 0 ? '' : 'b' + hex(seed * 100_000 + i - 1, 15),
      name: i % 8 === 0 ? 'GET /api/v1/orders/{id}' : 'SELECT orders',
      kind: i % 8 === 0 ? 2 : 3,
      startTimeUnixNano: start.toString(),
      endTimeUnixNano: (start + 12_345_678n).toString(),
      attributes: [
        { key: 'http.request.method', value: { stringValue: 'GET' } },
        { key: 'http.route', value: { stringValue: '/api/v1/orders/{id}' } },
        { key: 'url.full', value: { stringValue: `https://shop.example.com/api/v1/orders/${100000 + i}?expand=items` } },
        { key: 'http.response.status_code', value: { intValue: '200' } },
        { key: 'server.address', value: { stringValue: 'orders.shop.svc.cluster.local' } },
        { key: 'server.port', value: { intValue: '8080' } },
        { key: 'network.protocol.version', value: { stringValue: '1.1' } },
        { key: 'user_agent.original', value: { stringValue: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36' } },
        { key: 'db.system', value: { stringValue: 'postgresql' } },
        { key: 'thread.id', value: { intValue: String(i % 64) } },
      ],
      status: { code: i % 50 === 0 ? 2 : 0 },
    });
  }
  const json = {
    resourceSpans: [
      {
        resource: {
          attributes: [
            { key: 'service.name', value: { stringValue: 'orders' } },
            { key: 'k8s.pod.name', value: { stringValue: 'orders-7d9f8b6c5-x2x9z' } },
            { key: 'k8s.namespace.name', value: { stringValue: 'shop' } },
          ],
        },
        scopeSpans: [{ scope: { name: '@opentelemetry/instrumentation-http', version: '0.52.0' }, spans: out }],
      },
    ],
  };
  return jsonToProtobuf(JSON.stringify(json));
}

function measure(name: string, iterations: number, spansPer: number, fn: () => void): Record<string, unknown> {
  for (let i = 0; i < Math.min(50, iterations); i++) fn(); // warm up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn();
  const ns = Number(process.hrtime.bigint() - t0);
  const spans = iterations * spansPer;
  return { bench: name, spans, ns_per_span: Math.round((ns / spans) * 10) / 10, spans_per_s: Math.round(spans / (ns / 1e9)) };
}

/**
 * UTF-8 checks over the strings a span carries (keys and values of 3 to 58
 * bytes, one non-ASCII in 8): validate.ts's checker against node:buffer's
 * native isUtf8 (which needs a view per string) and a plain byte loop.
 */
function utf8Bench(): void {
  const samples = ['http.request.method', 'GET', '/api/v1/orders/{id}', 'https://shop.example.com/api/v1/orders/100042?expand=items', 'server.address', 'orders.shop.svc.cluster.local', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36', 'déjà vu — 日本語'];
  const buf = Buffer.alloc(64 * 1024);
  const ranges: number[] = [];
  for (let p = 1, k = 0; p < buf.length - 100; k++) {
    const n = buf.write(samples[k % samples.length], p);
    ranges.push(p, p + n);
    p += n + 3;
  }
  const strings = ranges.length / 2;
  const run = (name: string, check: (s: number, e: number) => boolean) => {
    const m = measure(name, 200, strings, () => {
      for (let i = 0; i < ranges.length; i += 2) if (!check(ranges[i], ranges[i + 1])) throw new Error('invalid');
    });
    console.log(JSON.stringify({ bench: name, strings: m.spans, ns_per_string: m.ns_per_span }));
  };
  run('utf8.validate_ts', (s, e) => isValidUtf8(buf, s, e));
  run('utf8.buffer_isUtf8', (s, e) => isUtf8(new Uint8Array(buf.buffer, buf.byteOffset + s, e - s)));
  run('utf8.byte_loop_ascii_only', (s, e) => {
    let acc = 0;
    for (let i = s; i < e; i++) acc |= buf[i];
    return acc < 0x80 || isUtf8(buf.subarray(s, e));
  });
}

function main(): void {
  const argIdx = process.argv.indexOf('--spans');
  const holdSpans = argIdx > 0 ? Number(process.argv[argIdx + 1]) : 1_000_000;
  const req = realisticRequest(512);
  const spans = scanExportRequest(req).spans;
  const bytesPerSpan = req.length / 512;
  console.log(JSON.stringify({ bench: 'request', spans: 512, bytes: req.length, bytes_per_span: Math.round(bytesPerSpan) }));
  console.log(JSON.stringify(measure('pdata.scan', 2000, 512, () => scanExportRequest(req))));
  console.log(JSON.stringify(measure('pdata.encode', 2000, 512, () => encodeExportRequest(spans))));
  utf8Bench();

  // Memory: hold `holdSpans` spans from distinct request buffers, as a trace buffer would.
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) {
    console.log(JSON.stringify({ bench: 'pdata.heap_per_span', skipped: 'run node with --expose-gc' }));
    return;
  }
  gc();
  const before = process.memoryUsage();
  const held: Span[][] = [];
  let encoded = 0;
  const requests = Math.ceil(holdSpans / 512);
  for (let i = 0; i < requests; i++) {
    const buf = Buffer.from(req); // a fresh buffer per request, as the network delivers them
    const s = scanExportRequest(buf).spans;
    held.push(s);
    for (const x of s) encoded += x.len;
  }
  gc();
  const after = process.memoryUsage();
  const heap = after.heapUsed - before.heapUsed;
  const external = after.arrayBuffers - before.arrayBuffers;
  const n = requests * 512;
  console.log(
    JSON.stringify({
      bench: 'pdata.heap_per_span',
      spans: n,
      encoded_bytes_per_span: Math.round(encoded / n),
      index_heap_bytes_per_span: Math.round(heap / n),
      buffer_bytes_per_span: Math.round(external / n),
      ratio_to_encoded: Math.round(((heap + external) / encoded) * 1000) / 1000,
      rss_mib: Math.round(after.rss / 1048576),
    }),
  );
  if (held.length < 0) console.log(held); // keep `held` alive until measured
}

if (import.meta.url === `file://${process.argv[1]}`) main();
