import { describe, expect, it } from 'vitest';
import { makeSpans, type SpanSpec } from '../../test/otlp.js';
import { withDefaults } from '../../config/defaults.js';
import { PolicySchema, type PolicyConfig } from './config.js';
import {
  compilePolicy,
  computeRates,
  DROPPED,
  DynamicSampler,
  INVERT_NOT_SAMPLED,
  INVERT_SAMPLED,
  NOT_SAMPLED,
  SAMPLED,
  TokenBucket,
} from './policies.js';
import { MemoryTraceStore, type PendingTrace } from './store.js';
import { CollectorProbabilistic } from './hash.js';

const TID = '4bf92f3577b34da6a3ce929d0e0e4736';
let spanN = 0;
const sid = () => (++spanN).toString(16).padStart(16, '0').replace(/^0/, 'c');

/** Builds a buffered trace from span specs; each entry of `parts` is one resource. */
function trace(parts: Array<{ spans: Array<Partial<SpanSpec>>; resource?: Record<string, string | number | boolean> }>, traceId = TID): PendingTrace {
  const store = new MemoryTraceStore();
  let t: PendingTrace | undefined;
  for (const part of parts) {
    const specs = part.spans.map((s) => ({ traceId, spanId: sid(), ...s }) as SpanSpec);
    for (const span of makeSpans(specs, part.resource ?? { 'service.name': 'svc' })) {
      t = store.get(span.traceId) ?? store.create(span.traceId, 0);
      store.append(t, span);
    }
  }
  return t!;
}
const one = (spans: Array<Partial<SpanSpec>>, resource?: Record<string, string | number | boolean>, traceId?: string) =>
  trace([{ spans, resource }], traceId);

function policy(p: Record<string, unknown>) {
  return compilePolicy(withDefaults(PolicySchema, { name: 'p', ...p }) as PolicyConfig);
}

describe('always_sample', () => {
  it('samples everything', () => {
    expect(policy({ type: 'always_sample' }).evaluate(one([{}]), 0)).toBe(SAMPLED);
  });
});

describe('latency', () => {
  const t = (ms: number) =>
    one([
      { parentSpanId: 'aaaaaaaaaaaaaaaa', startMs: 1_000, durationMs: 10 },
      { parentSpanId: 'aaaaaaaaaaaaaaaa', startMs: 1_000 + ms - 50, durationMs: 50 },
    ]);
  it('uses latest end minus earliest start, inclusive threshold without upper bound', () => {
    const p = policy({ type: 'latency', latency: { threshold_ms: 500 } });
    expect(p.evaluate(t(500), 0)).toBe(SAMPLED);
    expect(p.evaluate(t(499), 0)).toBe(NOT_SAMPLED);
  });
  it('with an upper bound: threshold < d <= upper', () => {
    const p = policy({ type: 'latency', latency: { threshold_ms: 500, upper_threshold_ms: 1000 } });
    expect(p.evaluate(t(500), 0)).toBe(NOT_SAMPLED);
    expect(p.evaluate(t(501), 0)).toBe(SAMPLED);
    expect(p.evaluate(t(1000), 0)).toBe(SAMPLED);
    expect(p.evaluate(t(1001), 0)).toBe(NOT_SAMPLED);
  });
  it('works on a trace with no root span (all spans have parents)', () => {
    expect(policy({ type: 'latency', latency: { threshold_ms: 2000 } }).evaluate(t(3000), 0)).toBe(SAMPLED);
  });

  describe('exact to the nanosecond at today\'s timestamps', () => {
    // 2026-12: Unix nanoseconds near 1.8e18, where a double steps in 256 ns.
    const TODAY = 1_796_661_228_000_000_000n;
    const msOfDoubles = (start: bigint, durNs: bigint) => Math.trunc((Number(start + durNs) - Number(start)) / 1e6);
    /** A start time at which the duration computed from doubles truncates to a different whole ms than the exact one. */
    function misleadingStart(durNs: bigint): bigint {
      for (let k = 0n; k < 4096n; k++) {
        if (msOfDoubles(TODAY + k, durNs) !== Number(durNs / 1_000_000n)) return TODAY + k;
      }
      throw new Error(`no start found where ${durNs} ns rounds across a millisecond`);
    }
    /** Earliest start and latest end on different spans, a third span inside. */
    const exact = (durNs: bigint) => {
      const start = misleadingStart(durNs);
      return one([
        { parentSpanId: 'aaaaaaaaaaaaaaaa', startNs: start, endNs: start + 1_000n },
        { parentSpanId: 'aaaaaaaaaaaaaaaa', startNs: start + 7n, endNs: start + durNs / 2n },
        { parentSpanId: 'aaaaaaaaaaaaaaaa', startNs: start + 3_000n, endNs: start + durNs },
      ]);
    };
    it('499.999999 ms is below a 500 ms threshold, 500.000000 ms meets it', () => {
      const p = policy({ type: 'latency', latency: { threshold_ms: 500 } });
      expect(p.evaluate(exact(499_999_999n), 0)).toBe(NOT_SAMPLED);
      expect(p.evaluate(exact(500_000_000n), 0)).toBe(SAMPLED);
    });
    it('at both bounds of threshold < d <= upper', () => {
      const p = policy({ type: 'latency', latency: { threshold_ms: 100, upper_threshold_ms: 500 } });
      expect(p.evaluate(exact(100_999_999n), 0)).toBe(NOT_SAMPLED);
      expect(p.evaluate(exact(101_000_000n), 0)).toBe(SAMPLED);
      expect(p.evaluate(exact(500_999_999n), 0)).toBe(SAMPLED);
      expect(p.evaluate(exact(501_000_000n), 0)).toBe(NOT_SAMPLED);
    });
  });
});

