/**
 * Stamping kept spans with why they were kept and what they stand for
 * (`tailsampling.policy`, `tailsampling.composite_policy`, `SampleRate`, the
 * OTEP 235 threshold in the trace state), or in dry_run with the would-be
 * decision. The byte-level work is in stamp.ts; this part works out what to
 * write, once per (trace state, probability), and keeps one slab for the
 * rewritten bytes.
 */
import type { Span } from '../../collector/pdata/spans.js';
import { encodeKeyValue, setSpanAttributes, setSpanTraceState, spanTraceState, type AttrValue } from '../../collector/pdata/attributes.js';
import { WireWriter } from '../../collector/pdata/wire.js';
import { Slab } from '../../collector/pdata/slab.js';
import { encodeTraceStateField, foundTraceState, scanForStamp, writeStamped } from './stamp.js';
import { AttrKey, findSpanAttr } from './attrs.js';
import { DECISION_NAMES } from './policies.js';
import { adjustedCount, incomingThreshold, MAX_TH, thresholdForProbability, withThreshold } from './tracestate.js';
import type { DecisionRecord } from './decide.js';

export const ATTR_POLICY = 'tailsampling.policy';
export const ATTR_COMPOSITE_POLICY = 'tailsampling.composite_policy';
export const ATTR_SAMPLE_RATE = 'SampleRate';
export const ATTR_DRY_RUN_DECISION = 'tailsampling.dry_run.decision';
export const ATTR_DRY_RUN_POLICY = 'tailsampling.dry_run.policy';

const KEY_POLICY = new AttrKey(ATTR_POLICY);
const KEY_COMPOSITE = new AttrKey(ATTR_COMPOSITE_POLICY);
const KEY_SAMPLE_RATE = new AttrKey(ATTR_SAMPLE_RATE);
/** Keys a kept span must not carry already for the append-only stamp (else they are replaced). */
const STAMP_KEYS = [KEY_POLICY.bytes, KEY_COMPOSITE.bytes, KEY_SAMPLE_RATE.bytes];

function encodeAttrs(attrs: Record<string, AttrValue>): Uint8Array {
  const w = new WireWriter(128);
  for (const k of Object.keys(attrs)) encodeKeyValue(w, 9, k, attrs[k]);
  return w.finish();
}

/**
 * Appends pre-encoded span attributes (field 9) to a span: one exact-size
 * copy. Falls back to setSpanAttributes (which replaces existing keys) when
 * the span already carries one of the keys.
 */
function appendAttrs(span: Span, encoded: Uint8Array, attrs: () => Record<string, AttrValue>, hasRate: boolean, hasSub: boolean): void {
  if (findSpanAttr(span, KEY_POLICY) >= 0 || (hasRate && findSpanAttr(span, KEY_SAMPLE_RATE) >= 0) || (hasSub && findSpanAttr(span, KEY_COMPOSITE) >= 0)) {
    setSpanAttributes(span, attrs());
    return;
  }
  const b = new Uint8Array(span.len + encoded.length);
  b.set(span.buf.subarray(span.off, span.off + span.len), 0);
  b.set(encoded, span.len);
  span.setBytes(b);
}

/** tailsampling.policy (and composite_policy) of a decision. */
function policyAttrs(rec: DecisionRecord): Record<string, AttrValue> {
  const a: Record<string, AttrValue> = { [ATTR_POLICY]: rec.policy };
  if (rec.compositeSub !== undefined) a[ATTR_COMPOSITE_POLICY] = rec.compositeSub;
  return a;
}

export class SpanStamper {
  /** dry_run: spans get the would-be decision and policy instead. */
  dryRun: boolean;
  // One slab for rewritten bytes; the last trace state worked out (incoming state, p) -> (field, SampleRate).
  private readonly slab = new Slab(256 * 1024);
  private memoTs = '';
  private memoP = NaN;
  private memoConsistent = false;
  private memoTsField: Uint8Array | undefined = undefined;
  private memoRate = 0;
  /** SampleRate worked out by the last nextTraceState (0: none). */
  private stampRate = 0;
  private readonly attrEncodings = new Map<string, Uint8Array>();

  constructor(dryRun: boolean) {
    this.dryRun = dryRun;
  }

