/**
 * Sampling policies, compiled from config once. Each evaluator looks at a
 * buffered trace and answers with a Decision, the same answers the
 * Collector's evaluators give (internal/sampling/*.go), plus what the
 * processor needs to stamp kept spans: the keep probability behind the last
 * "sampled" answer (`lastP`: 1 when the trace's content decides, a known
 * probability for probabilistic / dynamic, NaN when unknown, e.g. rate
 * limits) and whether that randomness is the OTEP 235 R value.
 */
import { BoundedLru } from './lru.js';
import type { ResourceRef, Span } from '../../collector/pdata/spans.js';
import { spanName, spanTimesExact, spanTraceState } from '../../collector/pdata/attributes.js';
import { parseDuration } from '../../config/duration.js';
import { AttrKey, findResourceAttr, findSpanAttr, readAsKeyPart, readBool, readInt, readStr } from './attrs.js';
import { CollectorProbabilistic } from './hash.js';
import { incomingRandomness, thresholdForProbability, traceStateValue } from './tracestate.js';
import { compileGoRegex, STATUS_CODE_NAMES, type AnyPolicyConfig, type PolicyConfig } from './config.js';

export const UNSPECIFIED = 0;
export const SAMPLED = 1;
export const NOT_SAMPLED = 2;
export const INVERT_SAMPLED = 3;
export const INVERT_NOT_SAMPLED = 4;
export const DROPPED = 5;
export type Decision = 0 | 1 | 2 | 3 | 4 | 5;
export const DECISION_NAMES = ['unspecified', 'sampled', 'not_sampled', 'sampled', 'not_sampled', 'dropped'] as const;

/** What a policy sees of a trace. */
export interface TraceView {
  readonly id: string;
  readonly spans: Span[];
  readonly spanCount: number;
  readonly encodedBytes: number;
  readonly minStartNs: number;
  readonly maxEndNs: number;
}

export abstract class Evaluator {
  /** Keep probability behind the last sampled answer: 1 certain, (0,1) known, NaN unknown. */
  lastP = 1;
  /** True when the last answer kept by comparing the OTEP 235 randomness R with a threshold. */
  lastConsistent = false;
  /** Composite: the sub-policy that sampled. */
  lastSub: string | undefined = undefined;
  abstract evaluate(t: TraceView, nowMs: number): Decision;
}

class AlwaysSample extends Evaluator {
  evaluate(): Decision {
    return SAMPLED;
  }
}

/** Duration = latest end minus earliest start over the whole trace, in whole ms (Go's Duration.Milliseconds truncates). */
class Latency extends Evaluator {
  constructor(
    private readonly threshold: number,
    private readonly upper: number,
  ) {
    super();
  }
  evaluate(t: TraceView): Decision {
    const d = traceDurationMs(t);
    if (this.upper === 0) return d >= this.threshold ? SAMPLED : NOT_SAMPLED;
    return this.threshold < d && d <= this.upper ? SAMPLED : NOT_SAMPLED;
  }
}

/**
 * The trace's duration in whole milliseconds, truncated toward zero as Go's
 * `Duration.Milliseconds()`, exact to the nanosecond. The trace's index keeps
 * times as doubles, which step in 256 ns at today's timestamps (2^60..2^61
 * ns), so their difference is within 256 ns of the truth: only when it lies
 * that close to a whole millisecond can truncation go wrong, and only then
 * are the spans' fixed64 times read exactly (BigInt) from their bytes. The
 * margin (2^-50 of the later time, ~1.6 µs today) is several steps wide.
 */
export function traceDurationMs(t: TraceView): number {
  const ns = t.maxEndNs - t.minStartNs;
  const ms = Math.trunc(ns / 1e6);
  const rem = ns - ms * 1e6;
  const margin = t.maxEndNs * 2 ** -50 + 1;
  // A positive duration clear of a millisecond boundary (or no spans at all): the doubles are right.
  if ((rem > margin && rem < 1e6 - margin) || t.spans.length === 0) return ms;
  let min = 0n;
  let max = 0n;
  for (let i = 0; i < t.spans.length; i++) {
    const [start, end] = spanTimesExact(t.spans[i]);
    if (i === 0 || start < min) min = start;
    if (i === 0 || end > max) max = end;
  }
  return Number((max - min) / 1_000_000n);
}