describe('numeric_attribute', () => {
  const p = (cfg: Record<string, unknown>) => policy({ type: 'numeric_attribute', numeric_attribute: { key: 'http.status_code', ...cfg } });
  it('matches inclusive bounds on span attributes', () => {
    const pol = p({ min_value: 400, max_value: 499 });
    expect(pol.evaluate(one([{ attributes: { 'http.status_code': 400 } }]), 0)).toBe(SAMPLED);
    expect(pol.evaluate(one([{ attributes: { 'http.status_code': 499 } }]), 0)).toBe(SAMPLED);
    expect(pol.evaluate(one([{ attributes: { 'http.status_code': 500 } }]), 0)).toBe(NOT_SAMPLED);
    expect(pol.evaluate(one([{ attributes: { 'http.status_code': 399 } }]), 0)).toBe(NOT_SAMPLED);
  });
  it('matches resource attributes', () => {
    expect(p({ min_value: 1 }).evaluate(one([{}], { 'http.status_code': 7 }), 0)).toBe(SAMPLED);
  });
  it('treats min_value 0 as no lower bound and max_value 0 as no upper bound (Collector semantics)', () => {
    expect(p({ max_value: 10 }).evaluate(one([{ attributes: { 'http.status_code': -1_000_000 } }]), 0)).toBe(SAMPLED);
    expect(p({ min_value: 10 }).evaluate(one([{ attributes: { 'http.status_code': 1e12 } }]), 0)).toBe(SAMPLED);
  });
  it('reads non-int values as 0, like pdata Value.Int()', () => {
    // A double 450.5 is not an int: it reads as 0, outside [400, 499] but inside [-inf, 10].
    expect(p({ min_value: 400, max_value: 499 }).evaluate(one([{ attributes: { 'http.status_code': 450.5 } }]), 0)).toBe(NOT_SAMPLED);
    expect(p({ max_value: 10 }).evaluate(one([{ attributes: { 'http.status_code': '450' } }]), 0)).toBe(SAMPLED);
  });
  it('invert_match: missing key is sampled, a match is InvertNotSampled', () => {
    const pol = p({ min_value: 400, max_value: 499, invert_match: true });
    expect(pol.evaluate(one([{ attributes: { other: 1 } }]), 0)).toBe(INVERT_SAMPLED);
    expect(pol.evaluate(one([{ attributes: { 'http.status_code': 200 } }]), 0)).toBe(INVERT_SAMPLED);
    expect(pol.evaluate(one([{ attributes: { 'http.status_code': 200 } }, { attributes: { 'http.status_code': 404 } }]), 0)).toBe(INVERT_NOT_SAMPLED);
  });
});

