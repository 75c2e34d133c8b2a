import { describe, it, expect } from 'vitest';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { debugExporterFactory } from './index.js';
import { DebugExporterConfigSchema } from './config.js';
import { FakeClock } from '../../collector/consumertest.js';
import { Telemetry } from '../../collector/telemetry/metrics.js';
import { withDefaults } from '../../config/defaults.js';
import { makeSpans } from '../../test/otlp.js';

function capture(verbosity: 'basic' | 'normal') {
  const lines: Array<Record<string, unknown>> = [];
  const dest = new Writable({
    write(chunk, _enc, cb) {
      lines.push(JSON.parse(String(chunk)));
      cb();
    },
  });
  const logger = pino({ level: 'info' }, dest);
  const exp = debugExporterFactory.create({ id: 'debug', logger, telemetry: new Telemetry(), clock: new FakeClock() }, withDefaults(DebugExporterConfigSchema, { verbosity }));
  return { exp, lines };
}

const t1 = 'a'.repeat(32);
const t2 = 'b'.repeat(32);
const batch = () => [
  ...makeSpans([
    { traceId: t1, spanId: '1'.repeat(16), name: 'GET /a' },
    { traceId: t1, spanId: '2'.repeat(16), name: 'db' },
  ]),
  ...makeSpans([{ traceId: t2, spanId: '3'.repeat(16), name: 'POST /b' }], { 'service.name': 'other' }),
];

describe('debug exporter', () => {
  it('logs one summary line per batch', async () => {
    const { exp, lines } = capture('basic');
    await exp.consume(batch());
    await new Promise((r) => setImmediate(r));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ spans: 3, traces: 2, resources: 2, exporter: 'debug' });
    expect(lines[0].span_names).toBeUndefined();
  });

  it('adds span names at verbosity normal', async () => {
    const { exp, lines } = capture('normal');
    await exp.consume(batch());
    await new Promise((r) => setImmediate(r));
    expect(lines[0].span_names).toEqual(['GET /a', 'db', 'POST /b']);
  });
});