/**
 * Attribute filters look at resource and span attributes; "matches" means
 * some resource or span has the key with a matching value. With invert_match
 * the answer is InvertNotSampled when anything matches, else InvertSampled
 * (so a trace without the key is sampled), as in the Collector.
 */
abstract class AttributeFilter extends Evaluator {
  constructor(
    protected readonly key: AttrKey,
    protected readonly invert: boolean,
  ) {
    super();
  }
  protected abstract matches(buf: Uint8Array, valueStart: number, onResource: boolean): boolean;
  /** Whether a resource matches, by object: a resource is shared by the spans of a request (and its header never changes). */
  private readonly resourceMatches = new WeakMap<ResourceRef, boolean>();
  private matchesResource(res: ResourceRef): boolean {
    let m = this.resourceMatches.get(res);
    if (m === undefined) {
      const s = findResourceAttr(res, this.key);
      m = s >= 0 && this.matches(res.header, s, true);
      this.resourceMatches.set(res, m);
    }
    return m;
  }
  evaluate(t: TraceView): Decision {
    const spans = t.spans;
    let lastRes = undefined;
    for (let i = 0; i < spans.length; i++) {
      const span = spans[i];
      const res = span.scope.resource;
      if (res !== lastRes) {
        lastRes = res;
        if (this.matchesResource(res)) return this.invert ? INVERT_NOT_SAMPLED : SAMPLED;
      }
      const s = findSpanAttr(span, this.key);
      if (s >= 0 && this.matches(span.buf, s, false)) return this.invert ? INVERT_NOT_SAMPLED : SAMPLED;
    }
    return this.invert ? INVERT_SAMPLED : NOT_SAMPLED;
  }
}

class NumericAttribute extends AttributeFilter {
  private readonly lo: number;
  private readonly hi: number;
  constructor(key: string, min: number, max: number, invert: boolean) {
    super(new AttrKey(key), invert);
    // As in the Collector: 0 means "not set", i.e. unbounded on that side.
    this.lo = min === 0 ? -Infinity : min;
    this.hi = max === 0 ? Infinity : max;
  }
  protected matches(buf: Uint8Array, s: number): boolean {
    const v = readInt(buf, s);
    return v >= this.lo && v <= this.hi;
  }
}

class StringAttribute extends AttributeFilter {
  private readonly test: (v: string) => boolean;
  constructor(key: string, values: string[], regex: boolean, cacheSize: number, invert: boolean) {
    super(new AttrKey(key), invert);
    if (regex) {
      const res = values.map(compileGoRegex);
      const cache = new BoundedLru<string, boolean>(cacheSize > 0 ? cacheSize : 128);
      this.test = (v) => {
        const hit = cache.get(v);
        if (hit !== undefined) return hit;
        let m = false;
        for (const r of res) if (r.test(v)) { m = true; break; }
        cache.set(v, m);
        return m;
      };
    } else {
      const set = new Set(values.filter((v) => v !== ''));
      this.test = (v) => set.has(v);
    }
  }
  protected matches(buf: Uint8Array, s: number, onResource: boolean): boolean {
    const v = readStr(buf, s);
    // The Collector skips empty span values but tests empty resource values.
    if (!onResource && v === '') return false;
    return this.test(v);
  }
}

class BooleanAttribute extends AttributeFilter {
  constructor(key: string, private readonly value: boolean, invert: boolean) {
    super(new AttrKey(key), invert);
  }
  protected matches(buf: Uint8Array, s: number): boolean {
    return readBool(buf, s) === this.value;
  }
}