describe('string_attribute', () => {
  const p = (cfg: Record<string, unknown>) => policy({ type: 'string_attribute', string_attribute: { key: 'route', ...cfg } });
  it('matches exact values on spans and resources', () => {
    const pol = p({ values: ['/a', '/b'] });
    expect(pol.evaluate(one([{ attributes: { route: '/b' } }]), 0)).toBe(SAMPLED);
    expect(pol.evaluate(one([{ attributes: { route: '/bb' } }]), 0)).toBe(NOT_SAMPLED);
    expect(pol.evaluate(one([{}], { route: '/a' }), 0)).toBe(SAMPLED);
  });
  it('any span of any resource of the trace can match', () => {
    const t = trace([
      { spans: [{ attributes: { route: '/x' } }], resource: { 'service.name': 'a' } },
      { spans: [{ attributes: { route: '/a' } }], resource: { 'service.name': 'b' } },
    ]);
    expect(p({ values: ['/a'] }).evaluate(t, 0)).toBe(SAMPLED);
  });
  it('regex matching is unanchored like Go, and (?i) works', () => {
    expect(p({ values: ['^/v1/name/.+$'], enabled_regex_matching: true }).evaluate(one([{ attributes: { route: '/v1/name/42' } }]), 0)).toBe(SAMPLED);
    expect(p({ values: ['health'], enabled_regex_matching: true }).evaluate(one([{ attributes: { route: '/x/health/y' } }]), 0)).toBe(SAMPLED);
    expect(p({ values: ['(?i)HEALTH'], enabled_regex_matching: true }).evaluate(one([{ attributes: { route: '/health' } }]), 0)).toBe(SAMPLED);
    expect(p({ values: ['^/a$'], enabled_regex_matching: true }).evaluate(one([{ attributes: { route: '/ab' } }]), 0)).toBe(NOT_SAMPLED);
  });
  it('empty values: an empty span value never matches, an empty resource value can match a regex', () => {
    expect(p({ values: ['.*'], enabled_regex_matching: true }).evaluate(one([{ attributes: { route: '' } }]), 0)).toBe(NOT_SAMPLED);
    expect(p({ values: ['^$'], enabled_regex_matching: true }).evaluate(one([{}], { route: '' }), 0)).toBe(SAMPLED);
    expect(p({ values: [''] }).evaluate(one([{ attributes: { route: '' } }]), 0)).toBe(NOT_SAMPLED);
  });
  it('non-string values read as "" (pdata Str())', () => {
    expect(p({ values: ['5'] }).evaluate(one([{ attributes: { route: 5 } }]), 0)).toBe(NOT_SAMPLED);
  });
  it('invert_match: a trace without the key is sampled', () => {
    const pol = p({ values: ['/health'], invert_match: true });
    expect(pol.evaluate(one([{ attributes: { other: 'x' } }]), 0)).toBe(INVERT_SAMPLED);
    expect(pol.evaluate(one([{ attributes: { route: '/health' } }]), 0)).toBe(INVERT_NOT_SAMPLED);
    expect(pol.evaluate(one([{ attributes: { route: '/other' } }]), 0)).toBe(INVERT_SAMPLED);
  });
});

describe('boolean_attribute', () => {
  it('matches the configured value; a non-bool reads as false', () => {
    const yes = policy({ type: 'boolean_attribute', boolean_attribute: { key: 'force', value: true } });
    const no = policy({ type: 'boolean_attribute', boolean_attribute: { key: 'force', value: false } });
    expect(yes.evaluate(one([{ attributes: { force: true } }]), 0)).toBe(SAMPLED);
    expect(yes.evaluate(one([{ attributes: { force: false } }]), 0)).toBe(NOT_SAMPLED);
    expect(yes.evaluate(one([{}]), 0)).toBe(NOT_SAMPLED);
    expect(no.evaluate(one([{ attributes: { force: 'yes' } }]), 0)).toBe(SAMPLED);
  });
  it('invert_match', () => {
    const inv = policy({ type: 'boolean_attribute', boolean_attribute: { key: 'skip', value: true, invert_match: true } });
    expect(inv.evaluate(one([{}]), 0)).toBe(INVERT_SAMPLED);
    expect(inv.evaluate(one([{ attributes: { skip: true } }]), 0)).toBe(INVERT_NOT_SAMPLED);
  });
});

