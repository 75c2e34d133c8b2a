/**
 * Micro-benchmark of the routing step: what the loadbalancing exporter adds
 * per batch over one QueuedExporter (hashing each trace id, splitting the
 * batch by owner, one request per backend), both with senders that accept at
 * once, so only this process's work is timed.
 *
 *   node dist/exporters/loadbalancing/bench.js [--spans 2000] [--backends 2]
 *
 * Prints one JSON line per measurement.
 */
import { randomBytes } from 'node:crypto';
import { scanExportRequest, type Span } from '../../collector/pdata/spans.js';
import { Telemetry } from '../../collector/telemetry/metrics.js';
import { silentLogger } from '../../collector/telemetry/logger.js';
import { systemClock, type CreateSettings } from '../../collector/component.js';
import { withDefaults } from '../../config/defaults.js';
import { realisticRequest } from '../../collector/pdata/bench.js';
import { QueuedExporter } from '../exporterhelper/exporter.js';
import { LoadBalancingConfigSchema } from './config.js';
import { LoadBalancingExporter } from './exporter.js';
import { HashRing } from './ring.js';
import { StaticResolver } from './resolvers/static.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const SPANS = arg('spans', 2000);
const BACKENDS = arg('backends', 2);
const ROUNDS = 400;

const settings = (): CreateSettings => ({ id: 'bench', logger: silentLogger(), telemetry: new Telemetry(), clock: systemClock });
const accept = async () => undefined;

async function time(label: string, consume: (s: Span[]) => Promise<void>, batches: Span[][]): Promise<void> {
  for (let r = 0; r < 50; r++) await consume(batches[r % batches.length]);
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < ROUNDS; r++) await consume(batches[r % batches.length]);
  const ns = Number(process.hrtime.bigint() - t0);
  console.log(JSON.stringify({ bench: label, spans_per_batch: SPANS, backends: BACKENDS, us_per_batch: +(ns / ROUNDS / 1000).toFixed(1), ns_per_span: +(ns / ROUNDS / SPANS).toFixed(1) }));
}

async function main(): Promise<void> {
  const batches = Array.from({ length: 8 }, (_, i) => scanExportRequest(realisticRequest(SPANS, i + 1)).spans);
  const cfg = withDefaults(LoadBalancingConfigSchema, { resolver: { static: { hostnames: ['x:1'] } }, protocol: { otlp: { sending_queue: { enabled: false } } } });

  const plain = new QueuedExporter(settings(), cfg.protocol.otlp, accept);
  await plain.start();
  const eps = Array.from({ length: BACKENDS }, (_, i) => `10.0.0.${i + 1}:4317`);
  const lb = new LoadBalancingExporter(settings(), cfg, {
    resolver: new StaticResolver(eps),
    senderFactory: () => ({ start: async () => undefined, close: () => undefined, send: accept }),
    healthIntervalMs: 0,
  });
  await lb.start();
  for (let rep = 0; rep < 3; rep++) {
    await time('otlp (one QueuedExporter, no queue)', (s) => plain.consume(s), batches);
    await time('loadbalancing (split + one QueuedExporter per backend)', (s) => lb.consume(s), batches);
  }
  const ring = new HashRing(eps);
  const ids = Array.from({ length: 4096 }, () => randomBytes(16).toString('hex'));
  let sink = 0;
  for (let rep = 0; rep < 3; rep++) {
    for (const [label, f] of [
      ['ring lookup, crc32Hex (JS, from the hex string)', (id: string) => ring.ownerOfTraceId(id)],
      ['ring lookup, zlib.crc32 (Buffer.write + native call)', (id: string) => ring.ownerOfTraceIdZlib(id)],
    ] as const) {
      const t0 = process.hrtime.bigint();
      for (let r = 0; r < 200; r++) for (const id of ids) sink += f(id);
      console.log(JSON.stringify({ bench: label, ns_per_lookup: +(Number(process.hrtime.bigint() - t0) / (200 * ids.length)).toFixed(1) }));
    }
  }
  if (sink < 0) console.log(sink);
  await plain.shutdown(0);
  await lb.shutdown(0);
}

void main();