class StatusCode extends Evaluator {
  private readonly codes: boolean[] = [false, false, false];
  constructor(codes: string[]) {
    super();
    for (const c of codes) this.codes[STATUS_CODE_NAMES[c]] = true;
  }
  evaluate(t: TraceView): Decision {
    const spans = t.spans;
    for (let i = 0; i < spans.length; i++) if (this.codes[spans[i].statusCode] === true) return SAMPLED;
    return NOT_SAMPLED;
  }
}

class Probabilistic extends Evaluator {
  private readonly sampler: CollectorProbabilistic;
  constructor(pct: number, salt: string) {
    super();
    this.sampler = new CollectorProbabilistic(pct, salt);
    this.lastP = pct >= 100 ? 1 : pct / 100;
    this.lastConsistent = false; // an FNV hash, independent of the trace-id randomness R
  }
  evaluate(t: TraceView): Decision {
    return this.sampler.sampled(t.id) ? SAMPLED : NOT_SAMPLED;
  }
}

/** golang.org/x/time/rate semantics: starts full, refills continuously, AllowN fails (and takes nothing) when n exceeds the tokens. */
export class TokenBucket {
  private tokens: number;
  private last = -1;
  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }
  allow(n: number, nowMs: number): boolean {
    if (this.last >= 0 && nowMs > this.last) this.tokens = Math.min(this.burst, this.tokens + ((nowMs - this.last) / 1000) * this.rate);
    if (this.last < 0 || nowMs > this.last) this.last = nowMs;
    if (n <= this.tokens) {
      this.tokens -= n;
      return true;
    }
    return false;
  }
}

class RateLimiting extends Evaluator {
  private readonly bucket: TokenBucket;
  constructor(perSecond: number, burst: number, private readonly bytes: boolean) {
    super();
    this.bucket = new TokenBucket(perSecond, burst > 0 ? burst : perSecond * 2);
    this.lastP = NaN;
  }
  evaluate(t: TraceView, now: number): Decision {
    return this.bucket.allow(this.bytes ? t.encodedBytes : t.spanCount, now) ? SAMPLED : NOT_SAMPLED;
  }
}

class SpanCount extends Evaluator {
  constructor(private readonly min: number, private readonly max: number) {
    super();
  }
  evaluate(t: TraceView): Decision {
    const n = t.spanCount;
    if (this.max === 0) return n >= this.min ? SAMPLED : NOT_SAMPLED;
    return n >= this.min && n <= this.max ? SAMPLED : NOT_SAMPLED;
  }
}

class TraceState extends Evaluator {
  private readonly values: Set<string>;
  constructor(private readonly key: string, values: string[]) {
    super();
    // The Collector ignores empty values and pairs longer than a tracestate member may be.
    this.values = new Set(values.filter((v) => v !== '' && key.length + v.length < 256));
  }
  evaluate(t: TraceView): Decision {
    for (const span of t.spans) {
      const ts = spanTraceState(span);
      if (ts === '') continue;
      const v = traceStateValue(ts, this.key);
      if (v !== undefined && this.values.has(v)) return SAMPLED;
    }
    return NOT_SAMPLED;
  }
}

class TraceFlags extends Evaluator {
  evaluate(t: TraceView): Decision {
    for (const span of t.spans) if ((span.flags & 0x01) !== 0) return SAMPLED;
    return NOT_SAMPLED;
  }
}

/** Sampled when every sub-policy samples; inverted answers collapse to plain ones. */
class And extends Evaluator {
  constructor(private readonly subs: Evaluator[]) {
    super();
  }
  evaluate(t: TraceView, now: number): Decision {
    let p = 1;
    let random = 0;
    let consistent = false;
    for (const sub of this.subs) {
      const d = sub.evaluate(t, now);
      if (d === NOT_SAMPLED || d === INVERT_NOT_SAMPLED) return NOT_SAMPLED;
      if (sub.lastP !== 1) {
        p *= sub.lastP;
        random++;
        consistent = sub.lastConsistent;
      }
    }
    this.lastP = p;
    this.lastConsistent = random === 1 && consistent;
    return SAMPLED;
  }
}