describe('status_code', () => {
  it('samples when any span has a listed code', () => {
    const p = policy({ type: 'status_code', status_code: { status_codes: ['ERROR'] } });
    expect(p.evaluate(one([{ status: 0 }, { status: 2 }]), 0)).toBe(SAMPLED);
    expect(p.evaluate(one([{ status: 0 }, { status: 1 }]), 0)).toBe(NOT_SAMPLED);
    expect(policy({ type: 'status_code', status_code: { status_codes: ['UNSET', 'OK'] } }).evaluate(one([{ status: 0 }]), 0)).toBe(SAMPLED);
  });
});

describe('probabilistic', () => {
  it('follows the Collector hash and reports its probability', () => {
    const ids = ['ad4df30bae771bdc76606e02b9eef064', 'ec4ac5a1e016eb2c79fb7b4ece1d1097'];
    for (const id of ids) {
      const want = new CollectorProbabilistic(10, '').sampled(id) ? SAMPLED : NOT_SAMPLED;
      const p = policy({ type: 'probabilistic', probabilistic: { sampling_percentage: 10 } });
      expect(p.evaluate(one([{}], undefined, id), 0)).toBe(want);
      expect(p.lastP).toBe(0.1);
      expect(p.lastConsistent).toBe(false);
    }
    expect(policy({ type: 'probabilistic', probabilistic: { sampling_percentage: 0 } }).evaluate(one([{}]), 0)).toBe(NOT_SAMPLED);
    const all = policy({ type: 'probabilistic', probabilistic: { sampling_percentage: 100 } });
    expect(all.evaluate(one([{}]), 0)).toBe(SAMPLED);
    expect(all.lastP).toBe(1);
  });
});

describe('rate_limiting and bytes_limiting', () => {
  it('token bucket starts full at 2x rate, refills over time, never admits more than the burst', () => {
    const b = new TokenBucket(10, 20);
    expect(b.allow(20, 1000)).toBe(true);
    expect(b.allow(1, 1000)).toBe(false);
    expect(b.allow(5, 1500)).toBe(true); // 0.5 s refilled 5
    expect(b.allow(1, 1500)).toBe(false);
    expect(b.allow(21, 100_000)).toBe(false); // more than the bucket holds
  });
  it('rate_limiting counts spans, uses the injected time, and its probability is unknown', () => {
    const p = policy({ type: 'rate_limiting', rate_limiting: { spans_per_second: 2 } });
    const three = one([{}, {}, {}]);
    expect(p.evaluate(three, 0)).toBe(SAMPLED); // 4 tokens
    expect(p.evaluate(three, 0)).toBe(NOT_SAMPLED); // 1 left
    expect(Number.isNaN(p.lastP)).toBe(true);
    expect(p.evaluate(three, 1000)).toBe(SAMPLED); // 1 + 2
    const burst = policy({ type: 'rate_limiting', rate_limiting: { spans_per_second: 100, burst_capacity: 2 } });
    expect(burst.evaluate(three, 0)).toBe(NOT_SAMPLED);
  });
  it('bytes_limiting counts encoded bytes', () => {
    const t = one([{ attributes: { big: 'x'.repeat(500) } }]);
    const p = policy({ type: 'bytes_limiting', bytes_limiting: { bytes_per_second: 300 } });
    expect(t.encodedBytes).toBeGreaterThan(500);
    expect(p.evaluate(t, 0)).toBe(SAMPLED); // burst 600
    expect(p.evaluate(t, 0)).toBe(NOT_SAMPLED);
  });
});

