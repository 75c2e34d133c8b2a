/**
 * One structured log line every `service.telemetry.summary_interval` with
 * ingest, export and drop rates per second since the previous line. Read from
 * the metrics registry, so the hot path pays nothing for it.
 */
import type { Logger } from 'pino';
import type { Telemetry } from './metrics.js';

export class SummaryLogger {
  private timer: NodeJS.Timeout | undefined;
  /**
   * The previous line's time and totals. The first interval starts when the
   * collector is created, so a line written without start() (a failed start
   * emits one at shutdown) covers the collector's life, not the epoch.
   */
  private last = { t: Date.now(), accepted: 0, refused: 0, sent: 0, failed: 0, dropped: 0 };
  /** The same for log records and metric data points: accepted, exported, dropped. */
  private lastOther: Record<'log_records' | 'metric_points', [number, number, number]> = { log_records: [0, 0, 0], metric_points: [0, 0, 0] };

  constructor(
    private readonly telemetry: Telemetry,
    private readonly logger: Logger,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    if (this.intervalMs <= 0) return;
    this.last.t = Date.now();
    this.timer = setInterval(() => void this.emit(), this.intervalMs);
    this.timer.unref();
  }

  async snapshot() {
    const t = this.telemetry;
    return {
      accepted: await t.total('otelcol_receiver_accepted_spans_total'),
      refused: await t.total('otelcol_receiver_refused_spans_total'),
      sent: await t.total('otelcol_exporter_sent_spans_total'),
      failed: await t.total('otelcol_exporter_send_failed_spans_total'),
      dropped: await t.total('sidecar_spans_dropped_total'),
      droppedByReason: await t.droppedByReason(),
    };
  }

  /** Accepted, exported and dropped totals of log records and metric data points. */
  private async otherSignals(): Promise<Record<'log_records' | 'metric_points', [number, number, number]>> {
    const t = this.telemetry;
    const of = async (item: 'log_records' | 'metric_points'): Promise<[number, number, number]> => [
      await t.total(`otelcol_receiver_accepted_${item}_total`),
      await t.total(`otelcol_exporter_sent_${item}_total`),
      await t.total(`sidecar_${item}_dropped_total`),
    ];
    return { log_records: await of('log_records'), metric_points: await of('metric_points') };
  }

  async emit(): Promise<void> {
    const now = Date.now();
    const s = await this.snapshot();
    const secs = Math.max(0.001, (now - this.last.t) / 1000);
    const rate = (cur: number, prev: number) => Math.round(((cur - prev) / secs) * 10) / 10;
    const other = await this.otherSignals();
    // Logs and metrics appear once the collector has seen any.
    const signals: Record<string, unknown> = {};
    for (const k of ['log_records', 'metric_points'] as const) {
      const [a, e, d] = other[k];
      const [pa, pe, pd] = this.lastOther[k];
      if (a + e + d > 0) signals[k] = { accepted_per_s: rate(a, pa), exported_per_s: rate(e, pe), dropped_per_s: rate(d, pd), totals: { accepted: a, exported: e, dropped: d } };
    }
    this.lastOther = other;
    this.logger.info(
      {
        ...signals,
        interval_s: Math.round(secs),
        accepted_spans_per_s: rate(s.accepted, this.last.accepted),
        refused_spans_per_s: rate(s.refused, this.last.refused),
        exported_spans_per_s: rate(s.sent, this.last.sent),
        export_failed_spans_per_s: rate(s.failed, this.last.failed),
        dropped_spans_per_s: rate(s.dropped, this.last.dropped),
        totals: { accepted: s.accepted, refused: s.refused, exported: s.sent, dropped: s.droppedByReason },
        rss_mib: Math.round(process.memoryUsage.rss() / 1048576),
      },
      'summary',
    );
    this.last = { t: now, accepted: s.accepted, refused: s.refused, sent: s.sent, failed: s.failed, dropped: s.dropped };
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