/** Flips Sampled and NotSampled; other answers pass through. */
class Not extends Evaluator {
  constructor(private readonly sub: Evaluator) {
    super();
  }
  evaluate(t: TraceView, now: number): Decision {
    const d = this.sub.evaluate(t, now);
    if (d === SAMPLED) return NOT_SAMPLED;
    if (d === NOT_SAMPLED) {
      // Kept because a random sub-policy said no: that probability is not tracked.
      this.lastP = this.sub.lastP === 1 ? 1 : NaN;
      this.lastConsistent = false;
      return SAMPLED;
    }
    return d;
  }
}

/** Dropped when every sub-policy samples. */
class Drop extends Evaluator {
  constructor(private readonly subs: Evaluator[]) {
    super();
  }
  evaluate(t: TraceView, now: number): Decision {
    for (const sub of this.subs) {
      const d = sub.evaluate(t, now);
      if (d === NOT_SAMPLED || d === INVERT_NOT_SAMPLED) return NOT_SAMPLED;
    }
    return DROPPED;
  }
}

interface CompositeSub {
  name: string;
  eval: Evaluator;
  allocated: number;
  sampled: number;
}

/**
 * As the Collector's composite: sub-policies in list order (policy_order is
 * not read); the first that samples decides: sampled while its per-second
 * span count stays within its allocation and within max_total_spans_per_second
 * (both compared with that sub-policy's own count, as the Collector does),
 * else not sampled. Counters restart every wall-clock second.
 */
class Composite extends Evaluator {
  private currentSecond = -1;
  constructor(private readonly subs: CompositeSub[], private readonly maxTotal: number) {
    super();
    this.lastP = NaN;
  }
  evaluate(t: TraceView, now: number): Decision {
    const sec = Math.floor(now / 1000);
    if (sec !== this.currentSecond) {
      this.currentSecond = sec;
      for (const s of this.subs) s.sampled = 0;
    }
    for (const s of this.subs) {
      const d = s.eval.evaluate(t, now);
      if (d === SAMPLED || d === INVERT_SAMPLED) {
        const ifSampled = s.sampled + t.spanCount;
        if (ifSampled <= s.allocated && ifSampled <= this.maxTotal) {
          s.sampled = ifSampled;
          this.lastSub = s.name;
          return SAMPLED;
        }
        return NOT_SAMPLED;
      }
    }
    return NOT_SAMPLED;
  }
}

type KeyField = { kind: 'attr'; key: AttrKey } | { kind: 'name' } | { kind: 'kind' } | { kind: 'status' };

const OVERFLOW_KEY = '\u0000overflow';
const MAX_VALUES_PER_FIELD = 8;

/**
 * In the spirit of Refinery's EMA dynamic sampler: traces are grouped by a
 * key built from chosen fields; every adjustment_interval the per-key trace
 * counts are folded into an exponential moving average and per-key sample
 * rates are recomputed so that rare keys are kept (rate 1) and frequent keys
 * are sampled harder, aiming at goal_sample_rate overall. Keys seen since
 * the last adjustment are kept. The keep/drop choice compares the OTEP 235
 * randomness (rv, else the low 56 bits of the trace id) with the threshold
 * for 1/rate, so the written threshold is exactly the one applied.
 */
export class DynamicSampler extends Evaluator {
  private readonly fields: KeyField[];
  private readonly counts = new Map<string, number>();
  private readonly ema = new Map<string, number>();
  private rates = new Map<string, number>();
  private readonly thresholdHex = new Map<number, string>();
  private nextAdjust = -1;
  constructor(
    keyFields: string[],
    private readonly goal: number,
    private readonly intervalMs: number,
    private readonly weight: number,
    private readonly ageOut: number,
    private readonly maxKeys: number,
  ) {
    super();
    this.fields = keyFields.map((f): KeyField => {
      if (f === 'span.name') return { kind: 'name' };
      if (f === 'span.kind') return { kind: 'kind' };
      if (f === 'status.code') return { kind: 'status' };
      return { kind: 'attr', key: new AttrKey(f) };
    });
    this.lastConsistent = true;
  }

