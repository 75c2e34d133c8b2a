/**
 * Decisions remembered after a trace left the buffer (`decision_cache`), so
 * late spans follow the decision: LRUs of trace ids, one for kept traces and
 * one for the rest (each off at size 0).
 */
import { BoundedLru } from './lru.js';
import { SAMPLED } from './policies.js';
import type { DecisionRecord } from './decide.js';

export class DecisionCache {
  private readonly sampled: BoundedLru<string, DecisionRecord> | undefined;
  private readonly notSampled: BoundedLru<string, DecisionRecord> | undefined;

  constructor(sampledSize: number, notSampledSize: number) {
    this.sampled = sampledSize > 0 ? new BoundedLru(sampledSize) : undefined;
    this.notSampled = notSampledSize > 0 ? new BoundedLru(notSampledSize) : undefined;
  }

  get(id: string): DecisionRecord | undefined {
    return this.sampled?.get(id) ?? this.notSampled?.get(id);
  }

  remember(id: string, rec: DecisionRecord): void {
    if (rec.decision === SAMPLED) this.sampled?.set(id, rec);
    else this.notSampled?.set(id, rec);
  }
}