describe('span_count', () => {
  it('inclusive min and max; max 0 means no maximum', () => {
    const p = policy({ type: 'span_count', span_count: { min_spans: 2, max_spans: 3 } });
    expect(p.evaluate(one([{}]), 0)).toBe(NOT_SAMPLED);
    expect(p.evaluate(one([{}, {}]), 0)).toBe(SAMPLED);
    expect(p.evaluate(one([{}, {}, {}]), 0)).toBe(SAMPLED);
    expect(p.evaluate(one([{}, {}, {}, {}]), 0)).toBe(NOT_SAMPLED);
    expect(policy({ type: 'span_count', span_count: { min_spans: 2 } }).evaluate(one([{}, {}, {}, {}]), 0)).toBe(SAMPLED);
  });
});

describe('trace_state and trace_flags', () => {
  it('trace_state matches key=value in any span', () => {
    const p = policy({ type: 'trace_state', trace_state: { key: 'vendor', values: ['gold'] } });
    expect(p.evaluate(one([{ traceState: 'ot=th:8,vendor=gold' }]), 0)).toBe(SAMPLED);
    expect(p.evaluate(one([{ traceState: 'vendor=silver' }]), 0)).toBe(NOT_SAMPLED);
    expect(p.evaluate(one([{}]), 0)).toBe(NOT_SAMPLED);
  });
});

describe('and / not / drop', () => {
  const errors = { name: 'e', type: 'status_code', status_code: { status_codes: ['ERROR'] } };
  const route = (invert: boolean) => ({ name: 'r', type: 'string_attribute', string_attribute: { key: 'route', values: ['/health'], invert_match: invert } });
  it('and: sampled only when every sub-policy samples; inverted answers collapse', () => {
    const p = policy({ type: 'and', and: { and_sub_policy: [errors, route(true)] } });
    expect(p.evaluate(one([{ status: 2, attributes: { route: '/x' } }]), 0)).toBe(SAMPLED); // InvertSampled counts as sampled
    expect(p.evaluate(one([{ status: 2, attributes: { route: '/health' } }]), 0)).toBe(NOT_SAMPLED); // InvertNotSampled -> NotSampled
    expect(p.evaluate(one([{ status: 0, attributes: { route: '/x' } }]), 0)).toBe(NOT_SAMPLED);
  });
  it('and: the keep probability is the product of the random sub-policies', () => {
    const p = policy({ type: 'and', and: { and_sub_policy: [{ name: 'a', type: 'always_sample' }, { name: 'pr', type: 'probabilistic', probabilistic: { sampling_percentage: 100 } }] } });
    expect(p.evaluate(one([{}]), 0)).toBe(SAMPLED);
    expect(p.lastP).toBe(1);
  });
  it('not: flips sampled and not sampled', () => {
    const p = policy({ type: 'not', not: { not_sub_policy: errors } });
    expect(p.evaluate(one([{ status: 2 }]), 0)).toBe(NOT_SAMPLED);
    expect(p.evaluate(one([{ status: 0 }]), 0)).toBe(SAMPLED);
    expect(p.lastP).toBe(1);
  });
  it('drop: Dropped when every sub-policy samples', () => {
    const p = policy({ type: 'drop', drop: { drop_sub_policy: [route(false)] } });
    expect(p.evaluate(one([{ attributes: { route: '/health' } }]), 0)).toBe(DROPPED);
    expect(p.evaluate(one([{ attributes: { route: '/x' } }]), 0)).toBe(NOT_SAMPLED);
  });
});

