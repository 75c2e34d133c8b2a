/**
 * File exporter: one OTLP/JSON export request per line (ExportTraceServiceRequest,
 * or the logs / metrics request when a pipeline of that signal lists it: one
 * file may hold several signals, as with the Collector's file exporter), appended
 * through a write stream. consume() resolves once its line is handed to the
 * OS, and waits for 'drain' when the stream buffer is full (backpressure).
 * Size-based rotation renames path -> path.1 -> path.2 ... A write error is
 * counted as dropped spans (reason `export_write_error`) and the file is
 * reopened for the next batch.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Component, CreateSettings } from '../../collector/component.js';
import type { LogsConsumer, MetricsConsumer, TracesConsumer } from '../../collector/consumer.js';
import type { Span } from '../../collector/pdata/spans.js';
import type { LogRecord } from '../../collector/pdata/logs.js';
import { countPoints, type Metric } from '../../collector/pdata/metrics.js';
import { encodeExportRequest, type Framed } from '../../collector/pdata/encode.js';
import { protobufToJson, type RequestTypeName } from '../../collector/pdata/otlp-json.js';
import { ITEM, ITEM_TEXT, type Signal } from '../../collector/signals.js';
import type { ValueChild } from '../../collector/telemetry/prom.js';
import { CollectorError } from '../../collector/errors.js';
import type { Telemetry } from '../../collector/telemetry/metrics.js';
import type { FileExporterConfig } from './config.js';

const LOG_INTERVAL_MS = 10_000;

const REQUEST_TYPE: Record<Signal, RequestTypeName> = {
  traces: 'ExportTraceServiceRequest',
  logs: 'ExportLogsServiceRequest',
  metrics: 'ExportMetricsServiceRequest',
};

export class FileExporter implements Component, TracesConsumer, LogsConsumer, MetricsConsumer {
  readonly mutatesData = false;
  private readonly id: string;
  private readonly log: Logger;
  private readonly telemetry: Telemetry;
  private readonly file: string;
  private readonly maxBytes: number;
  private readonly maxBackups: number;
  private stream: fs.WriteStream | undefined;
  private size = 0;
  /** Serializes rotation and writes. */
  private chain: Promise<void> = Promise.resolve();
  private stopped = false;
  private lastErrorLog = -Infinity;
  private readonly settings: CreateSettings;
  /** Sent and failed counters per signal, made on first use. */
  private readonly counters = new Map<Signal, { sent: ValueChild; failed: ValueChild }>();

  constructor(settings: CreateSettings, cfg: FileExporterConfig) {
    this.id = settings.id;
    this.log = settings.logger;
    this.telemetry = settings.telemetry;
    this.file = path.resolve(cfg.path);
    this.maxBytes = Math.floor(cfg.rotation.max_megabytes * 1024 * 1024);
    this.maxBackups = cfg.rotation.max_backups;
    this.settings = settings;
    this.metrics('traces');
  }

  private metrics(signal: Signal): { sent: ValueChild; failed: ValueChild } {
    let m = this.counters.get(signal);
    if (m === undefined) {
      const t = this.settings.telemetry;
      const item = ITEM[signal];
      const Item = ITEM_TEXT[signal][0].toUpperCase() + ITEM_TEXT[signal].slice(1);
      const L = ['exporter'];
      m = {
        sent: t.counter(`otelcol_exporter_sent_${item}_total`, `${Item} successfully sent to the destination.`, L).labels(this.id),
        failed: t
          .counter(`otelcol_exporter_send_failed_${item}_total`, `${Item} the exporter failed to send (permanent error, retries exhausted, shutdown).`, L)
          .labels(this.id),
      };
      this.counters.set(signal, m);
    }
    return m;
  }

  async start(): Promise<void> {
    await fs.promises.mkdir(path.dirname(this.file), { recursive: true });
    await this.open();
  }

  consume(spans: Span[]): Promise<void> {
    return this.append('traces', spans, spans.length);
  }

  consumeLogs(records: LogRecord[]): Promise<void> {
    return this.append('logs', records, records.length);
  }

  consumeMetrics(metrics: Metric[]): Promise<void> {
    return this.append('metrics', metrics, countPoints(metrics));
  }

  private append(signal: Signal, items: Framed[], n: number): Promise<void> {
    if (items.length === 0) return Promise.resolve();
    if (this.stopped) return Promise.reject(new CollectorError('ERR_SHUTTING_DOWN', `exporter ${this.id} is shut down`, true, 1000));
    const line = Buffer.from(protobufToJson(encodeExportRequest(items), REQUEST_TYPE[signal]) + '\n', 'utf8');
    return new Promise<void>((resolve) => {
      this.chain = this.chain.then(() => this.write(line, n, signal, resolve));
    });
  }

  /** Runs inside the chain; `done` fires when the OS took the line (or it failed and was counted). */
  private async write(line: Buffer, n: number, signal: Signal, done: () => void): Promise<void> {
    try {
      if (this.stream === undefined) await this.open();
      if (this.size > 0 && this.size + line.length > this.maxBytes) await this.rotate();
    } catch (e) {
      this.failed(n, e as Error, signal);
      done();
      return;
    }
    const stream = this.stream!;
    this.size += line.length;
    const more = stream.write(line, (err) => {
      if (err) this.failed(n, err, signal);
      else this.metrics(signal).sent.inc(n);
      done();
    });
    if (!more && !stream.destroyed) {
      await new Promise<void>((resolve) => {
        const finish = () => {
          stream.off('drain', finish);
          stream.off('close', finish);
          resolve();
        };
        stream.on('drain', finish);
        stream.on('close', finish);
      });
    }
  }

  private failed(n: number, err: Error, signal: Signal): void {
    this.metrics(signal).failed.inc(n);
    this.telemetry.drop(this.id, 'export_write_error', n, signal);
    const now = Date.now();
    if (now - this.lastErrorLog >= LOG_INTERVAL_MS) {
      this.lastErrorLog = now;
      this.log.error({ exporter: this.id, file: this.file, err: err.message, [ITEM[signal]]: n }, `file exporter write failed; ${ITEM_TEXT[signal]} dropped`);
    }
    // Reopen on the next write.
    const s = this.stream;
    this.stream = undefined;
    s?.destroy();
  }

  private async open(): Promise<void> {
    await fs.promises.mkdir(path.dirname(this.file), { recursive: true });
    try {
      this.size = (await fs.promises.stat(this.file)).size;
    } catch {
      this.size = 0;
    }
    const s = fs.createWriteStream(this.file, { flags: 'a', highWaterMark: 1024 * 1024 });
    await new Promise<void>((resolve, reject) => {
      s.once('open', () => {
        s.off('error', reject);
        resolve();
      });
      s.once('error', reject);
    });
    // Later errors arrive through write callbacks; keep the stream from throwing.
    s.on('error', () => {});
    this.stream = s;
  }

  private async closeStream(): Promise<void> {
    const s = this.stream;
    this.stream = undefined;
    if (s === undefined || s.destroyed) return;
    await new Promise<void>((resolve) => {
      s.end(() => resolve());
      s.once('error', () => resolve());
    });
  }

  private async rotate(): Promise<void> {
    await this.closeStream();
    if (this.maxBackups === 0) {
      await fs.promises.rm(this.file, { force: true });
    } else {
      await fs.promises.rm(`${this.file}.${this.maxBackups}`, { force: true });
      for (let i = this.maxBackups - 1; i >= 1; i--) {
        await fs.promises.rename(`${this.file}.${i}`, `${this.file}.${i + 1}`).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'ENOENT') throw e;
        });
      }
      await fs.promises.rename(this.file, `${this.file}.1`);
    }
    await this.open();
  }

  async shutdown(): Promise<void> {
    if (this.stopped) return this.chain;
    this.stopped = true;
    this.chain = this.chain.then(() => this.closeStream());
    await this.chain;
  }
}
