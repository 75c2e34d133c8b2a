/**
 * The metric model (pmetric's counterpart): a metric is kept as its encoded
 * Metric bytes plus a small index (name, type, data point count), under the
 * same shared resource and scope headers as spans and log records. Data
 * points are the counted item (as the Collector counts "metric points"); a
 * metric is the unit that moves through the pipeline, so its points stay
 * together. Unknown fields are carried byte for byte; exporting re-frames
 * (encode.ts).
 */
import { WireReader, WIRE_LEN } from './wire.js';
import type { ScopeRef } from './spans.js';
import { EncodedItem, scanFramed, type FramedScan } from './scan.js';
import { encodeExportRequest, frameItems, type EncodedPart } from './encode.js';
import { attributeProblem, checkMetricData, isValidUtf8, lastProblem } from './validate.js';

export type MetricType = 'gauge' | 'sum' | 'histogram' | 'exponential_histogram' | 'summary' | 'empty';

/** Metric field number -> its data type (opentelemetry-proto metrics/v1). */
export const METRIC_DATA_FIELDS: Readonly<Record<number, MetricType>> = {
  5: 'gauge',
  7: 'sum',
  9: 'histogram',
  10: 'exponential_histogram',
  11: 'summary',
};

/** Field number of `attributes` in each data point message. */
export const POINT_ATTRIBUTES_FIELD: Readonly<Record<Exclude<MetricType, 'empty'>, number>> = {
  gauge: 7,
  sum: 7,
  histogram: 9,
  exponential_histogram: 1,
  summary: 7,
};

export class Metric extends EncodedItem {
  name: string;
  type: MetricType;
  /** Number of data points (the item the pipeline counts). */
  points: number;

  constructor(buf: Uint8Array, off: number, len: number, scope: ScopeRef) {
    super(buf, off, len, scope);
    this.name = '';
    this.type = 'empty';
    this.points = 0;
  }
}

export type MetricsScan = FramedScan<Metric> & {
  /** Data points of the accepted metrics. */
  points: number;
  /** Data points of the rejected metrics (what partial_success.rejected_data_points reports). */
  rejectedPoints: number;
};

/**
 * Scans an ExportMetricsServiceRequest. Throws WireError when the bytes are
 * not well-formed; an invalid metric (bad UTF-8, wrong wire types, an
 * attribute that is not a valid KeyValue) is rejected whole.
 */
export function scanMetricsRequest(input: Uint8Array): MetricsScan {
  let rejectedPoints = 0;
  const scan = scanFramed<Metric>(
    input,
    'metrics',
    (buf, off, len, scope) => {
      const m = new Metric(buf, off, len, scope);
      let p: string | undefined = 'malformed';
      try {
        p = indexMetric(m);
      } finally {
        if (p !== undefined) rejectedPoints += Math.max(1, m.points);
      }
      return p ?? m;
    },
    (buf, off, len) => {
      // Rejected with its resource or scope: count its points if they can be counted.
      const m = new Metric(buf, off, len, undefined as never);
      try {
        indexMetric(m);
      } catch {
        // malformed: counted as one
      }
      rejectedPoints += Math.max(1, m.points);
    },
  );
  let points = 0;
  for (const m of scan.items) points += m.points;
  return Object.assign(scan, { points, rejectedPoints });
}

/** Total data points of a batch of metrics. */
export function countPoints(metrics: readonly Metric[]): number {
  let n = 0;
  for (let i = 0; i < metrics.length; i++) n += metrics[i].points;
  return n;
}

/** Fills a metric's index; returns a reason when it is invalid. */
export function indexMetric(m: Metric): string | undefined {
  const buf = m.buf;
  const r = new WireReader(buf, m.off, m.off + m.len);
  while (!r.done()) {
    const tag = r.uint32();
    const f = tag >>> 3;
    if (f === 0) return `invalid metric: field number 0`;
    const type = METRIC_DATA_FIELDS[f];
    if (type !== undefined) {
      if ((tag & 7) !== WIRE_LEN) return `invalid metric: field ${f} has wire type ${tag & 7}`;
      const e = r.lenEnd();
      if (m.type !== 'empty') return `invalid metric "${m.name}": more than one data field`;
      m.type = type;
      const n = checkMetricData(buf, r.pos, e, f);
      if (n < 0) {
        m.points = countEntries(buf, r.pos, e);
        return `invalid metric "${m.name}": ${type}: ${lastProblem()}`;
      }
      m.points = n;
      r.pos = e;
    } else if (f === 1 || f === 2 || f === 3) {
      if ((tag & 7) !== WIRE_LEN) return `invalid metric: field ${f} has wire type ${tag & 7}`;
      const e = r.lenEnd();
      if (!isValidUtf8(buf, r.pos, e)) return `invalid metric: ${f === 1 ? 'name' : f === 2 ? 'description' : 'unit'} is not valid UTF-8`;
      if (f === 1) m.name = buf instanceof Buffer ? buf.toString('utf8', r.pos, e) : Buffer.from(buf.subarray(r.pos, e)).toString('utf8');
      r.pos = e;
    } else if (f === 12) {
      if ((tag & 7) !== WIRE_LEN) return `invalid metric: field 12 has wire type ${tag & 7}`;
      const e = r.lenEnd();
      const p = attributeProblem(buf, r.pos, e);
      if (p !== undefined) return `invalid metric "${m.name}": metadata: ${p}`;
      r.pos = e;
    } else r.skip(tag & 7);
  }
  return undefined;
}

/** The field-1 entries (data points) of a data message that failed its check, counted as far as they can be. */
function countEntries(buf: Uint8Array, start: number, end: number): number {
  let n = 0;
  try {
    const r = new WireReader(buf, start, end);
    while (!r.done()) {
      const tag = r.uint32();
      if (tag === ((1 << 3) | WIRE_LEN)) n++;
      r.skip(tag & 7);
    }
  } catch {
    // counted up to the damage
  }
  return n;
}

/**
 * Splits an encoded ExportMetricsServiceRequest holding `points` data points
 * into two requests of half its metrics each (the first half first; a metric
 * is the unit the pipeline moves, so its points stay together), every metric
 * under its original resource and scope. Each part carries its data point
 * count, and the two counts always add up to `points` (what the batch was
 * counted as when it was queued), so every counter stays exact. Undefined
 * when the request holds fewer than two metrics. Throws WireError when the
 * framing itself is broken.
 */
export function splitMetricsExportRequest(bytes: Uint8Array, points: number): [EncodedPart, EncodedPart] | undefined {
  const metrics = frameItems(bytes, (buf, off, len, scope) => new Metric(buf, off, len, scope));
  if (metrics.length < 2) return undefined;
  const mid = metrics.length >>> 1;
  const a = metrics.slice(0, mid);
  const b = metrics.slice(mid);
  let aPoints = 0;
  for (const m of a) {
    try {
      indexMetric(m);
    } catch {
      // framing inside the metric is broken: its points stay uncounted here, the other half carries them
    }
    aPoints += m.points;
  }
  if (aPoints > points) aPoints = points;
  return [
    { bytes: encodeExportRequest(a), spans: aPoints },
    { bytes: encodeExportRequest(b), spans: points - aPoints },
  ];
}

/** How many metrics an encoded ExportMetricsServiceRequest holds (by its framing alone). */
export function countFramedMetrics(bytes: Uint8Array): number {
  return frameItems(bytes, () => 0).length;
}
