/**
 * Test helpers for log records through tail_sampling (logs.test.ts,
 * logs_spill.test.ts): a sink, trace and span ids, two-span traces, records
 * with a body, and reading a record's body and attributes from its bytes.
 */
import { makeSpans, type SpanSpec } from '../../../test/otlp.js';
import { logsRequest } from '../../../test/signals.js';
import { scanLogsRequest, type LogRecord } from '../../../collector/pdata/logs.js';
import { readKeyValuePlain, type Span } from '../../../collector/pdata/spans.js';
import { WireReader, WIRE_LEN } from '../../../collector/pdata/wire.js';

export class LogSink {
  records: LogRecord[] = [];
  async consumeLogs(r: LogRecord[]): Promise<void> {
    this.records.push(...r);
  }
}

let n = 0;
export const tid = () => (++n).toString(16).padStart(32, '0').replace(/^0/, 'e');
export const sid = () => (++n).toString(16).padStart(16, '0').replace(/^0/, 'd');

/** A root span (with `status`) and a child. */
export function spans(traceId: string, status = 0): Span[] {
  return makeSpans([{ traceId, spanId: sid(), status } as SpanSpec, { traceId, spanId: sid(), parentSpanId: 'aaaaaaaaaaaaaaaa' } as SpanSpec]);
}

export function logs(specs: Array<{ traceId?: string; body: string }>): LogRecord[] {
  return scanLogsRequest(logsRequest(specs.map((s) => ({ traceId: s.traceId, body: { stringValue: s.body } })))).items;
}

/** The record's string body. */
export function body(r: LogRecord): string {
  const rd = new WireReader(r.buf, r.off, r.off + r.len);
  while (!rd.done()) {
    const t = rd.uint32();
    if (t === ((5 << 3) | WIRE_LEN)) {
      const e = rd.lenEnd();
      const ir = new WireReader(r.buf, rd.pos, e);
      ir.uint32();
      return ir.string();
    }
    rd.skip(t & 7);
  }
  return '';
}

/** The record's attributes, as plain values. */
export function attrs(r: LogRecord): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const rd = new WireReader(r.buf, r.off, r.off + r.len);
  while (!rd.done()) {
    const t = rd.uint32();
    if (t === ((6 << 3) | WIRE_LEN)) {
      const e = rd.lenEnd();
      const [k, v] = readKeyValuePlain(r.buf, rd.pos, e);
      out[k] = v;
      rd.pos = e;
    } else rd.skip(t & 7);
  }
  return out;
}

/** Bodies of what a sink got, sorted. */
export const bodies = (s: LogSink) => s.records.map(body).sort();
