/**
 * Deciding one trace: the compiled policies combined as the Collector's
 * makeDecision does, with the keep probability worked out for stamping, and
 * the per-policy counts (aggregated, flushed to the registry once per tick).
 */
import type { Telemetry, Counter } from '../../collector/telemetry/metrics.js';
import type { TailSamplingConfig } from './config.js';
import {
  compilePolicy,
  DECISION_NAMES,
  DROPPED,
  INVERT_NOT_SAMPLED,
  INVERT_SAMPLED,
  NOT_SAMPLED,
  SAMPLED,
  type Decision,
  type Evaluator,
} from './policies.js';
import type { PendingTrace } from './store.js';
import { METRIC_PREFIX } from './metrics.js';

/** A decision as remembered for late spans (decision cache) and used to stamp spans. */
export interface DecisionRecord {
  /** Final decision: SAMPLED, NOT_SAMPLED or DROPPED. */
  readonly decision: Decision;
  /** Policy that decided (the first that sampled, or the drop policy); '' when none. */
  readonly policy: string;
  readonly compositeSub: string | undefined;
  /** Keep probability: 1, a known probability, or NaN when unknown. */
  readonly p: number;
  /** True when the randomness behind p is OTEP 235's R (thresholds nest: max), false for an independent hash (product). */
  readonly consistent: boolean;
  readonly decidedAt: number;
  /** The stamped attributes, encoded (cached per policy, sub-policy and SampleRate), on first use. */
  encoded?: Uint8Array;
  /** SampleRate included in `encoded` (0: none). */
  encodedRate?: number;
}

export interface CompiledPolicy {
  readonly name: string;
  readonly eval: Evaluator;
}

type C = ReturnType<Counter['labels']>;

export class PolicyDecider {
  policies: CompiledPolicy[] = [];
  private firstMatch = false;
  // Aggregated per-policy counts: [policy][decision] traces and spans.
  private policyTraces = new Float64Array(0);
  private policySpans = new Float64Array(0);
  private policyTraceChildren: Array<C | undefined> = [];
  private policySpanChildren: Array<C | undefined> = [];
  private evalErrors = 0;
  private readonly mEvalErrors: C;

  // Per-decision scratch results of evaluate (no allocation per trace).
  private decPolicy = -1;
  private decP = 1;
  private decConsistent = false;
  private decSub: string | undefined = undefined;

  constructor(
    private readonly telemetry: Telemetry,
    private readonly id: string,
    cfg: TailSamplingConfig,
  ) {
    this.setPolicies(cfg);
    this.mEvalErrors = telemetry
      .counter(METRIC_PREFIX + 'sampling_policy_evaluation_error_total', 'Policy evaluations that failed (counted, policy skipped).', ['processor'])
      .labels(id);
  }

  /** Compiles the policies and binds their per-policy metric children (a reload: the old counts go out first). */
  setPolicies(cfg: TailSamplingConfig): void {
    // Drop policies first: a Dropped answer wins and stops evaluation (as in the Collector).
    const ordered = [...cfg.policies.filter((p) => p.type === 'drop'), ...cfg.policies.filter((p) => p.type !== 'drop')];
    const policies = ordered.map((p) => ({ name: p.name, eval: compilePolicy(p) }));
    const t = this.telemetry;
    const P = METRIC_PREFIX;
    const n = policies.length;
    if (this.policyTraces.length > 0) this.flush();
    this.policyTraces = new Float64Array(n * 6);
    this.policySpans = new Float64Array(n * 6);
    const perPolicyTraces = t.counter(P + 'count_traces_sampled_total', 'Traces per policy and the decision the policy gave.', ['processor', 'policy', 'sampled', 'decision']);
    const perPolicySpans = t.counter(P + 'count_spans_sampled_total', 'Spans of the traces per policy and the decision the policy gave.', ['processor', 'policy', 'sampled', 'decision']);
    this.policyTraceChildren = new Array(n * 6).fill(undefined);
    this.policySpanChildren = new Array(n * 6).fill(undefined);
    for (let i = 0; i < n; i++) {
      for (const d of [SAMPLED, NOT_SAMPLED, INVERT_SAMPLED, INVERT_NOT_SAMPLED, DROPPED] as const) {
        const name = DECISION_NAMES[d];
        const sampled = d === SAMPLED || d === INVERT_SAMPLED ? 'true' : 'false';
        this.policyTraceChildren[i * 6 + d] = perPolicyTraces.labels(this.id, policies[i].name, sampled, name);
        this.policySpanChildren[i * 6 + d] = perPolicySpans.labels(this.id, policies[i].name, sampled, name);
      }
    }
    this.policies = policies;
    this.firstMatch = cfg.sample_on_first_match;
  }

