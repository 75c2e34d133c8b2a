/**
 * The retry hint of a full queue follows how fast the queue drains: the
 * time until there is room for the refused request, not a constant.
 */
import { describe, it, expect } from 'vitest';
import { Type } from '@sinclair/typebox';
import { DrainRate, MIN_HINT_MS } from './drain.js';
import { QueuedExporter } from './exporter.js';
import { helperProperties } from './config.js';
import { FakeTimers } from './testing.js';
import { FakeClock } from '../../collector/consumertest.js';
import { Telemetry } from '../../collector/telemetry/metrics.js';
import { silentLogger } from '../../collector/telemetry/logger.js';
import { CollectorError } from '../../collector/errors.js';
import { withDefaults } from '../../config/defaults.js';
import { makeSpans, traceIdHex, spanIdHex } from '../../test/otlp.js';

describe('DrainRate', () => {
  it('measures gaps between takes only while requests wait', () => {
    const clock = new FakeClock();
    const d = new DrainRate(clock);
    expect(d.delayFor(1)).toBeUndefined();
    d.taken(0); // the queue was empty after it: the next gap is an arrival gap
    clock.advance(5000);
    d.taken(3);
    expect(d.delayFor(1)).toBeUndefined();
    clock.advance(40);
    d.taken(2);
    expect(d.delayFor(1)).toBe(40);
    expect(d.delayFor(3)).toBe(120);
    clock.advance(90); // nothing taken for 90 ms while backlogged: at least 90 ms per request now
    expect(d.delayFor(1)).toBe(90);
    clock.advance(0);
    d.taken(0);
    expect(d.delayFor(1)).toBe(Math.ceil(40 * 0.8 + 90 * 0.2));
  });

  it('bounds the hint', () => {
    const clock = new FakeClock();
    const d = new DrainRate(clock);
    d.taken(5);
    clock.advance(1);
    d.taken(5);
    expect(d.delayFor(1)).toBe(MIN_HINT_MS);
    clock.advance(100_000);
    expect(d.delayFor(1)).toBe(30_000);
  });
});

describe('QueuedExporter retry hint', () => {
  it('tells a refused caller when the queue will have room, from the measured drain rate', async () => {
    const clock = new FakeClock();
    const timers = new FakeTimers(clock);
    const schema = Type.Object(helperProperties, { additionalProperties: false, default: {} });
    // A backend that takes 50 ms per request, one request at a time.
    const exp = new QueuedExporter(
      { id: 'otlp/test', logger: silentLogger(), telemetry: new Telemetry(), clock },
      withDefaults(schema, { sending_queue: { queue_size: 4, num_consumers: 1 }, retry_on_failure: { enabled: false } }),
      async () => {
        await timers.sleep(50);
        return {};
      },
      { timers, random: () => 0.5 },
    );
    await exp.start();
    const spans = () => makeSpans([{ traceId: traceIdHex(), spanId: spanIdHex() }]);
    const offer = async (): Promise<number | undefined> => {
      try {
        await exp.consume(spans());
        return undefined;
      } catch (e) {
        return (e as CollectorError).retryAfterMs;
      }
    };
    // Keep the queue full for a while, so the drain is measured.
    const hints: number[] = [];
    for (let i = 0; i < 20; i++) {
      for (;;) {
        const h = await offer();
        if (h === undefined) continue;
        hints.push(h);
        break;
      }
      await timers.advance(50);
    }
    const last = hints[hints.length - 1];
    expect(last).toBeGreaterThanOrEqual(40);
    expect(last).toBeLessThanOrEqual(60); // one request's worth: ~50 ms, not the old floor of 1 s
    await exp.shutdown(0);
  });
});
