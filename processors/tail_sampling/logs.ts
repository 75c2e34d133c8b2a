/**
 * Log records that follow their trace's decision (Refinery keeps logs with
 * their trace since 2.6; the Collector's tail_sampling sees only spans).
 *
 * `LogHold` keeps the log records of undecided traces by trace id, counted in
 * the processor's memory budget (`bytes`, next to the span buffer's). When a
 * trace is decided the processor takes its records: kept ones are stamped
 * like the trace's spans (`tailsampling.policy`, or the dry-run attributes)
 * and handed on, dropped ones counted (`sampled_out`, `policy_drop`). Records
 * without a trace id never come here: they pass through. With `buffer.disk`,
 * a spilled trace's records go to the spill file with its spans (disk_spill.ts)
 * and come back here when it is read back for its decision.
 */
import type { LogRecord } from '../../collector/pdata/logs.js';
import { setLogAttributes } from '../../collector/pdata/logs.js';
import type { AttrValue } from '../../collector/pdata/attributes.js';
import { DECISION_NAMES } from './policies.js';
import type { DecisionRecord } from './decide.js';
import { ATTR_COMPOSITE_POLICY, ATTR_DRY_RUN_DECISION, ATTR_DRY_RUN_POLICY, ATTR_POLICY } from './stamper.js';

/** A held record's index (measured ~100 B a record with its trace id string: bench_signals.js) plus its array slot, rounded up. */
export const LOG_OVERHEAD_BYTES = 128;
/** A trace's entry in the hold: map entry, array and its slack. */
const ENTRY_OVERHEAD_BYTES = 96;

export class LogHold {
  private readonly byTrace = new Map<string, LogRecord[]>();
  /** Accounted bytes (encoded + overheads) of the held records. */
  bytes = 0;
  count = 0;

  hold(rec: LogRecord): void {
    let list = this.byTrace.get(rec.traceId);
    if (list === undefined) {
      list = [];
      this.byTrace.set(rec.traceId, list);
      this.bytes += ENTRY_OVERHEAD_BYTES;
    }
    list.push(rec);
    this.bytes += rec.len + LOG_OVERHEAD_BYTES;
    this.count++;
  }

  has(traceId: string): boolean {
    return this.byTrace.has(traceId);
  }

  /** The records held for a trace, left in place (undefined when none): a spill writes them before taking them. */
  peek(traceId: string): readonly LogRecord[] | undefined {
    return this.byTrace.get(traceId);
  }

  /** Puts records read back from the disk spill before those held since (they arrived first). */
  restore(traceId: string, recs: LogRecord[]): void {
    if (recs.length === 0) return;
    const list = this.byTrace.get(traceId);
    if (list === undefined) {
      this.byTrace.set(traceId, recs);
      this.bytes += ENTRY_OVERHEAD_BYTES;
    } else list.unshift(...recs);
    for (const r of recs) this.bytes += r.len + LOG_OVERHEAD_BYTES;
    this.count += recs.length;
  }

  /** Removes and returns the records held for a trace (undefined when none). */
  take(traceId: string): LogRecord[] | undefined {
    const list = this.byTrace.get(traceId);
    if (list === undefined) return undefined;
    this.byTrace.delete(traceId);
    this.bytes -= ENTRY_OVERHEAD_BYTES;
    for (const r of list) this.bytes -= r.len + LOG_OVERHEAD_BYTES;
    this.count -= list.length;
    return list;
  }

  /** Trace ids with records held (shutdown). */
  traceIds(): string[] {
    return [...this.byTrace.keys()];
  }
}

/** Writes on a kept log record what its trace's spans get: why it was kept (or, in dry run, what would have happened). */
export function stampLog(rec: LogRecord, d: DecisionRecord, dryRun: boolean): void {
  const a: Record<string, AttrValue> = dryRun
    ? { [ATTR_DRY_RUN_DECISION]: DECISION_NAMES[d.decision], [ATTR_DRY_RUN_POLICY]: d.policy }
    : { [ATTR_POLICY]: d.policy };
  if (!dryRun && d.compositeSub !== undefined) a[ATTR_COMPOSITE_POLICY] = d.compositeSub;
  setLogAttributes(rec, a);
}