  /**
   * Writes why a span was kept and what it stands for:
   * - `tailsampling.policy` (and `tailsampling.composite_policy`) always;
   * - keep probability 1: the trace state is left alone, no SampleRate;
   * - known probability p < 1: `th` = p's threshold, combined with an incoming
   *   `th` by max (R-consistent policies) or by product (the probabilistic
   *   policy's independent hash), never lower than the incoming one, and
   *   `SampleRate` = the adjusted count of the written threshold;
   * - unknown probability: `th` is erased (no false threshold).
   * In dry_run only the would-be decision and policy are written.
   */
  stamp(span: Span, rec: DecisionRecord): void {
    if (this.dryRun) {
      setSpanAttributes(span, {
        [ATTR_DRY_RUN_DECISION]: DECISION_NAMES[rec.decision],
        [ATTR_DRY_RUN_POLICY]: rec.policy,
      });
      return;
    }
    if (!scanForStamp(span, STAMP_KEYS)) {
      this.stampSlow(span, rec);
      return;
    }
    if (rec.p === 1) {
      rec.encoded ??= this.encodedAttrs(rec, 0);
      writeStamped(span, undefined, rec.encoded, this.slab);
      return;
    }
    // Spans (and traces) nearly always share their trace state: work the new one out once per (state, probability).
    const ts = foundTraceState(span);
    if (ts !== this.memoTs || !Object.is(rec.p, this.memoP) || rec.consistent !== this.memoConsistent) {
      const next = this.nextTraceState(ts, rec);
      this.memoTs = ts;
      this.memoP = rec.p;
      this.memoConsistent = rec.consistent;
      this.memoTsField = next === ts ? undefined : encodeTraceStateField(next);
      this.memoRate = this.stampRate;
    }
    if (rec.encoded === undefined || rec.encodedRate !== this.memoRate) {
      rec.encoded = this.encodedAttrs(rec, this.memoRate);
      rec.encodedRate = this.memoRate;
    }
    writeStamped(span, this.memoTsField, rec.encoded, this.slab);
  }

  /** The general path (re-encodes the span): replaces stamped keys already present, handles a repeated trace_state. */
  private stampSlow(span: Span, rec: DecisionRecord): void {
    const hasSub = rec.compositeSub !== undefined;
    let rate = 0;
    if (rec.p !== 1) {
      const ts = spanTraceState(span);
      const next = this.nextTraceState(ts, rec);
      if (next !== ts) setSpanTraceState(span, next);
      rate = this.stampRate;
    }
    const attrs = () => (rate === 0 ? policyAttrs(rec) : { ...policyAttrs(rec), [ATTR_SAMPLE_RATE]: rate });
    appendAttrs(span, this.encodedAttrs(rec, rate), attrs, rate !== 0, hasSub);
  }

  /**
   * The trace state a kept span gets for a decision of keep probability
   * rec.p (not 1); sets stampRate to the SampleRate to write (0: none).
   */
  private nextTraceState(ts: string, rec: DecisionRecord): string {
    const p = rec.p;
    this.stampRate = 0;
    if (Number.isNaN(p)) return ts.includes('th:') ? withThreshold(ts, undefined) : ts;
    const tin = ts === '' ? undefined : incomingThreshold(ts);
    let tnew: bigint;
    if (tin === undefined) tnew = thresholdForProbability(p);
    else if (rec.consistent) {
      const own = thresholdForProbability(p);
      tnew = own > tin ? own : tin;
    } else {
      // Independent of R: the probabilities multiply (p kept to 30 bits).
      const keep = ((MAX_TH - tin) * BigInt(Math.round(p * 2 ** 30))) / (1n << 30n);
      tnew = MAX_TH - (keep < 1n ? 1n : keep);
      if (tnew < tin) tnew = tin;
    }
    this.stampRate = Number(adjustedCount(tnew).toPrecision(12));
    return withThreshold(ts, tnew);
  }

  /** Encoded tailsampling.policy (composite_policy) and, when rate > 0, SampleRate; cached per (policy, sub, rate). */
  private encodedAttrs(rec: DecisionRecord, rate: number): Uint8Array {
    const key = rec.policy + '\u0000' + (rec.compositeSub ?? '') + '\u0000' + rate;
    let b = this.attrEncodings.get(key);
    if (b === undefined) {
      b = encodeAttrs(rate === 0 ? policyAttrs(rec) : { ...policyAttrs(rec), [ATTR_SAMPLE_RATE]: rate });
      if (this.attrEncodings.size > 256) this.attrEncodings.clear();
      this.attrEncodings.set(key, b);
    }
    return b;
  }
}