  evaluate(t: TraceView, now: number): Decision {
    if (this.nextAdjust < 0) this.nextAdjust = now + this.intervalMs;
    else if (now >= this.nextAdjust) this.adjust(now);
    let key = this.keyOf(t);
    if (!this.counts.has(key) && !this.ema.has(key) && this.counts.size >= this.maxKeys) key = OVERFLOW_KEY;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    const rate = this.rates.get(key) ?? 1;
    if (rate <= 1) {
      this.lastP = 1;
      return SAMPLED;
    }
    this.lastP = 1 / rate;
    let th = this.thresholdHex.get(rate);
    if (th === undefined) {
      th = thresholdForProbability(1 / rate).toString(16).padStart(14, '0');
      this.thresholdHex.set(rate, th);
    }
    return randomnessHex(t) >= th ? SAMPLED : NOT_SAMPLED;
  }

  /** The sample rate currently applied to a key (tests, debugging). */
  rateOf(key: string): number {
    return this.rates.get(key) ?? 1;
  }

  keyOf(t: TraceView): string {
    const parts: string[] = [];
    for (const f of this.fields) {
      const seen = new Set<string>();
      let lastRes = undefined;
      for (const span of t.spans) {
        if (seen.size >= MAX_VALUES_PER_FIELD) break;
        switch (f.kind) {
          case 'name':
            seen.add(spanName(span));
            break;
          case 'kind':
            seen.add(String(span.kind));
            break;
          case 'status':
            seen.add(String(span.statusCode));
            break;
          case 'attr': {
            const res = span.scope.resource;
            if (res !== lastRes) {
              lastRes = res;
              const s = findResourceAttr(res, f.key);
              if (s >= 0) seen.add(readAsKeyPart(res.header, s));
            }
            const s = findSpanAttr(span, f.key);
            if (s >= 0) seen.add(readAsKeyPart(span.buf, s));
            break;
          }
        }
      }
      parts.push([...seen].sort().join(','));
    }
    return parts.join('\u2022');
  }

  private adjust(now: number): void {
    const w = this.weight;
    for (const [k, v] of this.ema) this.ema.set(k, v * (1 - w));
    for (const [k, c] of this.counts) this.ema.set(k, (this.ema.get(k) ?? 0) + w * c);
    for (const [k, v] of this.ema) if (v < this.ageOut) this.ema.delete(k);
    this.counts.clear();
    this.rates = computeRates(this.ema, this.goal);
    this.nextAdjust = now + this.intervalMs;
  }
}

/**
 * Per-key sample rates from (smoothed) counts: each key's share of the kept
 * budget grows with the log of its count, and budget a rare key does not use
 * is passed on to the keys after it (ascending by count).
 */
export function computeRates(counts: Map<string, number>, goal: number): Map<string, number> {
  const rates = new Map<string, number>();
  const entries = [...counts.entries()].sort((a, b) => a[1] - b[1]);
  let sum = 0;
  let logSum = 0;
  for (const [, v] of entries) {
    sum += v;
    logSum += Math.log10(Math.max(1, v));
  }
  if (sum === 0) return rates;
  if (logSum === 0) {
    for (const [k] of entries) rates.set(k, 1);
    return rates;
  }
  const goalRatio = sum / goal / logSum;
  let extra = 0;
  let remaining = entries.length;
  for (const [k, v] of entries) {
    const count = Math.max(1, v);
    let goalForKey = Math.max(1, Math.log10(count) * goalRatio);
    const extraForKey = extra / remaining;
    goalForKey += extraForKey;
    extra -= extraForKey;
    remaining--;
    if (count <= goalForKey) {
      rates.set(k, 1);
      extra += goalForKey - count;
    } else {
      const rate = Math.ceil(count / goalForKey);
      rates.set(k, rate);
      extra += goalForKey - count / rate;
    }
  }
  return rates;
}


/** OTEP 235 randomness as 14 lowercase hex digits: `rv` of the first span's tracestate, else the trace id's low 56 bits. */
function randomnessHex(t: TraceView): string {
  const first = t.spans[0];
  if (first !== undefined) {
    const ts = spanTraceState(first);
    if (ts !== '') {
      const rv = incomingRandomness(ts);
      if (rv !== undefined) return rv;
    }
  }
  return t.id.slice(18);
}

