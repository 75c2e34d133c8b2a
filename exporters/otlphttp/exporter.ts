/** The `otlphttp` exporter: the shared queued exporter over an HTTP sender (protobuf or JSON). */
import type { CreateSettings } from '../../collector/component.js';
import { QueuedExporter, type HelperOptions } from '../exporterhelper/exporter.js';
import { SignalExporters } from '../exporterhelper/signals.js';
import type { OtlpHttpExporterConfig } from './config.js';
import { HttpSender } from './sender.js';

/** The exporter of one signal (`options.signal`, traces by default). */
export function createOtlpHttpExporter(settings: CreateSettings, config: OtlpHttpExporterConfig, options: HelperOptions = {}): QueuedExporter {
  const sender = new HttpSender(config, settings.clock, options.signal ?? 'traces');
  return new QueuedExporter(settings, config, sender.send, {
    ...options,
    onStart: () => sender.start(),
    onShutdown: async () => sender.close(),
  });
}

/** What the factory creates: one queued exporter per signal it is handed (exporterhelper/signals.ts). */
export function createOtlpHttpSignalExporter(settings: CreateSettings, config: OtlpHttpExporterConfig, options: HelperOptions = {}): SignalExporters {
  return new SignalExporters(settings.id, (signal) => createOtlpHttpExporter(settings, config, { ...options, signal }));
}
