/**
 * One exporter id serving several signals (as a Collector exporter listed in a
 * traces and a logs pipeline): a QueuedExporter per signal, each with its own
 * queue (disk queue file included), retries, circuit breaker and metrics, so a
 * backend refusing logs never holds back traces. The traces part is made at
 * creation; a logs or metrics part on the first request of its signal (a
 * config that never sends logs pays nothing for them).
 */
import type { Component } from '../../collector/component.js';
import type { LogsConsumer, MetricsConsumer, TracesConsumer } from '../../collector/consumer.js';
import type { Span } from '../../collector/pdata/spans.js';
import type { LogRecord } from '../../collector/pdata/logs.js';
import type { Metric } from '../../collector/pdata/metrics.js';
import { CollectorError } from '../../collector/errors.js';
import type { Signal } from '../../collector/signals.js';
import type { QueuedExporter } from './exporter.js';

export class SignalExporters implements Component, TracesConsumer, LogsConsumer, MetricsConsumer {
  readonly mutatesData = false;
  private readonly parts = new Map<Signal, Promise<QueuedExporter>>();
  private readonly made: QueuedExporter[] = [];
  private state: 'new' | 'running' | 'stopped' = 'new';

  /** `make(signal)` creates the (unstarted) QueuedExporter of a signal. */
  constructor(
    private readonly id: string,
    private readonly make: (signal: Signal) => QueuedExporter,
  ) {}

  /** The traces exporter (made at once: the common case, and what tests inspect). */
  get traces(): QueuedExporter {
    return this.made[0];
  }

  private part(signal: Signal): Promise<QueuedExporter> {
    let p = this.parts.get(signal);
    if (p === undefined) {
      if (this.state === 'stopped') return Promise.reject(new CollectorError('ERR_SHUTTING_DOWN', `exporter ${this.id} is shut down`, true, 1000));
      const e = this.make(signal);
      this.made.push(e);
      p = this.state === 'running' ? e.start().then(() => e) : Promise.resolve(e);
      this.parts.set(signal, p);
    }
    return p;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') return;
    await this.part('traces');
    this.state = 'running';
    await Promise.all(this.made.map((e) => e.start()));
  }

  consume(spans: Span[]): Promise<void> {
    return this.part('traces').then((e) => e.consume(spans));
  }

  consumeLogs(records: LogRecord[]): Promise<void> {
    return this.part('logs').then((e) => e.consumeLogs(records));
  }

  consumeMetrics(metrics: Metric[]): Promise<void> {
    return this.part('metrics').then((e) => e.consumeMetrics(metrics));
  }

  async shutdown(timeoutMs?: number): Promise<void> {
    this.state = 'stopped';
    const parts = await Promise.allSettled(this.parts.values());
    await Promise.all(parts.map((p) => (p.status === 'fulfilled' ? p.value.shutdown(timeoutMs) : undefined)));
  }
}
