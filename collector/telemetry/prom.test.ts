import { describe, expect, it } from 'vitest';
import { Counter, Gauge, Histogram, Registry, registerProcessMetrics } from './prom.js';

describe('Prometheus registry', () => {
  it('writes the text exposition format', async () => {
    const r = new Registry();
    const c = new Counter({ name: 'x_spans_total', help: 'Spans.\nSecond line', labelNames: ['receiver', 'transport'], registers: [r] });
    c.labels('otlp', 'grpc').inc(3);
    c.labels('otlp', 'grpc').inc();
    c.labels('a"b\\c\nd', 'http').inc(2);
    new Gauge({ name: 'x_unset', help: 'An unlabelled gauge.', registers: [r] });
    const h = new Histogram({ name: 'x_size', help: 'Sizes.', labelNames: ['p'], buckets: [10, 1], registers: [r] });
    for (const v of [0.5, 1, 5, 50]) h.labels('b').observe(v);
    expect(await r.metrics()).toBe(
      [
        '# HELP x_spans_total Spans.\\nSecond line',
        '# TYPE x_spans_total counter',
        'x_spans_total{receiver="otlp",transport="grpc"} 4',
        'x_spans_total{receiver="a\\"b\\\\c\\nd",transport="http"} 2',
        '# HELP x_unset An unlabelled gauge.',
        '# TYPE x_unset gauge',
        'x_unset 0',
        '# HELP x_size Sizes.',
        '# TYPE x_size histogram',
        'x_size_bucket{p="b",le="1"} 2',
        'x_size_bucket{p="b",le="10"} 3',
        'x_size_bucket{p="b",le="+Inf"} 4',
        'x_size_sum{p="b"} 56.5',
        'x_size_count{p="b"} 4',
        '',
      ].join('\n'),
    );
    expect(r.getSingleMetric('x_size')).toBe(h);
    expect(() => new Counter({ name: 'x_size', help: 'dup', registers: [r] })).toThrow(/already registered/);
  });

  it('refuses to decrease a counter and checks the label count', () => {
    const c = new Counter({ name: 'c_total', help: 'c', labelNames: ['a'] });
    expect(() => c.labels('x').inc(-1)).toThrow(/cannot increase/);
    expect(() => c.labels('x', 'y')).toThrow(/1 label values expected/);
  });

  it('reset forgets label sets; get() returns values like prom-client', async () => {
    const g = new Gauge({ name: 'g', help: 'g', labelNames: ['hash'] });
    g.labels('abc').set(1);
    g.reset();
    g.labels('def').set(1);
    expect((await g.get()).values).toEqual([{ labels: { hash: 'def' }, value: 1 }]);
  });

  it('registers the process metrics the README lists', async () => {
    const r = new Registry();
    const stop = registerProcessMetrics(r);
    try {
      const text = await r.metrics();
      for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_p99_seconds']) {
        expect(text).toMatch(new RegExp(`^${name} [0-9.e+-]+$`, 'm'));
      }
      expect(text).toMatch(/^# TYPE process_cpu_seconds_total counter$/m);
    } finally {
      stop();
    }
  });
});