/** Compiles one policy config (any level) into an evaluator. */
export function compilePolicy(cfg: AnyPolicyConfig): Evaluator {
  switch (cfg.type) {
    case 'always_sample':
      return new AlwaysSample();
    case 'latency':
      return new Latency(cfg.latency?.threshold_ms ?? 0, cfg.latency?.upper_threshold_ms ?? 0);
    case 'numeric_attribute': {
      const n = cfg.numeric_attribute;
      return new NumericAttribute(n?.key ?? '', n?.min_value ?? 0, n?.max_value ?? 0, n?.invert_match ?? false);
    }
    case 'probabilistic':
      return new Probabilistic(cfg.probabilistic?.sampling_percentage ?? 0, cfg.probabilistic?.hash_salt ?? '');
    case 'status_code':
      return new StatusCode(cfg.status_code?.status_codes ?? []);
    case 'string_attribute': {
      const s = cfg.string_attribute;
      return new StringAttribute(s?.key ?? '', s?.values ?? [], s?.enabled_regex_matching ?? false, s?.cache_max_size ?? 0, s?.invert_match ?? false);
    }
    case 'rate_limiting':
      return new RateLimiting(cfg.rate_limiting?.spans_per_second ?? 0, cfg.rate_limiting?.burst_capacity ?? 0, false);
    case 'bytes_limiting':
      return new RateLimiting(cfg.bytes_limiting?.bytes_per_second ?? 0, cfg.bytes_limiting?.burst_capacity ?? 0, true);
    case 'span_count':
      return new SpanCount(cfg.span_count?.min_spans ?? 0, cfg.span_count?.max_spans ?? 0);
    case 'trace_state':
      return new TraceState(cfg.trace_state?.key ?? '', cfg.trace_state?.values ?? []);
    case 'boolean_attribute': {
      const b = cfg.boolean_attribute;
      return new BooleanAttribute(b?.key ?? '', b?.value ?? false, b?.invert_match ?? false);
    }
    case 'trace_flags':
      return new TraceFlags();
    case 'dynamic': {
      const d = cfg.dynamic;
      return new DynamicSampler(
        d?.key_fields ?? [],
        d?.goal_sample_rate ?? 10,
        parseDuration(d?.adjustment_interval ?? '15s'),
        d?.weight ?? 0.5,
        d?.age_out_value ?? 0.5,
        d?.max_keys ?? 500,
      );
    }
    case 'and':
      return new And(((cfg as PolicyConfig).and?.and_sub_policy ?? []).map(compilePolicy));
    case 'not': {
      const sub = (cfg as PolicyConfig).not?.not_sub_policy;
      if (!sub) throw new Error(`policy "${cfg.name}": not_sub_policy is required`);
      return new Not(compilePolicy(sub));
    }
    case 'drop':
      return new Drop(((cfg as PolicyConfig).drop?.drop_sub_policy ?? []).map(compilePolicy));
    case 'composite': {
      const cc = (cfg as PolicyConfig).composite;
      const subsCfg = cc?.composite_sub_policy ?? [];
      const max = cc?.max_total_spans_per_second ?? 0;
      const alloc = new Map<string, number>();
      const equalShare = subsCfg.length > 0 ? max / subsCfg.length : 0;
      for (const ra of cc?.rate_allocation ?? []) alloc.set(ra.policy, ra.percent > 0 ? (ra.percent / 100) * max : equalShare);
      const subs = subsCfg.map((s) => ({ name: s.name, eval: compilePolicy(s), allocated: Math.trunc(alloc.get(s.name) ?? 0), sampled: 0 }));
      return new Composite(subs, max);
    }
    case 'ottl_condition':
      throw new Error(`policy "${cfg.name}": ottl_condition is not supported`);
    default:
      throw new Error(`policy "${(cfg as { name: string }).name}": unknown policy type`);
  }
}