  /** Evaluates the policies on a whole trace and returns the decision with its policy and keep probability. */
  decide(t: PendingTrace, now: number): DecisionRecord {
    const d = this.makeDecision(t, now);
    return {
      decision: d,
      policy: this.decPolicy >= 0 ? this.policies[this.decPolicy].name : '',
      compositeSub: this.decSub,
      p: this.decP,
      consistent: this.decConsistent,
      decidedAt: now,
    };
  }

  /**
   * The Collector's makeDecision: Dropped wins; then InvertNotSampled (not
   * sampled); then Sampled; then InvertSampled when no policy said
   * NotSampled; else not sampled. Also works out the keep probability.
   */
  private makeDecision(t: PendingTrace, now: number): Decision {
    const policies = this.policies;
    const n = policies.length;
    let dropIdx = -1;
    let sampledIdx = -1;
    let invSampledIdx = -1;
    let anyNot = false;
    let anyInvNot = false;
    let certain = false;
    let unknown = false;
    let randomCount = 0;
    let randomP = 1;
    let randomConsistent = false;
    let stoppedEarly = false;
    let sub: string | undefined;
    for (let i = 0; i < n; i++) {
      const ev = policies[i].eval;
      let d: Decision;
      try {
        d = ev.evaluate(t, now);
      } catch {
        this.evalErrors++;
        continue;
      }
      this.policyTraces[i * 6 + d]++;
      this.policySpans[i * 6 + d] += t.spanCount;
      if (d === DROPPED) {
        dropIdx = i;
        break;
      }
      if (d === SAMPLED || d === INVERT_SAMPLED) {
        if (d === SAMPLED && sampledIdx < 0) {
          sampledIdx = i;
          sub = ev.lastSub;
        }
        if (d === INVERT_SAMPLED && invSampledIdx < 0) invSampledIdx = i;
        const p = d === INVERT_SAMPLED ? 1 : ev.lastP;
        if (p === 1) certain = true;
        else if (Number.isNaN(p)) unknown = true;
        else {
          randomCount++;
          randomP = p;
          randomConsistent = ev.lastConsistent;
        }
      } else if (d === NOT_SAMPLED) anyNot = true;
      else if (d === INVERT_NOT_SAMPLED) anyInvNot = true;
      if (this.firstMatch && d === SAMPLED) {
        stoppedEarly = i < n - 1;
        break;
      }
    }
    this.decSub = undefined;
    this.decConsistent = false;
    if (dropIdx >= 0) {
      this.decPolicy = dropIdx;
      this.decP = 1;
      return DROPPED;
    }
    let final: Decision = NOT_SAMPLED;
    this.decPolicy = -1;
    if (anyInvNot) final = NOT_SAMPLED;
    else if (sampledIdx >= 0) {
      final = SAMPLED;
      this.decPolicy = sampledIdx;
      this.decSub = sub;
    } else if (invSampledIdx >= 0 && !anyNot) {
      final = SAMPLED;
      this.decPolicy = invSampledIdx;
    }
    if (certain) this.decP = 1;
    else if (unknown || randomCount !== 1 || stoppedEarly) this.decP = NaN;
    else {
      this.decP = randomP;
      this.decConsistent = randomConsistent;
    }
    return final;
  }

  /** Adds the aggregated per-policy counts and evaluation errors to the registry. */
  flush(): void {
    const tr = this.policyTraces;
    const sp = this.policySpans;
    for (let i = 0; i < tr.length; i++) {
      if (tr[i] === 0) continue;
      this.policyTraceChildren[i]?.inc(tr[i]);
      this.policySpanChildren[i]?.inc(sp[i]);
      tr[i] = 0;
      sp[i] = 0;
    }
    if (this.evalErrors > 0) {
      this.mEvalErrors.inc(this.evalErrors);
      this.evalErrors = 0;
    }
  }
}
