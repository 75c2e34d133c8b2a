/**
 * The three OTLP signals and what differs between them in names only: the
 * pipeline ids (`traces`, `logs/app`), the item each one counts (spans, log
 * records, metric data points, as the Collector counts them) and the metric
 * names built from that item.
 */
export type Signal = 'traces' | 'logs' | 'metrics';

export const SIGNALS: readonly Signal[] = ['traces', 'logs', 'metrics'];

/** A pipeline id is `<signal>` or `<signal>/<name>`. */
export const PIPELINE_ID_PATTERN = '^(traces|logs|metrics)(/[^/\\s]+)?$';

/** The signal of a pipeline id (`logs/app` -> `logs`), or undefined. */
export function pipelineSignal(id: string): Signal | undefined {
  const s = id.split('/')[0];
  return (SIGNALS as readonly string[]).includes(s) ? (s as Signal) : undefined;
}

/**
 * The unit each signal counts in its metrics, as in the Collector's names:
 * otelcol_receiver_accepted_spans, ..._log_records, ..._metric_points.
 */
export const ITEM: Record<Signal, 'spans' | 'log_records' | 'metric_points'> = {
  traces: 'spans',
  logs: 'log_records',
  metrics: 'metric_points',
};

/** The item in prose, for help texts and messages. */
export const ITEM_TEXT: Record<Signal, string> = {
  traces: 'spans',
  logs: 'log records',
  metrics: 'metric data points',
};
