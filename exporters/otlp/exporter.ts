/** The `otlp` exporter (OTLP/gRPC): the shared queued exporter over a node:http2 gRPC sender. */
import type { CreateSettings } from '../../collector/component.js';
import { QueuedExporter, type HelperOptions } from '../exporterhelper/exporter.js';
import { SignalExporters } from '../exporterhelper/signals.js';
import type { OtlpExporterConfig } from './config.js';
import { GrpcSender } from './sender.js';

/** What the factory creates: one queued exporter per signal it is handed (exporterhelper/signals.ts). */
export function createOtlpSignalExporter(settings: CreateSettings, config: OtlpExporterConfig, options: HelperOptions = {}): SignalExporters {
  return new SignalExporters(settings.id, (signal) => createOtlpExporter(settings, config, { ...options, signal }));
}

/** The exporter of one signal (`options.signal`, traces by default). */
export function createOtlpExporter(settings: CreateSettings, config: OtlpExporterConfig, options: HelperOptions = {}): QueuedExporter {
  const sender = new GrpcSender(config, options.signal ?? 'traces');
  return new QueuedExporter(settings, config, sender.send, {
    ...options,
    onStart: () => sender.start(),
    onShutdown: async () => sender.close(),
  });
}
