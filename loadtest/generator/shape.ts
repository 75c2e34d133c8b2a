/**
 * The traffic shape: a service graph and the knobs that make its traces look
 * like production traffic. Scenario YAML sets any subset of these under
 * `traffic.shape`; `withShapeDefaults` fills the rest.
 */

export interface ShapeConfig {
  /** Number of services in the graph (names are drawn from a shop-like list). */
  services: number;
  /** Operations (routes) each service serves. */
  operations_per_service: number;
  /** Pods (resources) per service; each pod has its own Kubernetes attributes. */
  pods_per_service: number;
  /** Maximum depth of a trace tree (root is depth 0). */
  depth: number;
  /** Maximum downstream calls one server span makes before the span budget is spread. */
  fan_out: number;
  /** Spans per trace: log-normal around `median`, clamped to [min, max]. */
  spans_per_trace: { min: number; median: number; max: number; sigma: number };
  /** Self time of a span in ms: log-normal (median, sigma); database spans use half the median. */
  latency_ms: { median: number; sigma: number };
  /** Slow tail: a fraction of traces get one span delayed by `extra_ms` x U(1, 2.5). */
  slow: { rate: number; extra_ms: number; threshold_ms: number };
  /** Fraction of traces with an error (a span with status ERROR, propagated up some callers). */
  error_rate: number;
  /** Fraction of traces that enter through the rare route. */
  rare: { rate: number; route: string };
  /** Distinct ids used in URLs and statements (attribute cardinality). */
  cardinality: { users: number; orders: number; items: number };
  /** Fraction of server spans carrying PII-looking values (e-mail, bearer token, card number). */
  pii_rate: number;
  /** Fraction of services that still use the old semantic-convention names. */
  old_semconv_fraction: number;
  /** Extra filler attributes per span (to grow span size). */
  extra_attributes: number;
}

export const DEFAULT_SHAPE: ShapeConfig = {
  services: 10,
  operations_per_service: 4,
  pods_per_service: 3,
  depth: 6,
  fan_out: 4,
  spans_per_trace: { min: 1, median: 12, max: 300, sigma: 0.9 },
  latency_ms: { median: 3, sigma: 0.7 },
  slow: { rate: 0.01, extra_ms: 1200, threshold_ms: 1000 },
  error_rate: 0.01,
  rare: { rate: 0.002, route: '/api/v1/admin/refunds/{order_id}' },
  cardinality: { users: 5000, orders: 100000, items: 2000 },
  pii_rate: 0.05,
  old_semconv_fraction: 0.4,
  extra_attributes: 0,
};

type Plain = Record<string, unknown>;

function merge(base: Plain, over: Plain | undefined, path: string): Plain {
  const out: Plain = { ...base };
  if (over === undefined || over === null) return out;
  for (const [k, v] of Object.entries(over)) {
    if (!(k in base)) throw new Error(`traffic.shape${path}: unknown option "${k}" (known: ${Object.keys(base).join(', ')})`);
    const b = base[k];
    if (b !== null && typeof b === 'object') out[k] = merge(b as Plain, v as Plain, `${path}.${k}`);
    else {
      if (typeof v !== typeof b) throw new Error(`traffic.shape${path}.${k}: expected a ${typeof b}, got ${JSON.stringify(v)}`);
      out[k] = v;
    }
  }
  return out;
}

export function withShapeDefaults(partial?: Partial<Record<keyof ShapeConfig, unknown>>): ShapeConfig {
  const s = merge(DEFAULT_SHAPE as unknown as Plain, partial as Plain, '') as unknown as ShapeConfig;
  if (s.services < 1) throw new Error('traffic.shape.services must be >= 1');
  if (s.spans_per_trace.min < 1 || s.spans_per_trace.max < s.spans_per_trace.min) {
    throw new Error('traffic.shape.spans_per_trace: need 1 <= min <= max');
  }
  if (s.depth < 1) throw new Error('traffic.shape.depth must be >= 1');
  return s;
}