describe('composite', () => {
  const cfg = (extra: Record<string, unknown> = {}) => ({
    type: 'composite',
    composite: {
      max_total_spans_per_second: 10,
      policy_order: ['b', 'a'], // ignored: list order decides
      composite_sub_policy: [
        { name: 'a', type: 'string_attribute', string_attribute: { key: 'tier', values: ['gold'] } },
        { name: 'b', type: 'always_sample' },
      ],
      rate_allocation: [
        { policy: 'a', percent: 50 },
        { policy: 'b', percent: 50 },
      ],
      ...extra,
    },
  });
  it('evaluates sub-policies in list order within their per-second allocation, using the injected time', () => {
    const p = policy(cfg());
    const gold = one([{ attributes: { tier: 'gold' } }, {}, {}]);
    expect(p.evaluate(gold, 1000)).toBe(SAMPLED); // a: 3/5
    expect(p.lastSub).toBe('a');
    expect(p.evaluate(gold, 1000)).toBe(NOT_SAMPLED); // a would be 6/5: the first matching sub decides, b is not tried
    expect(p.evaluate(gold, 2000)).toBe(SAMPLED); // new second
    const plain = one([{}, {}, {}, {}, {}]);
    expect(p.evaluate(plain, 2000)).toBe(SAMPLED);
    expect(p.lastSub).toBe('b');
    expect(Number.isNaN(p.lastP)).toBe(true);
  });
  it('a sub-policy missing from rate_allocation gets no share; percent 0 means an equal share', () => {
    const p = policy(cfg({ rate_allocation: [{ policy: 'a', percent: 50 }] }));
    expect(p.evaluate(one([{}]), 0)).toBe(NOT_SAMPLED); // b has no allocation
    const q = policy(cfg({ rate_allocation: [{ policy: 'b', percent: 0 }] }));
    expect(q.evaluate(one([{}, {}, {}, {}, {}]), 0)).toBe(SAMPLED); // 10 / 2 = 5
    expect(q.evaluate(one([{}]), 0)).toBe(NOT_SAMPLED);
  });
});

describe('dynamic', () => {
  it('computes rates: rare keys keep rate 1, frequent keys are sampled harder', () => {
    const rates = computeRates(
      new Map([
        ['rare', 2],
        ['common', 1000],
        ['medium', 50],
      ]),
      10,
    );
    expect(rates.get('rare')).toBe(1);
    expect(rates.get('common')!).toBeGreaterThan(rates.get('medium')!);
    expect(rates.get('medium')!).toBeGreaterThanOrEqual(1);
    // Overall kept count is close to the goal (1052 / 10).
    const kept = 2 / rates.get('rare')! + 1000 / rates.get('common')! + 50 / rates.get('medium')!;
    expect(kept).toBeGreaterThan(80);
    expect(kept).toBeLessThan(140);
  });

  it('adjusts every interval from the moving average and keeps by the OTEP 235 randomness', () => {
    const d = new DynamicSampler(['http.route'], 10, 1000, 0.5, 0.5, 100);
    const mk = (route: string, i: number) => one([{ attributes: { 'http.route': route } }], undefined, (i + 1).toString(16).padStart(32, '0'));
    // Before the first adjustment every key is kept.
    for (let i = 0; i < 200; i++) expect(d.evaluate(mk('/common', i), 0)).toBe(SAMPLED);
    d.evaluate(mk('/rare', 1), 0);
    d.evaluate(mk('/common', 1), 1000); // triggers the adjustment
    expect(d.rateOf('/rare')).toBe(1);
    expect(d.rateOf('/common')).toBeGreaterThan(1);
    // Kept exactly when R (low 56 bits of the trace id) >= threshold for 1/rate.
    const rate = d.rateOf('/common');
    const lowR = one([{ attributes: { 'http.route': '/common' } }], undefined, 'ffffffffffffffffff00000000000001');
    const highR = one([{ attributes: { 'http.route': '/common' } }], undefined, '000000000000000000ffffffffffffff');
    expect(d.evaluate(lowR, 1001)).toBe(NOT_SAMPLED);
    expect(d.evaluate(highR, 1001)).toBe(SAMPLED);
    expect(d.lastP).toBeCloseTo(1 / rate, 12);
    expect(d.lastConsistent).toBe(true);
    expect(d.evaluate(mk('/rare', 5), 1001)).toBe(SAMPLED);
  });

  it('builds keys from span and resource fields', () => {
    const d = new DynamicSampler(['service.name', 'span.name', 'status.code'], 10, 1000, 0.5, 0.5, 100);
    const t = trace([{ spans: [{ name: 'GET /b', status: 2 }, { name: 'GET /a' }], resource: { 'service.name': 'cart' } }]);
    expect(d.keyOf(t)).toBe('cart\u2022GET /a,GET /b\u20220,2');
  });
});
